//! KeyFile::decode without a passphrase: an accepted file re-encodes to a file that decodes to
//! the same keys (compared by their encodings); master and personal-key files are canonical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warifu_core::keyfile::KeyFile;
use warifu_core::rand::SeededRandom;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = KeyFile::decode(data, None) else {
        return;
    };
    let mut rng = SeededRandom::new(b"fuzz");
    let bytes = file.encode(None, &mut rng).expect("a decoded file encodes");
    // A predistributed table may list its peers in any order; every other kind is canonical.
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
