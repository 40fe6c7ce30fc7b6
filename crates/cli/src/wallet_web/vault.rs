//! The wallet's own encrypted file: the cardholder's contact details, cards and addresses and
//! the orders placed, sealed under a passphrase with Argon2id (the key files' default costs)
//! and XChaCha20-Poly1305, written atomically with 0600 permissions.
//!
//! Format: `WRFW ‖ u8 version ‖ salt[16] ‖ u32 m ‖ u32 t ‖ u32 p ‖ nonce[24] ‖ ciphertext`, the
//! bytes before the ciphertext being its associated data. The body is JSON.

use std::path::{Path, PathBuf};
use warifu_core::OrderId;

use anyhow::{Context, Result, bail};
use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use warifu_core::PartyId;
use warifu_core::keyfile::KdfParams;
use warifu_core::order::Expiry;
use warifu_core::policy::Policy;
use warifu_core::rand::{OsRandom, Randomness};
use warifu_core::secret::Secret;
use zeroize::Zeroizing;

use crate::support::files;

const MAGIC: &[u8; 4] = b"WRFW";
const VERSION: u8 = 1;
const HEADER: usize = 4 + 1 + 16 + 12 + 24;

/// The cardholder's own contact details (sealed for the parties the policy names).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Name (as on the cards).
    pub name: String,
    /// Postal address.
    pub address: String,
    /// Telephone.
    pub telephone: String,
    /// FAX, if any.
    #[serde(default)]
    pub fax: Option<String>,
}

/// A card kept in the wallet. Only its last four digits are ever shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredCard {
    /// The wallet's id for it.
    pub id: String,
    /// Name on the card.
    pub holder_name: String,
    /// The number (digits only), written only into the sealed vault.
    #[serde(serialize_with = "warifu_core::secret::serialize_exposed")]
    pub number: Secret,
    /// Expiry month.
    pub expiry: Expiry,
    /// Its issuer.
    pub issuer: PartyId,
}

impl StoredCard {
    /// The last four digits.
    pub fn last4(&self) -> String {
        let n = self.number.expose();
        n[n.len().saturating_sub(4)..].to_owned()
    }
}

/// A delivery address kept in the wallet.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// The wallet's id for it.
    pub id: String,
    /// A label (`home`, `Taro`).
    pub label: String,
    /// Who receives parcels there (written only into the sealed vault).
    #[serde(serialize_with = "warifu_core::secret::serialize_exposed")]
    pub addressee: Secret,
    /// The address (written only into the sealed vault).
    #[serde(serialize_with = "warifu_core::secret::serialize_exposed")]
    pub address: Secret,
}

/// An order placed from the wallet.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRef {
    /// The merchant's order id.
    pub order_id: OrderId,
    /// The merchant.
    pub merchant: PartyId,
    /// The issuer of the card used.
    pub issuer: PartyId,
    /// The carrier, if shipped.
    pub carrier: Option<PartyId>,
    /// The total.
    pub amount: u64,
    /// Its currency.
    pub currency: String,
    /// What was bought, in words.
    pub summary: String,
    /// The payment method, in words.
    pub payment: String,
    /// The last four digits of the card used.
    pub card_last4: String,
    /// The disclosure policy it was sealed under.
    pub policy: Policy,
    /// When it was placed.
    pub placed_at_ms: i64,
    /// The merchant's state of the order when last seen (`declined`, `captured`, …).
    #[serde(default)]
    pub state: Option<String>,
}

/// Everything the wallet file holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultData {
    /// The cardholder's details.
    #[serde(default)]
    pub me: Contact,
    /// Cards.
    #[serde(default)]
    pub cards: Vec<StoredCard>,
    /// Addresses.
    #[serde(default)]
    pub addresses: Vec<Address>,
    /// Orders placed, oldest first.
    #[serde(default)]
    pub orders: Vec<OrderRef>,
}

/// An open wallet file: its contents and the key derived from the passphrase.
pub struct Vault {
    path: PathBuf,
    salt: [u8; 16],
    params: KdfParams,
    key: Zeroizing<[u8; 32]>,
    /// The contents.
    pub data: VaultData,
}

impl core::fmt::Debug for Vault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Vault {{ path: {}, .. }}", self.path.display())
    }
}

fn derive(pass: &Secret, salt: &[u8; 16], params: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    if params.m_cost > 1 << 20 || params.t_cost > 10 || params.p_cost > 8 {
        bail!("the wallet file asks for excessive key-derivation costs");
    }
    let p = Params::new(params.m_cost, params.t_cost, params.p_cost, Some(32))
        .map_err(|e| anyhow::anyhow!("bad key-derivation parameters: {e}"))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
        .hash_password_into(pass.expose().as_bytes(), salt, out.as_mut())
        .map_err(|e| anyhow::anyhow!("cannot derive the wallet key: {e}"))?;
    Ok(out)
}

