//! The passphrase envelope shared by sealed key files and the wallet file: Argon2id derives a
//! key from the passphrase, XChaCha20-Poly1305 seals the body.
//!
//! Layout: `prefix ‖ salt[16] ‖ u32 m ‖ u32 t ‖ u32 p ‖ nonce[24]` (the [`Header`], after a
//! caller's own prefix such as its magic and version), then the ciphertext; the associated
//! data is every byte before the ciphertext. A [`SealingKey`] keeps the derived key (and its
//! salt and costs) so a file saved again and again pays Argon2id once; each save draws a
//! fresh nonce.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::codec::Reader;
use crate::rand::Randomness;
use crate::secret::{Key32, Secret};
use crate::{Error, Result};

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes of parallelism.
    pub p_cost: u32,
}

impl KdfParams {
    /// The cheapest parameters Argon2 accepts: tests only (seconds saved per test).
    #[cfg(test)]
    pub(crate) const FAST_FOR_TESTS: KdfParams = KdfParams {
        m_cost: 64,
        t_cost: 1,
        p_cost: 1,
    };
}

impl Default for KdfParams {
    /// OWASP's Argon2id floor: 19 MiB, 2 passes, 1 lane (personal key files).
    fn default() -> KdfParams {
        KdfParams {
            m_cost: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl KdfParams {
    /// For a key center's master and the wallet file: 64 MiB, 3 passes (RFC 9106's second
    /// recommended setting, with one lane).
    pub const STRONG: KdfParams = KdfParams {
        m_cost: 64 * 1024,
        t_cost: 3,
        p_cost: 1,
    };
    /// The most memory a file may ask for: 2 GiB (RFC 9106's first recommended setting).
    pub const MAX_M_COST: u32 = 2 * 1024 * 1024;
    /// The most passes.
    pub const MAX_T_COST: u32 = 10;
    /// The most lanes.
    pub const MAX_P_COST: u32 = 8;
    /// The most work (memory × passes, KiB): 2 GiB × 2, so 2 GiB × 1 and 64 MiB × 3 open but
    /// a hostile file cannot ask for 2 GiB × 10.
    pub const MAX_WORK: u64 = 2 * 2 * 1024 * 1024;

    /// The Argon2 parameters, refused beyond the caps (so a hostile file cannot make opening
    /// it exhaust the machine).
    pub fn check(self) -> Result<Params> {
        if self.m_cost > Self::MAX_M_COST
            || self.t_cost > Self::MAX_T_COST
            || self.p_cost > Self::MAX_P_COST
            || u64::from(self.m_cost) * u64::from(self.t_cost) > Self::MAX_WORK
        {
            return Err(Error::malformed(
                "kdf parameters",
                "costs exceed the allowed maximum",
            ));
        }
        Params::new(self.m_cost, self.t_cost, self.p_cost, Some(32))
            .map_err(|e| Error::malformed("kdf parameters", e.to_string()))
    }
}

/// Bytes of a [`Header`].
pub const HEADER_LEN: usize = 16 + 12 + 24;

/// The envelope's header: salt, costs, nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Argon2id salt.
    pub salt: [u8; 16],
    /// Argon2id costs.
    pub params: KdfParams,
    /// XChaCha20-Poly1305 nonce.
    pub nonce: [u8; 24],
}

impl Header {
    /// Reads a header.
    pub fn read(r: &mut Reader<'_>) -> Result<Header> {
        Ok(Header {
            salt: r.array("salt")?,
            params: KdfParams {
                m_cost: r.u32("memory cost")?,
                t_cost: r.u32("time cost")?,
                p_cost: r.u32("parallelism")?,
            },
            nonce: r.array("nonce")?,
        })
    }

    /// Its bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..16].copy_from_slice(&self.salt);
        out[16..20].copy_from_slice(&self.params.m_cost.to_be_bytes());
        out[20..24].copy_from_slice(&self.params.t_cost.to_be_bytes());
        out[24..28].copy_from_slice(&self.params.p_cost.to_be_bytes());
        out[28..].copy_from_slice(&self.nonce);
        out
    }
}

/// A key derived from a passphrase, with its salt and costs: kept by a file saved repeatedly.
pub struct SealingKey {
    salt: [u8; 16],
    params: KdfParams,
    key: Key32,
}

impl core::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SealingKey {{ params: {:?}, .. }}", self.params)
    }
}

fn derive(pass: &Secret, salt: &[u8; 16], params: KdfParams) -> Result<Key32> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.check()?);
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(pass.expose().as_bytes(), salt, out.as_mut())
        .map_err(|e| Error::malformed("kdf parameters", e.to_string()))?;
    Ok(Key32::from_bytes(*out))
}

impl SealingKey {
    /// Derives a key for a new file: a fresh salt, these costs.
    pub fn new(pass: &Secret, params: KdfParams, rng: &mut dyn Randomness) -> Result<SealingKey> {
        let mut salt = [0u8; 16];
        rng.fill(&mut salt)?;
        Ok(SealingKey {
            key: derive(pass, &salt, params)?,
            salt,
            params,
        })
    }

