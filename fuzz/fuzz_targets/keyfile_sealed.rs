//! KeyFile::decode with a passphrase: an accepted sealed file re-seals under the same
//! passphrase to a file that opens to the same keys. Inputs asking for costly Argon2 params
//! are skipped (the decoder's own cap, 1 GiB × 10 passes, is by design).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warifu_core::keyfile::{KdfParams, KeyFile};
use warifu_core::rand::SeededRandom;
use warifu_core::secret::Secret;
use warifu_fuzz_fixtures::{FAST_KDF, PASSPHRASE, costly_kdf};

fuzz_target!(|data: &[u8]| {
    if costly_kdf(data) {
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
