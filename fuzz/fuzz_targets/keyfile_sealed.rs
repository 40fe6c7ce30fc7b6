//! KeyFile::decode with a passphrase: an accepted sealed file re-seals under the same
//! passphrase to a file that opens to the same keys. Inputs asking for costly Argon2 params
//! are skipped (the decoder's own cap, 1 GiB × 10 passes, is by design).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warifu_core::keyfile::{KdfParams, KeyFile};
use warifu_core::rand::SeededRandom;
use warifu_core::secret::Secret;
use warifu_fuzz_fixtures::{FAST_KDF, MAX_FUZZ_KDF_KIB_PASSES, PASSPHRASE};

/// Offsets of the cost fields: magic 4, version 1, kind 1, protection 1, salt 16.
const COSTS: usize = 4 + 1 + 1 + 1 + 16;

fn costly(data: &[u8]) -> bool {
    let word = |i: usize| {
        data.get(COSTS + 4 * i..COSTS + 4 * i + 4)
            .map(|b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
    };
    match (word(0), word(1)) {
        (Some(m), Some(t)) => m.saturating_mul(t) > MAX_FUZZ_KDF_KIB_PASSES,
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    if KeyFile::is_sealed(data) && costly(data) {
        return;
    }
    let pass = Secret::new(PASSPHRASE);
    let Ok(file) = KeyFile::decode(data, Some(&pass)) else {
        return;
    };
    let mut rng = SeededRandom::new(b"fuzz");
    let plain = file.encode(None, &mut rng).expect("a decoded file encodes");
    let params: KdfParams = FAST_KDF;
    let resealed = file
        .encode(Some((&pass, params)), &mut rng)
        .expect("a decoded file seals");
    assert!(KeyFile::is_sealed(&resealed));
    assert_eq!(
        KeyFile::decode(&resealed, None).err(),
        Some(warifu_core::Error::PassphraseRequired)
    );
    let again = KeyFile::decode(&resealed, Some(&pass)).expect("a re-sealed file opens");
    let plain2 = again.encode(None, &mut rng).expect("encodes");
    assert_eq!(plain2, plain, "seal → open changed the keys");
});
