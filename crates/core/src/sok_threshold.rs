//! A threshold SOK master: t of n SOK centers each hold a Shamir share of the master scalar
//! and issue share keys; a party combines t share keys with Lagrange coefficients into its SOK
//! personal key, and no t − 1 centers together learn anything about the master.
//!
//! Dealing: the master s is the constant term of a random polynomial f of degree t − 1 over
//! Z_r (r the order of BLS12-381's groups); center i (1 ≤ i ≤ n) gets s_i = f(i). Center i
//! issues, for an identifier, (s_i·H1(id), s_i·H2(id)) — exactly a SOK personal key under
//! the scalar s_i ([`SokMaster::personal_key`]). A party holding share keys from a set S of
//! t centers computes λ_i = Π_{j∈S, j≠i} j / (j − i) mod r and
//! Σ_{i∈S} λ_i·(s_i·H(id)) = f(0)·H(id) = s·H(id) in G1 and in G2: its SOK personal key.
//! Any t − 1 shares are uniformly distributed whatever s is (Shamir), so fewer than t
//! centers cannot derive any pairwise key; the party checks the combined key against the
//! master's public key s·P1, so a center handing out a wrong share is caught.
//!
//! Scalar and point arithmetic is zkcrypto's `bls12_381` (pure safe Rust); issuing and the
//! checks are blst's, as in [`crate::sok`]. The dealer sees s once, when it splits it.

use bls12_381::{G1Affine, G1Projective, G2Affine, G2Projective, Scalar};
use blst::{BLST_ERROR, min_pk};
use zeroize::{Zeroize, Zeroizing};

use crate::codec::{Reader, Writer};
use crate::id::PartyId;
use crate::keyfile::{KdfParams, open_envelope, seal_envelope};
use crate::rand::Randomness;
use crate::secret::Secret;
use crate::sok::{DST_G2, G1_BYTES, G2_BYTES, SCALAR_BYTES, SokKey, SokMaster};
use crate::{Error, Result};

/// The most centers a master is split among.
pub const MAX_CENTERS: u8 = 255;
/// The key-file kind of a center's master share (§11 envelope; body
/// `u8 index ‖ u8 t ‖ u8 n ‖ s_i[32] ‖ s·P1[48]`).
pub const SHARE_KIND: u8 = 17;

/// One center's share of a threshold SOK master: its index i and s_i = f(i).
pub struct MasterShare {
    index: u8,
    threshold: u8,
    centers: u8,
    scalar: SokMaster,
}

impl core::fmt::Debug for MasterShare {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "MasterShare {{ index: {}, {} of {}, s_i: <redacted> }}",
            self.index, self.threshold, self.centers
        )
    }
}

/// A share of one party's SOK personal key, issued by center `index`.
#[derive(Clone)]
pub struct KeyShare {
    index: u8,
    key: SokKey,
}

impl core::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "KeyShare {{ index: {}, id: {}, points: <redacted> }}",
            self.index,
            self.key.id()
        )
    }
}

/// The scalar of a master, as `bls12_381` reads it (little-endian).
fn scalar_of(master: &SokMaster) -> Result<Scalar> {
    let mut le = *master.to_bytes();
    le.reverse();
    let s = Option::from(Scalar::from_bytes(&le));
    le.zeroize();
    s.ok_or_else(|| Error::malformed("SOK master", "not a scalar below r"))
}

/// A master from a `bls12_381` scalar (refuses 0).
fn master_of(s: &Scalar) -> Result<SokMaster> {
    let mut be = Zeroizing::new(s.to_bytes());
    be.reverse();
    let bytes: &[u8; SCALAR_BYTES] = &be;
    SokMaster::from_bytes(bytes)
}

/// A uniform scalar from 64 random bytes.
fn random_scalar(rng: &mut dyn Randomness) -> Result<Scalar> {
    let mut wide = Zeroizing::new([0u8; 64]);
    rng.fill(&mut wide[..])?;
    Ok(Scalar::from_bytes_wide(&wide))
}

