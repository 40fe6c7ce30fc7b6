//! Wrappers for secret values: zeroized on drop, redacted in `Debug` and `Display`, written
//! out by serde only where a field opts in with [`serialize_exposed`].

use serde::{Deserialize, Deserializer, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A secret string (card number, address, passphrase). It prints as `<redacted>`, is wiped
/// from memory when dropped, exposes its value only through [`Secret::expose`], and compares
/// in constant time (for equal lengths; the length is not secret). A field that must carry
/// it on the wire or to a file says so with `#[serde(serialize_with = "serialize_exposed")]`.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct Secret(String);

/// Whether two secret strings are equal, in time that depends only on their lengths (which
/// are not secret): tokens, card numbers, passphrases.
pub fn ct_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        ct_eq(&self.0, &other.0)
    }
}
impl Eq for Secret {}

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret value. Each call site is a place where the secret leaves its wrapper.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty or only whitespace.
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::new(s)
    }
}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl core::fmt::Display for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Writes a secret's value as a string: the explicit opt-in of a field that must carry it
/// (`#[serde(serialize_with = "warifu_core::secret::serialize_exposed")]`), so that no
/// struct holding a secret serializes it by accident: `Secret` itself is not `Serialize`.
///
/// ```compile_fail
/// let card = warifu_core::secret::Secret::new("4539148803436467");
/// serde_json::to_string(&card).unwrap();
/// ```
pub fn serialize_exposed<S: Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&secret.0)
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// A 32-byte symmetric key, zeroized on drop and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key32(pub(crate) [u8; 32]);

impl Key32 {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Key32 {
        Key32(bytes)
    }

    /// The raw key bytes.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for Key32 {
    fn eq(&self, other: &Key32) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for Key32 {}

impl core::fmt::Debug for Key32 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Key32(<redacted>)")
    }
}