    /// The costs it was derived with.
    pub fn params(&self) -> KdfParams {
        self.params
    }

    /// Seals `body` after `prefix`: `prefix ‖ header ‖ ciphertext`, or, when `frame` writes
    /// the ciphertext (e.g. with a length in front), `prefix ‖ header ‖ frame(ciphertext)`.
    pub fn seal(
        &self,
        prefix: &[u8],
        body: &[u8],
        rng: &mut dyn Randomness,
        frame: impl FnOnce(&mut Vec<u8>, &[u8]),
    ) -> Result<Vec<u8>> {
        let mut nonce = [0u8; 24];
        rng.fill(&mut nonce)?;
        let header = Header {
            salt: self.salt,
            params: self.params,
            nonce,
        };
        let mut out = Vec::with_capacity(prefix.len() + HEADER_LEN + body.len() + 24);
        out.extend_from_slice(prefix);
        out.extend_from_slice(&header.to_bytes());
        let ct = XChaCha20Poly1305::new(self.key.expose().into())
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: body,
                    aad: &out,
                },
            )
            .map_err(|_| Error::Decrypt)?;
        frame(&mut out, &ct);
        Ok(out)
    }

    /// Opens a ciphertext whose associated data is `aad` (every byte before it, header
    /// included) under `pass`: the body, and the key to save the file again with.
    pub fn open(
        pass: &Secret,
        header: &Header,
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<(SealingKey, zeroize::Zeroizing<Vec<u8>>)> {
        let key = derive(pass, &header.salt, header.params)?;
        let body = XChaCha20Poly1305::new(key.expose().into())
            .decrypt(
                &XNonce::from(header.nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| Error::WrongPassphrase)?;
        Ok((
            SealingKey {
                salt: header.salt,
                params: header.params,
                key,
            },
            zeroize::Zeroizing::new(body),
        ))
    }
}

/// Seals `body` once under `pass` (see [`SealingKey::seal`]); the ciphertext unframed.
pub fn seal(
    pass: &Secret,
    params: KdfParams,
    prefix: &[u8],
    body: &[u8],
    rng: &mut dyn Randomness,
) -> Result<(SealingKey, Vec<u8>)> {
    let key = SealingKey::new(pass, params, rng)?;
    let out = key.seal(prefix, body, rng, |o, ct| o.extend_from_slice(ct))?;
    Ok((key, out))
}

/// Opens `bytes` = `prefix ‖ header ‖ ciphertext` (the prefix checked by the caller).
pub fn open(
    pass: &Secret,
    prefix_len: usize,
    bytes: &[u8],
) -> Result<(SealingKey, zeroize::Zeroizing<Vec<u8>>)> {
    if bytes.len() < prefix_len + HEADER_LEN + 16 {
        return Err(Error::Truncated("sealed file"));
    }
    let mut r = Reader::new(&bytes[prefix_len..]);
    let header = Header::read(&mut r)?;
    let at = prefix_len + HEADER_LEN;
    SealingKey::open(pass, &header, &bytes[..at], &bytes[at..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::SeededRandom;

    const FAST: KdfParams = KdfParams::FAST_FOR_TESTS;

    #[test]
    fn seal_open_and_keep_the_key() {
        let mut rng = SeededRandom::new(b"env");
        let pass = Secret::new("correct horse");
        let (key, a) = seal(&pass, FAST, b"PRE", b"body one", &mut rng).expect("seal");
        let b = key
            .seal(b"PRE", b"body two", &mut rng, |o, ct| {
                o.extend_from_slice(ct)
            })
            .expect("again");
        assert_ne!(
            a[3 + 28..3 + HEADER_LEN],
            b[3 + 28..3 + HEADER_LEN],
            "fresh nonce"
        );
        assert_eq!(&*open(&pass, 3, &a).expect("open").1, b"body one");
        assert_eq!(&*open(&pass, 3, &b).expect("open").1, b"body two");
        assert_eq!(
            open(&Secret::new("wrong horse"), 3, &a).err(),
            Some(Error::WrongPassphrase)
        );
        let mut bad = a.clone();
        bad[0] ^= 1;
        assert!(open(&pass, 3, &bad).is_err(), "the prefix is authenticated");
    }

    #[test]
    fn caps_admit_rfc_9106_and_refuse_more() {
        let first = KdfParams {
            m_cost: 2 * 1024 * 1024,
            t_cost: 1,
            p_cost: 4,
        };
        assert!(first.check().is_ok());
        assert!(KdfParams::STRONG.check().is_ok());
        for bad in [
            KdfParams {
                m_cost: KdfParams::MAX_M_COST + 1,
                ..first
            },
            KdfParams { t_cost: 3, ..first },
            KdfParams {
                t_cost: 11,
                m_cost: 64,
                p_cost: 1,
            },
            KdfParams { p_cost: 9, ..first },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