/// Splits `master` into `n` shares of which any `t` recover it (1 ≤ t ≤ n ≤ 255). Center i
/// gets share i (1-based).
pub fn split(
    master: &SokMaster,
    t: u8,
    n: u8,
    rng: &mut dyn Randomness,
) -> Result<Vec<MasterShare>> {
    if t == 0 || t > n {
        return Err(Error::ParameterMismatch(format!(
            "a threshold of {t} of {n} centers: need 1 ≤ t ≤ n"
        )));
    }
    let mut coefficients = vec![scalar_of(master)?];
    for _ in 1..t {
        coefficients.push(random_scalar(rng)?);
    }
    let shares = (1..=n)
        .map(|i| {
            let x = Scalar::from(u64::from(i));
            // Horner: f(x) = c0 + x(c1 + x(c2 + …)).
            let y = coefficients
                .iter()
                .rev()
                .fold(Scalar::zero(), |acc, c| acc * x + c);
            Ok(MasterShare {
                index: i,
                threshold: t,
                centers: n,
                scalar: master_of(&y)?,
            })
        })
        .collect();
    for c in &mut coefficients {
        *c = Scalar::zero();
    }
    shares
}

impl MasterShare {
    /// The center's index i (1-based).
    pub fn index(&self) -> u8 {
        self.index
    }

    /// How many shares recover the master, and among how many centers.
    pub fn threshold(&self) -> (u8, u8) {
        (self.threshold, self.centers)
    }

    /// The share's public key s_i·P1 (compressed G1), which the center publishes so that a
    /// party can check the shares it receives.
    pub fn public_key(&self) -> [u8; G1_BYTES] {
        self.scalar.public_key()
    }

    /// The share as a key file (kind [`SHARE_KIND`]), carrying the master's public key
    /// s·P1 that combined keys are checked against; sealed under `passphrase` if given.
    pub fn encode_file(
        &self,
        master_public: &[u8; G1_BYTES],
        passphrase: Option<(&Secret, KdfParams)>,
        rng: &mut dyn Randomness,
    ) -> Result<Vec<u8>> {
        let mut w = Writer::new();
        w.u8(self.index)
            .u8(self.threshold)
            .u8(self.centers)
            .raw(&self.scalar.to_bytes()[..])
            .raw(master_public);
        let body = Zeroizing::new(w.finish());
        seal_envelope(SHARE_KIND, &body, passphrase, rng)
    }

    /// Reads a share's key file: the share and the master's public key.
    pub fn decode_file(
        bytes: &[u8],
        passphrase: Option<&Secret>,
    ) -> Result<(MasterShare, [u8; G1_BYTES])> {
        let (kind, body) = open_envelope(bytes, passphrase)?;
        if kind != SHARE_KIND {
            return Err(Error::malformed(
                "kind",
                format!("kind {kind} is not a SOK master share"),
            ));
        }
        let mut r = Reader::new(&body);
        let (index, threshold, centers) = (r.u8("index")?, r.u8("t")?, r.u8("n")?);
        let scalar: Zeroizing<[u8; SCALAR_BYTES]> = Zeroizing::new(r.array("share")?);
        let public: [u8; G1_BYTES] = r.array("master public key")?;
        r.finish("master share")?;
        if index == 0 || index > centers || threshold == 0 || threshold > centers {
            return Err(Error::malformed(
                "master share",
                "index or threshold out of range",
            ));
        }
        min_pk::PublicKey::key_validate(&public)
            .map_err(|_| Error::malformed("master public key", "not a valid G1 point"))?;
        let share = MasterShare {
            index,
            threshold,
            centers,
            scalar: SokMaster::from_bytes(&scalar)?,
        };
        Ok((share, public))
    }

    /// Issues the share of `id`'s personal key: (s_i·H1(id), s_i·H2(id)).
    pub fn key_share(&self, id: &PartyId) -> KeyShare {
        KeyShare {
            index: self.index,
            key: self.scalar.personal_key(id),
        }
    }
}

impl KeyShare {
    /// A share as received: center `index`'s compressed points for `id`, validated (on the
    /// curve, in the group, both halves under one scalar: [`SokKey::from_parts`]).
    pub fn from_parts(
        index: u8,
        id: PartyId,
        g1: &[u8; G1_BYTES],
        g2: &[u8; G2_BYTES],
    ) -> Result<KeyShare> {
        if index == 0 {
            return Err(Error::malformed("key share", "center indices start at 1"));
        }
        Ok(KeyShare {
            index,
            key: SokKey::from_parts(id, g1, g2)?,
        })
    }

    /// The issuing center's index.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The share's points (s_i·H1(id), s_i·H2(id)), compressed.
    pub fn to_parts(&self) -> ([u8; G1_BYTES], [u8; G2_BYTES]) {
        (self.key.g1_bytes(), self.key.g2_bytes())
    }