impl Vault {
    /// Whether a wallet file exists at `path`.
    pub fn exists(path: &Path) -> bool {
        path.exists()
    }

    /// Creates a new wallet file at `path` (refusing to replace one) sealed under `pass`.
    pub fn create(path: &Path, pass: &Secret, data: VaultData) -> Result<Vault> {
        if pass.expose().chars().count() < 8 {
            bail!("the wallet passphrase must have at least 8 characters");
        }
        let mut salt = [0u8; 16];
        OsRandom
            .fill(&mut salt)
            .context("cannot draw random bytes")?;
        let params = KdfParams::default();
        let key = derive(pass, &salt, params)?;
        let v = Vault {
            path: path.to_owned(),
            salt,
            params,
            key,
            data,
        };
        v.write(files::Overwrite::Refuse)?;
        Ok(v)
    }

    /// Opens the wallet file at `path` with `pass`.
    pub fn open(path: &Path, pass: &Secret) -> Result<Vault> {
        let bytes = files::read_file(path)?;
        if bytes.len() < HEADER + 16 || &bytes[..4] != MAGIC {
            bail!("{} is not a Warifu wallet file", path.display());
        }
        if bytes[4] != VERSION {
            bail!(
                "{} has wallet format version {}, not {VERSION}",
                path.display(),
                bytes[4]
            );
        }
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&bytes[5..21]);
        let u32_at =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let params = KdfParams {
            m_cost: u32_at(21),
            t_cost: u32_at(25),
            p_cost: u32_at(29),
        };
        let mut nonce = [0u8; 24];
        nonce.copy_from_slice(&bytes[33..HEADER]);
        let key = derive(pass, &salt, params)?;
        let body = Zeroizing::new(
            XChaCha20Poly1305::new((&*key).into())
                .decrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: &bytes[HEADER..],
                        aad: &bytes[..HEADER],
                    },
                )
                .map_err(|_| {
                    anyhow::anyhow!("wrong passphrase (or the wallet file was altered)")
                })?,
        );
        let data: VaultData = serde_json::from_slice(&body)
            .map_err(|_| anyhow::anyhow!("the wallet file's contents are not readable"))?;
        Ok(Vault {
            path: path.to_owned(),
            salt,
            params,
            key,
            data,
        })
    }

    /// Writes the contents back (a fresh nonce, atomically, 0600).
    pub fn save(&self) -> Result<()> {
        self.write(files::Overwrite::Replace)
    }

    fn write(&self, overwrite: files::Overwrite) -> Result<()> {
        let mut nonce = [0u8; 24];
        OsRandom
            .fill(&mut nonce)
            .context("cannot draw random bytes")?;
        let mut out = Vec::with_capacity(HEADER + 1024);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.salt);
        for v in [self.params.m_cost, self.params.t_cost, self.params.p_cost] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&nonce);
        let body =
            Zeroizing::new(serde_json::to_vec(&self.data).context("cannot encode the wallet")?);
        let ct = XChaCha20Poly1305::new((&*self.key).into())
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &body,
                    aad: &out,
                },
            )
            .map_err(|_| anyhow::anyhow!("cannot encrypt the wallet"))?;
        out.extend_from_slice(&ct);
        files::write_secret(&self.path, &out, overwrite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("w.vault");
        let pass = Secret::new("correct horse");
        let mut data = VaultData::default();
        data.cards.push(StoredCard {
            id: "c1".into(),
            holder_name: "Hanako".into(),
            number: Secret::new("4539148803436467"),
            expiry: Expiry {
                year: 2031,
                month: 7,
            },
            issuer: PartyId::parse("issuer:bank.example").expect("id"),
        });
        let mut v = Vault::create(&path, &pass, data).expect("create");
        v.data.me.name = "Hanako".into();
        v.save().expect("save");
        let raw = std::fs::read(&path).expect("read");
        assert!(!raw.windows(16).any(|w| w == b"4539148803436467"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let back = Vault::open(&path, &pass).expect("open");
        assert_eq!(back.data.cards[0].last4(), "6467");
        assert_eq!(back.data.me.name, "Hanako");
        assert!(Vault::open(&path, &Secret::new("wrong horse")).is_err());
        assert!(Vault::create(&path, &pass, VaultData::default()).is_err());
        assert!(
            Vault::create(
                &dir.path().join("x"),
                &Secret::new("short"),
                VaultData::default()
            )
            .is_err()
        );
    }
}
