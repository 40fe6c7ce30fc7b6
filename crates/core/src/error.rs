//! The core's one error type: every failure a caller can see, each with a clear message.

/// Everything that can go wrong in the core. Messages never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input bytes ended before a field was complete.
    #[error("truncated input: {0} is incomplete")]
    Truncated(&'static str),
    /// Bytes remained after a complete structure.
    #[error("trailing bytes after {0}")]
    TrailingBytes(&'static str),
    /// A field held a value the format does not allow.
    #[error("malformed {field}: {reason}")]
    Malformed {
        /// The field that was malformed.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A format version this implementation does not speak.
    #[error("unsupported {what} version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// Which format.
        what: &'static str,
        /// The version found.
        found: u8,
        /// The version this build supports.
        supported: u8,
    },
    /// An identifier that is not of the form `role:name`.
    #[error("invalid identifier: {0}")]
    InvalidIdentifier(String),
    /// Two identifiers map to the same field element (refused at issuance).
    #[error("identifier {0} collides with an already issued identifier")]
    IdentifierCollision(String),
    /// Issuing one more Blom key would pass the center's limit, a margin below the collusion
    /// bound k (see `keycenter::margin`): k+1 key holders together recover the master.
    #[error(
        "the Blom center has issued {issued} identifiers and its limit is {limit} (k = {k}, \
         margin {margin}); one more would bring a coalition that recovers the master within reach"
    )]
    CollusionBound {
        /// The master's k.
        k: u32,
        /// The margin kept below k.
        margin: u32,
        /// The identifiers the limit allows for this issuance.
        limit: u32,
        /// The identifiers issued so far (revoked ones included).
        issued: u32,
    },
    /// The identity is on the key center's revocation list.
    #[error("identity {0} is revoked")]
    Revoked(String),
    /// A key was asked for a pair it cannot serve.
    #[error("no pairwise key between {owner} and {peer}")]
    NoPairwiseKey {
        /// The key holder.
        owner: String,
        /// The requested peer.
        peer: String,
    },
    /// Keys of different parameters or schemes were combined.
    #[error("key parameters do not match: {0}")]
    ParameterMismatch(String),
    /// Authenticated decryption or a MAC check failed. Deliberately says nothing about which
    /// check: wrong key, tampered bytes, wrong recipient and spliced parts all look the same.
    #[error("decryption failed: the data was tampered with, truncated, or not sealed for this key")]
    Decrypt,
    /// The passphrase of a sealed key file was wrong (or the file was tampered with).
    #[error("wrong passphrase, or the key file was tampered with")]
    WrongPassphrase,
    /// A sealed key file was opened without a passphrase.
    #[error("the key file is sealed under a passphrase; supply one")]
    PassphraseRequired,
    /// The order or its form failed validation.
    #[error("invalid order: {0}")]
    InvalidOrder(String),
    /// The disclosure policy is not acceptable.
    #[error("invalid disclosure policy: {0}")]
    InvalidPolicy(String),
    /// The form's disclosure policy gives a field to a party beyond the cardholder's ceiling
    /// (by default the patent's table: the card only to the issuer, the destination only to
    /// the carrier). The cardholder may widen the ceiling knowingly; it is never widened
    /// silently.
    #[error(
        "the order form discloses {field} to the {party}, beyond what this cardholder allows; \
         widen the disclosure ceiling knowingly to seal it"
    )]
    DisclosureRefused {
        /// The field's name (as in a policy file).
        field: &'static str,
        /// The party that would receive it.
        party: crate::id::Role,
    },
    /// The sealed order does not contain the requested party's part.
    #[error("the sealed order has no part for the {0}")]
    MissingPart(&'static str),
    /// The order's header does not match what the opener expected.
    #[error("header mismatch: {0}")]
    HeaderMismatch(String),
    /// A message's time is outside the accepted window (see `session::TIME_WINDOW`).
    #[error("message time is outside the accepted window; check the clocks")]
    Stale,
    /// A message was already received (replayed) or is too old for the replay window.
    #[error("message replayed or out of the replay window")]
    Replay,
    /// A version-3 part is sealed to a KEM key epoch whose private key the opener does not
    /// hold: deleted after its grace period (the part can never be opened again), or not
    /// given to the opener. The epoch is public (it travels in the part).
    #[error(
        "no KEM private key for epoch {epoch}: deleted after its grace period, or not supplied"
    )]
    KemKeyUnavailable {
        /// The epoch the part names.
        epoch: u32,
    },
    /// The operating system's random source failed.
    #[error("random number generator failure")]
    Rng,
}

/// The core's result type.
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    pub(crate) fn malformed(field: &'static str, reason: impl Into<String>) -> Error {
        Error::Malformed {
            field,
            reason: reason.into(),
        }
    }
}
