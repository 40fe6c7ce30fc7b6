//! KeyFile::decode without a passphrase: an accepted file re-encodes to a file that decodes to
//! the same keys (compared by their encodings); master and personal-key files are canonical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warifu_core::keyfile::KeyFile;
use warifu_core::rand::SeededRandom;

/// KNOWN BUG, reported to the lead (see crates/core/tests/props.rs,
/// `regression_master_key_file_with_huge_k`): a plain master file whose k is near u32::MAX
/// overflows `n * (n + 1)` in keyfile.rs before k is checked, a panic in debug builds. The
/// target skips such inputs so the fuzzer keeps exploring; delete this guard once fixed.
fn known_master_k_overflow(data: &[u8]) -> bool {
    const MAX_K: u32 = warifu_core::blom::MAX_K;
    data.len() >= 16
        && data[5] == 1
        && data[6] == 0
        && u32::from_be_bytes([data[12], data[13], data[14], data[15]]) > MAX_K
}

fuzz_target!(|data: &[u8]| {
    if known_master_k_overflow(data) {
        return;
    }
    let Ok(file) = KeyFile::decode(data, None) else {
        return;
    };
    let mut rng = SeededRandom::new(b"fuzz");
    let bytes = file.encode(None, &mut rng).expect("a decoded file encodes");
    if !matches!(file, KeyFile::Predistributed(_)) {
        assert_eq!(
            bytes,
            data,
            "the {} file is not canonical",
            file.kind_name()
        );
    }
    let again = KeyFile::decode(&bytes, None).expect("a re-encoded file decodes");
    assert_eq!(again.kind_name(), file.kind_name());
    let bytes2 = again.encode(None, &mut rng).expect("encodes");
    assert_eq!(bytes2, bytes, "decode → encode → decode changed the keys");
});
