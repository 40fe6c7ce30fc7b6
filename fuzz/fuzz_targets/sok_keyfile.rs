//! SokKeyFile::decode (SOK master, SOK personal key with its curve points and pairing check,
//! Blom+SOK hybrid; plain or sealed under the fixture passphrase): an accepted file re-encodes
//! canonically (plain) and decode → encode → decode keeps the keys. Inputs asking for costly
//! Argon2 parameters are skipped, as in `keyfile_sealed`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warifu_core::keyfile::SokKeyFile;
use warifu_core::rand::SeededRandom;
use warifu_core::secret::Secret;
use warifu_fuzz_fixtures::{PASSPHRASE, costly_kdf};

fuzz_target!(|data: &[u8]| {
    if costly_kdf(data) {
        return;
    }
    let pass = Secret::new(PASSPHRASE);
    let Ok(file) = SokKeyFile::decode(data, Some(&pass)) else {
        return;
    };
    let mut rng = SeededRandom::new(b"fuzz");
    let plain = file.encode(None, &mut rng).expect("a decoded file encodes");
    if data.get(6) == Some(&0) {
        assert_eq!(
            plain,
            data,
            "the {} file is not canonical",
            file.kind_name()
        );
    }
    let again = SokKeyFile::decode(&plain, None).expect("a re-encoded file decodes");
    assert_eq!(again.kind_name(), file.kind_name());
    let plain2 = again.encode(None, &mut rng).expect("encodes");
    assert_eq!(plain2, plain, "decode → encode → decode changed the keys");
});