    /// Checks the share against its center's public key s_i·P1:
    /// e(P1, s_i·H2(id)) = e(s_i·P1, H2(id)) (a BLS min-pk verification; the G1 half is tied
    /// to the same scalar by [`KeyShare::from_parts`]).
    pub fn verify(&self, center_public: &[u8; G1_BYTES]) -> Result<()> {
        verify_g2_half(&self.key, center_public)
    }
}

/// e(P1, x·H2(id)) = e(x·P1, H2(id)) for the key's G2 half and the public key x·P1.
fn verify_g2_half(key: &SokKey, public: &[u8; G1_BYTES]) -> Result<()> {
    let pk = min_pk::PublicKey::key_validate(public)
        .map_err(|_| Error::malformed("SOK public key", "not a valid G1 point"))?;
    let sig = min_pk::Signature::sig_validate(&key.g2_bytes(), true)
        .map_err(|_| Error::malformed("SOK key", "not a valid G2 point"))?;
    match sig.verify(true, key.id().as_str().as_bytes(), DST_G2, &[], &pk, true) {
        BLST_ERROR::BLST_SUCCESS => Ok(()),
        _ => Err(Error::Decrypt),
    }
}

/// The Lagrange coefficient at 0 of index `i` among `indices`: Π_{j≠i} j / (j − i) mod r.
fn lagrange_at_zero(i: u8, indices: &[u8]) -> Result<Scalar> {
    let xi = Scalar::from(u64::from(i));
    let (mut num, mut den) = (Scalar::one(), Scalar::one());
    for &j in indices.iter().filter(|&&j| j != i) {
        let xj = Scalar::from(u64::from(j));
        num *= xj;
        den *= xj - xi;
    }
    let inv: Option<Scalar> = den.invert().into();
    inv.map(|d| num * d)
        .ok_or_else(|| Error::malformed("key shares", "two shares of one center"))
}

/// Combines `t` shares of `id`'s key, from `t` distinct centers, into its SOK personal key,
/// checked against the master's public key s·P1 (the combined key must verify under it, so
/// a wrong or forged share is refused, as [`Error::Decrypt`]). Give exactly the threshold's
/// number of shares: with fewer the result is not the master's key and fails the check.
pub fn combine(
    id: &PartyId,
    shares: &[KeyShare],
    master_public: &[u8; G1_BYTES],
) -> Result<SokKey> {
    if shares.is_empty() || shares.len() > usize::from(MAX_CENTERS) {
        return Err(Error::malformed("key shares", "between 1 and 255 shares"));
    }
    let indices: Vec<u8> = shares.iter().map(|s| s.index).collect();
    let mut sorted = indices.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != indices.len() {
        return Err(Error::malformed("key shares", "two shares of one center"));
    }
    if let Some(other) = shares.iter().find(|s| s.key.id() != id) {
        return Err(Error::malformed(
            "key shares",
            format!("a share is for {}, not {id}", other.key.id()),
        ));
    }
    let (mut g1, mut g2) = (G1Projective::identity(), G2Projective::identity());
    for share in shares {
        let lambda = lagrange_at_zero(share.index, &indices)?;
        let (p1, p2) = share.to_parts();
        let p1: Option<G1Affine> = G1Affine::from_compressed(&p1).into();
        let p2: Option<G2Affine> = G2Affine::from_compressed(&p2).into();
        let (Some(p1), Some(p2)) = (p1, p2) else {
            return Err(Error::malformed("key share", "not a valid point"));
        };
        g1 += p1 * lambda;
        g2 += p2 * lambda;
    }
    let key = SokKey::from_parts(
        id.clone(),
        &G1Affine::from(g1).to_compressed(),
        &G2Affine::from(g2).to_compressed(),
    )?;
    verify_g2_half(&key, master_public)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rand::SeededRandom;

    fn id(s: &str) -> PartyId {
        PartyId::parse(s).expect("id")
    }

    #[test]
    fn any_t_shares_give_the_masters_key_and_fewer_do_not() {
        let mut rng = SeededRandom::new(b"threshold");
        let master = SokMaster::generate(&mut rng).expect("master");
        let public = master.public_key();
        let shares = split(&master, 3, 5, &mut rng).expect("split");
        assert_eq!(shares.len(), 5);
        assert_eq!(shares[4].index(), 5);
        assert_eq!(shares[0].threshold(), (3, 5));
        let alice = id("cardholder:alice@mail.example");
        let shop = id("merchant:shop.example");
        let whole = master.personal_key(&alice);
        let key_shares: Vec<KeyShare> = shares.iter().map(|s| s.key_share(&alice)).collect();
        for (share, center) in key_shares.iter().zip(&shares) {
            share
                .verify(&center.public_key())
                .expect("each share verifies");
        }
        // Any three centers, in any order, give the master's key (and so its pairwise keys).
        for set in [[0, 1, 2], [4, 2, 0], [1, 3, 4], [2, 3, 4]] {
            let picked: Vec<KeyShare> = set.iter().map(|&i| key_shares[i].clone()).collect();
            let key = combine(&alice, &picked, &public).expect("combine");
            assert_eq!(key.g1_bytes(), whole.g1_bytes());
            assert_eq!(key.g2_bytes(), whole.g2_bytes());
            assert_eq!(
                *key.shared_gt(&shop).expect("gt"),
                *whole.shared_gt(&shop).expect("gt")
            );
        }
        // Two centers are not enough: their combination is not the master's key.
        let two = [key_shares[0].clone(), key_shares[1].clone()];
        assert!(combine(&alice, &two, &public).is_err());
        // With t = 1 every share is the master itself (a degree-0 polynomial).
        let solo = split(&master, 1, 2, &mut rng).expect("split 1 of 2");
        assert_eq!(solo[1].public_key(), public);
    }

    #[test]
    fn wrong_duplicate_or_foreign_shares_are_refused() {
        let mut rng = SeededRandom::new(b"threshold-bad");
        let master = SokMaster::generate(&mut rng).expect("master");
        let public = master.public_key();
        let shares = split(&master, 2, 3, &mut rng).expect("split");
        let alice = id("cardholder:alice@mail.example");
        let a = shares[0].key_share(&alice);
        let b = shares[1].key_share(&alice);
        // A center that hands out a share of another master (a consistent but wrong key).
        let rogue = SokMaster::generate(&mut rng).expect("rogue");
        let forged = KeyShare {
            index: 2,
            key: rogue.personal_key(&alice),
        };
        assert_eq!(
            forged.verify(&shares[1].public_key()).err(),
            Some(Error::Decrypt)
        );
        assert_eq!(
            combine(&alice, &[a.clone(), forged], &public).err(),
            Some(Error::Decrypt)
        );
        // The same center twice, a share for another identifier, another master's public key.
        assert!(combine(&alice, &[a.clone(), a.clone()], &public).is_err());
        let bob = shares[1].key_share(&id("cardholder:bob@mail.example"));
        assert!(combine(&alice, &[a.clone(), bob], &public).is_err());
        assert_eq!(
            combine(&alice, &[a.clone(), b.clone()], &rogue.public_key()).err(),
            Some(Error::Decrypt)
        );
        assert!(combine(&alice, &[a.clone(), b.clone()], &public).is_ok());
        // Parameters and encodings.
        assert!(split(&master, 0, 3, &mut rng).is_err());
        assert!(split(&master, 4, 3, &mut rng).is_err());
        let (g1, g2) = a.to_parts();
        assert!(KeyShare::from_parts(0, alice.clone(), &g1, &g2).is_err());
        let back = KeyShare::from_parts(1, alice.clone(), &g1, &g2).expect("parts");
        // A share's key file, plain or sealed, carries the master's public key.
        let file = shares[0]
            .encode_file(&public, None, &mut rng)
            .expect("file");
        let (again, public_back) = MasterShare::decode_file(&file, None).expect("decode");
        assert_eq!(
            (again.index(), again.threshold(), public_back),
            (1, (2, 3), public)
        );
        assert_eq!(again.public_key(), shares[0].public_key());
        let pass = Secret::new("share passphrase");
        let sealed = shares[1]
            .encode_file(&public, Some((&pass, KdfParams::FAST_FOR_TESTS)), &mut rng)
            .expect("sealed");
        assert!(MasterShare::decode_file(&sealed, None).is_err());
        assert_eq!(
            MasterShare::decode_file(&sealed, Some(&pass))
                .expect("open")
                .0
                .index(),
            2
        );
        let mut bad = file.clone();
        bad[5] = 16;
        assert!(MasterShare::decode_file(&bad, None).is_err());
        back.verify(&shares[0].public_key()).expect("verifies");
        assert!(!format!("{:?}{:?}", shares[0], back).contains(&hex(&g1)));
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
