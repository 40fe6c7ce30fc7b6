//! Mutual confirmation (claim 5): a challenge–response handshake that proves possession of the
//! pairwise key in both directions, then a session whose every request and response is
//! authenticated, fresh and bound to its request.
//!
//! The handshake is ISO/IEC 9798-2's three-pass mutual authentication with the repair of
//! Basin, Cremers and Meier: both identities, both nonces and a distinct tag per message sit
//! under every MAC, so a message cannot be reflected back or replayed in another role.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::codec::Writer;
use crate::id::PartyId;
use crate::keysource::{KeySource, PairwiseKey, pairwise_key};
use crate::rand::Randomness;
use crate::secret::Key32;
use crate::{Error, Result};

/// The handshake version this build speaks.
pub const VERSION: u8 = 1;
/// MAC tag of the responder's proof (message 2).
pub const RESPONDER_TAG: &[u8] = b"warifu/v1/handshake/responder";
/// MAC tag of the initiator's proof (message 3).
pub const INITIATOR_TAG: &[u8] = b"warifu/v1/handshake/initiator";
/// HKDF info prefix of the session keys.
pub const SESSION_LABEL: &[u8] = b"warifu/v1/session";
/// MAC tag of a request.
pub const REQUEST_TAG: &[u8] = b"warifu/v1/session/request";
/// MAC tag of a response.
pub const RESPONSE_TAG: &[u8] = b"warifu/v1/session/response";
/// HKDF-Expand label of the request direction's record key (the record layer, §12.4).
pub const REQUEST_SEAL_LABEL: &[u8] = b"warifu/v1/session/request-seal";
/// HKDF-Expand label of the response direction's record key.
pub const RESPONSE_SEAL_LABEL: &[u8] = b"warifu/v1/session/response-seal";
/// The media type of a sealed body (a record).
pub const SEALED_CONTENT_TYPE: &str = "application/vnd.warifu.sealed";
/// Length of a record's nonce (XChaCha20).
pub const RECORD_NONCE_LEN: usize = 24;
/// Length of a record's Poly1305 tag.
pub const RECORD_TAG_LEN: usize = 16;
/// How much longer a record is than the body it seals: nonce and tag.
pub const RECORD_OVERHEAD: usize = RECORD_NONCE_LEN + RECORD_TAG_LEN;
/// How far a message's time may be from the receiver's clock, in seconds.
pub const TIME_WINDOW: u64 = 300;
/// How long a session lives, in seconds.
pub const SESSION_LIFETIME: u64 = 3600;
/// How many sequence numbers below the highest seen are still accepted once.
pub const REPLAY_WINDOW: u64 = 1024;
/// HKDF salt of a responder's own secret, the source of its cookie and ticket keys (§12.5).
pub const RESPONDER_SECRET_LABEL: &[u8] = b"warifu/v1/responder-secret";
/// HKDF-Expand label of the cookie key.
pub const COOKIE_KEY_LABEL: &[u8] = b"warifu/v1/handshake/cookie-key";
/// MAC tag of a cookie (the stateless responder's `nonce_r`).
pub const COOKIE_TAG: &[u8] = b"warifu/v1/handshake/cookie";
/// HKDF-Expand label of the ticket key.
pub const TICKET_KEY_LABEL: &[u8] = b"warifu/v1/session/ticket-key";
/// Associated-data label of a session ticket.
pub const TICKET_LABEL: &[u8] = b"warifu/v1/session/ticket";
/// The ticket format this build writes and reads.
pub const TICKET_VERSION: u8 = 1;
/// How long a cookie stays valid, in seconds either side of the responder's clock.
pub const COOKIE_LIFETIME: u64 = 30;
/// The longest ticket accepted on the wire, in base64url characters.
pub const MAX_TICKET_LEN: usize = 1024;

type HmacSha256 = Hmac<Sha256>;

/// Message 1, initiator → responder: who is talking to whom, and a fresh nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// Handshake version.
    pub version: u8,
    /// The initiator.
    pub initiator: PartyId,
    /// The responder it means to reach.
    pub responder: PartyId,
    /// The initiator's nonce.
    #[serde(with = "crate::sealed::b64_array")]
    pub nonce_i: [u8; 32],
    /// The initiator's clock, Unix seconds.
    pub time: u64,
}

/// Message 2, responder → initiator: its nonce and its proof of the pairwise key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Challenge {
    /// The responder's nonce; also names the pending handshake.
    #[serde(with = "crate::sealed::b64_array")]
    pub nonce_r: [u8; 32],
    /// HMAC(K, RESPONDER_TAG ‖ transcript).
    #[serde(with = "crate::sealed::b64_array")]
    pub mac: [u8; 32],
}

/// Message 3, initiator → responder: the initiator's proof of the pairwise key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    /// The responder's nonce, naming the pending handshake.
    #[serde(with = "crate::sealed::b64_array")]
    pub nonce_r: [u8; 32],
    /// HMAC(K, INITIATOR_TAG ‖ transcript).
    #[serde(with = "crate::sealed::b64_array")]
    pub mac: [u8; 32],
}

/// The bytes every handshake MAC covers: u8(version) ‖ u16-len initiator ‖ u16-len responder ‖
/// nonce_i ‖ nonce_r ‖ u64(time).
fn transcript(hello: &Hello, nonce_r: &[u8; 32]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(hello.version)
        .bytes16(hello.initiator.as_str().as_bytes())
        .bytes16(hello.responder.as_str().as_bytes())
        .raw(&hello.nonce_i)
        .raw(nonce_r)
        .u64(hello.time);
    w.finish()
}

fn mac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn check_time(time: u64, now: u64) -> Result<()> {
    if time.abs_diff(now) > TIME_WINDOW {
        return Err(Error::Stale);
    }
    Ok(())
}

/// The responder's checks of a [`Hello`] that need no key: the version
/// ([`Error::UnsupportedVersion`]), that it is addressed to `owner` ([`Error::HeaderMismatch`])
/// and its time ([`Error::Stale`]). A service runs them before it pays for a key derivation.
pub fn check_hello(hello: &Hello, owner: &PartyId, now: u64) -> Result<()> {
    check_addressed(hello, owner)?;
    check_time(hello.time, now)
}

fn check_addressed(hello: &Hello, owner: &PartyId) -> Result<()> {
    if hello.version != VERSION {
        return Err(Error::UnsupportedVersion {
            what: "handshake",
            found: hello.version,
            supported: VERSION,
        });
    }
    if &hello.responder != owner {
        return Err(Error::HeaderMismatch(format!(
            "this party is {owner}, not {}",
            hello.responder
        )));
    }
    Ok(())
}

/// The initiator after sending [`Hello`], waiting for the [`Challenge`].
pub struct Initiator {
    hello: Hello,
    key: PairwiseKey,
}

impl Initiator {
    /// Starts a handshake with `peer`; send the returned [`Hello`].
    pub fn start(
        keys: &dyn KeySource,
        peer: &PartyId,
        now: u64,
        rng: &mut dyn Randomness,
    ) -> Result<(Initiator, Hello)> {
        let key = pairwise_key(keys, peer)?;
        let mut nonce_i = [0u8; 32];
        rng.fill(&mut nonce_i)?;
        let hello = Hello {
            version: VERSION,
            initiator: keys.owner().clone(),
            responder: peer.clone(),
            nonce_i,
            time: now,
        };
        Ok((
            Initiator {
                hello: hello.clone(),
                key,
            },
            hello,
        ))
    }

    /// Checks the responder's proof; on success returns the session and the [`Confirm`] to send.
    /// A responder without the pairwise key (a fake merchant) fails here with
    /// [`Error::Decrypt`], before the initiator has sent anything secret.
    pub fn finish(self, challenge: &Challenge) -> Result<(Session, Confirm)> {
        let t = transcript(&self.hello, &challenge.nonce_r);
        let expected = mac(self.key.expose(), &[RESPONDER_TAG, &t]);
        if expected.ct_eq(&challenge.mac).unwrap_u8() == 0 {
            return Err(Error::Decrypt);
        }
        let confirm = Confirm {
            nonce_r: challenge.nonce_r,
            mac: mac(self.key.expose(), &[INITIATOR_TAG, &t]),
        };
        // The initiator's session lives from its own clock at the hello.
        let session = Session::derive(
            &self.key,
            &self.hello,
            &challenge.nonce_r,
            Side::Initiator,
            self.hello.time,
        )?;
        Ok((session, confirm))
    }
}

/// The responder after sending its [`Challenge`], waiting for the [`Confirm`].
pub struct PendingHandshake {
    hello: Hello,
    nonce_r: [u8; 32],
    key: PairwiseKey,
}

impl PendingHandshake {
    /// Answers a [`Hello`] addressed to `keys`' owner at time `now`.
    pub fn respond(
        keys: &dyn KeySource,
        hello: &Hello,
        now: u64,
        rng: &mut dyn Randomness,
    ) -> Result<(PendingHandshake, Challenge)> {
        check_hello(hello, keys.owner(), now)?;
        let key = pairwise_key(keys, &hello.initiator)?;
        let mut nonce_r = [0u8; 32];
        rng.fill(&mut nonce_r)?;
        PendingHandshake::answer(hello, nonce_r, key)
    }

    fn answer(
        hello: &Hello,
        nonce_r: [u8; 32],
        key: PairwiseKey,
    ) -> Result<(PendingHandshake, Challenge)> {
        if nonce_r == hello.nonce_i {
            return Err(Error::Rng);
        }
        let t = transcript(hello, &nonce_r);
        let challenge = Challenge {
            nonce_r,
            mac: mac(key.expose(), &[RESPONDER_TAG, &t]),
        };
        Ok((
            PendingHandshake {
                hello: hello.clone(),
                nonce_r,
                key,
            },
            challenge,
        ))
    }

    /// The initiator this handshake is with (not yet proven).
    pub fn initiator(&self) -> &PartyId {
        &self.hello.initiator
    }

    /// When the handshake started, by the initiator's clock.
    pub fn started(&self) -> u64 {
        self.hello.time
    }

    /// Checks the initiator's proof at time `now`; on success the session is established.
    pub fn confirm(self, confirm: &Confirm, now: u64) -> Result<Session> {
        check_time(self.hello.time, now)?;
        if confirm.nonce_r != self.nonce_r {
            return Err(Error::Decrypt);
        }
        // The responder's session lives from its own clock, not the initiator's claimed time.
        self.check_initiator(&confirm.mac, now)
    }

    /// Checks mac_I; on success the responder's session, living from `established`.
    fn check_initiator(self, mac_i: &[u8; 32], established: u64) -> Result<Session> {
        let t = transcript(&self.hello, &self.nonce_r);
        let expected = mac(self.key.expose(), &[INITIATOR_TAG, &t]);
        if expected.ct_eq(mac_i).unwrap_u8() == 0 {
            return Err(Error::Decrypt);
        }
        Session::derive(
            &self.key,
            &self.hello,
            &self.nonce_r,
            Side::Responder,
            established,
        )
    }
}

/// Message 3 of the stateless handshake (§12.5): the [`Confirm`] together with the [`Hello`]
/// it answers, so that a responder that kept nothing can check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelloConfirm {
    /// The initiator's message 1, unchanged.
    pub hello: Hello,
    /// The responder's nonce (its cookie).
    #[serde(with = "crate::sealed::b64_array")]
    pub nonce_r: [u8; 32],
    /// HMAC(K, INITIATOR_TAG ‖ transcript).
    #[serde(with = "crate::sealed::b64_array")]
    pub mac: [u8; 32],
}

impl HelloConfirm {
    /// Message 3 of the stateless handshake from the [`Hello`] sent and the [`Confirm`] made.
    pub fn new(hello: Hello, confirm: Confirm) -> HelloConfirm {
        HelloConfirm {
            hello,
            nonce_r: confirm.nonce_r,
            mac: confirm.mac,
        }
    }
}

/// HKDF-Expand(PRK = `prk`, info = u16(len(label)) ‖ label, L = 32).
fn expand_label(prk: &[u8; 32], label: &[u8]) -> Result<Key32> {
    let len = u16::try_from(label.len()).map_err(|_| Error::Rng)?;
    let hk = Hkdf::<Sha256>::from_prk(prk).map_err(|_| Error::Rng)?;
    let mut k = [0u8; 32];
    hk.expand_multi_info(&[&len.to_be_bytes(), label], &mut k)
        .map_err(|_| Error::Rng)?;
    Ok(Key32::from_bytes(k))
}

/// A party's stateless responder (§12.5): it keeps nothing per handshake and nothing per
/// session. Its challenge's `nonce_r` is a cookie (the responder's clock and a MAC under its
/// cookie key over the Hello), checked when message 3 comes back with the Hello; an
/// established session is a ticket (the session keys sealed under its ticket key) that the
/// initiator carries as the session's name. Every replica holding the party's key derives the
/// same two keys, so any replica answers any message.
pub struct Responder {
    owner: PartyId,
    cookie_key: Key32,
    ticket_key: Key32,
}

impl core::fmt::Debug for Responder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Responder {{ owner: {}, keys: <redacted> }}", self.owner)
    }
}

/// The session a ticket restores, before it is checked against a request.
struct TicketBody {
    key_id: [u8; 16],
    expires: u64,
    request_key: [u8; 32],
    response_key: [u8; 32],
    peer: PartyId,
}

impl Responder {
    /// The responder secret of `keys`' owner: HKDF-SHA256(salt = RESPONDER_SECRET_LABEL,
    /// ikm = the owner's shared secret with itself, info = u8(scheme) ‖ str16(owner)). Only
    /// the owner (and its key center) can compute it: a Blom or SOK key serves its own
    /// identifier like any other; a predistributed table does not ([`Error::NoPairwiseKey`]).
    pub fn secret(keys: &dyn KeySource) -> Result<Key32> {
        let owner = keys.owner();
        let ikm = keys.shared_secret(owner)?;
        let mut info = Writer::new();
        info.u8(keys.scheme().code())
            .bytes16(owner.as_str().as_bytes());
        let mut okm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(RESPONDER_SECRET_LABEL), &ikm)
            .expand(&info.finish(), &mut okm)
            .map_err(|_| Error::Rng)?;
        Ok(Key32::from_bytes(okm))
    }

    /// The responder of `keys`' owner, its keys from [`Responder::secret`].
    pub fn new(keys: &dyn KeySource) -> Result<Responder> {
        Responder::from_secret(keys.owner().clone(), &Responder::secret(keys)?)
    }

    /// The responder of `owner` with the given secret: cookie key = HKDF-Expand(secret,
    /// u16(30) ‖ "warifu/v1/handshake/cookie-key"), ticket key = HKDF-Expand(secret, u16(28) ‖
    /// "warifu/v1/session/ticket-key").
    pub fn from_secret(owner: PartyId, secret: &Key32) -> Result<Responder> {
        Ok(Responder {
            cookie_key: expand_label(secret.expose(), COOKIE_KEY_LABEL)?,
            ticket_key: expand_label(secret.expose(), TICKET_KEY_LABEL)?,
            owner,
        })
    }

    /// The party this responder answers for.
    pub fn owner(&self) -> &PartyId {
        &self.owner
    }

    /// The cookie for `hello` issued at `issued`: u64(issued) ‖ the first 24 bytes of
    /// HMAC-SHA256(cookie key, COOKIE_TAG ‖ u8(version) ‖ str16(id_I) ‖ str16(id_R) ‖ nonce_i ‖
    /// u64(time) ‖ u64(issued)).
    pub fn cookie(&self, hello: &Hello, issued: u64) -> [u8; 32] {
        let mut w = Writer::new();
        w.u8(hello.version)
            .bytes16(hello.initiator.as_str().as_bytes())
            .bytes16(hello.responder.as_str().as_bytes())
            .raw(&hello.nonce_i)
            .u64(hello.time)
            .u64(issued);
        let tag = mac(self.cookie_key.expose(), &[COOKIE_TAG, &w.finish()]);
        let mut cookie = [0u8; 32];
        cookie[..8].copy_from_slice(&issued.to_be_bytes());
        cookie[8..].copy_from_slice(&tag[..24]);
        cookie
    }

    /// Answers `hello` at `now` with message 2, whose `nonce_r` is the cookie: the checks of
    /// [`check_hello`], then the pairwise key (the costly step). Nothing is kept.
    pub fn challenge(&self, keys: &dyn KeySource, hello: &Hello, now: u64) -> Result<Challenge> {
        check_hello(hello, &self.owner, now)?;
        let key = pairwise_key(keys, &hello.initiator)?;
        PendingHandshake::answer(hello, self.cookie(hello, now), key).map(|(_, c)| c)
    }

    /// Checks message 3 at `now`, in this order: the Hello's version and responder, the
    /// cookie's time (|now − issued| > [`COOKIE_LIFETIME`]: [`Error::Stale`]) and MAC
    /// ([`Error::Decrypt`]), the Hello's time ([`Error::Stale`]), the pairwise key, mac_I
    /// ([`Error::Decrypt`]). The session lives from the cookie's time, the responder's own
    /// clock at the Hello, so a Confirm replayed within the cookie's life restores the very
    /// same session (same id, keys and end).
    pub fn confirm(&self, keys: &dyn KeySource, msg: &HelloConfirm, now: u64) -> Result<Session> {
        let hello = &msg.hello;
        check_addressed(hello, &self.owner)?;
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&msg.nonce_r[..8]);
        let issued = u64::from_be_bytes(issued);
        if issued.abs_diff(now) > COOKIE_LIFETIME {
            return Err(Error::Stale);
        }
        if self.cookie(hello, issued).ct_eq(&msg.nonce_r).unwrap_u8() == 0 {
            return Err(Error::Decrypt);
        }
        check_time(hello.time, now)?;
        let key = pairwise_key(keys, &hello.initiator)?;
        PendingHandshake {
            hello: hello.clone(),
            nonce_r: msg.nonce_r,
            key,
        }
        .check_initiator(&msg.mac, issued)
    }

    fn ticket_aad(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(TICKET_LABEL).bytes16(self.owner.as_str().as_bytes());
        w.finish()
    }

    /// The ticket of a responder's `session`, sealed with `nonce` (24 random bytes):
    /// base64url(nonce ‖ XChaCha20-Poly1305(ticket key, nonce, aad = TICKET_LABEL ‖
    /// str16(id_R), u8(1) ‖ key id (16 bytes) ‖ u64(expires) ‖ request_key ‖ response_key ‖
    /// str16(id_I))).
    pub fn ticket(&self, session: &Session, nonce: &[u8; RECORD_NONCE_LEN]) -> Result<String> {
        if session.side != Side::Responder || session.me != self.owner {
            return Err(Error::HeaderMismatch(
                "a ticket is issued by the session's responder".into(),
            ));
        }
        let key_id = hex_decode16(&session.key_id)?;
        let mut w = Writer::new();
        w.u8(TICKET_VERSION)
            .raw(&key_id)
            .u64(session.expires_at())
            .raw(session.request_key.expose())
            .raw(session.response_key.expose())
            .bytes16(session.peer.as_str().as_bytes());
        let plain = zeroize::Zeroizing::new(w.finish());
        let sealed = seal_record(&self.ticket_key, nonce, &self.ticket_aad(), &plain)?;
        use base64::Engine as _;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The responder's session named by `ticket` at `now`. A ticket that is malformed, was
    /// sealed under another key or for another responder, or has expired is
    /// [`Error::Decrypt`] (the caller answers `session_unknown`: handshake again).
    pub fn resume(&self, ticket: &str, now: u64) -> Result<Session> {
        crate::meter::measure(crate::meter::Section::Session, || {
            check_ticket_text(ticket).map_err(|_| Error::Decrypt)?;
            use base64::Engine as _;
            let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(ticket.as_bytes())
                .map_err(|_| Error::Decrypt)?;
            let plain = zeroize::Zeroizing::new(open_record(
                &self.ticket_key,
                &self.ticket_aad(),
                &sealed,
            )?);
            let body = TicketBody::decode(&plain).map_err(|_| Error::Decrypt)?;
            if now > body.expires {
                return Err(Error::Decrypt);
            }
            Ok(Session {
                id: ticket.to_owned(),
                key_id: body.key_id.iter().map(|b| format!("{b:02x}")).collect(),
                side: Side::Responder,
                me: self.owner.clone(),
                peer: body.peer,
                request_seal: record_key(&body.request_key, Direction::Request)?,
                response_seal: record_key(&body.response_key, Direction::Response)?,
                request_key: Key32::from_bytes(body.request_key),
                response_key: Key32::from_bytes(body.response_key),
                established: body.expires.saturating_sub(SESSION_LIFETIME),
                next_seq: 1,
                window: ReplayWindow::default(),
            })
        })
    }
}

impl TicketBody {
    fn decode(plain: &[u8]) -> Result<TicketBody> {
        let mut r = crate::codec::Reader::new(plain);
        let version = r.u8("ticket version")?;
        if version != TICKET_VERSION {
            return Err(Error::UnsupportedVersion {
                what: "ticket",
                found: version,
                supported: TICKET_VERSION,
            });
        }
        let key_id = r.array::<16>("ticket key id")?;
        let expires = r.u64("ticket expiry")?;
        let request_key = r.array::<32>("ticket request key")?;
        let response_key = r.array::<32>("ticket response key")?;
        let peer = PartyId::parse(r.str16("ticket peer")?)?;
        r.finish("ticket")?;
        Ok(TicketBody {
            key_id,
            expires,
            request_key,
            response_key,
            peer,
        })
    }
}

fn check_ticket_text(ticket: &str) -> Result<()> {
    let ok = !ticket.is_empty()
        && ticket.len() <= MAX_TICKET_LEN
        && ticket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::malformed(
            "ticket",
            format!("1 to {MAX_TICKET_LEN} base64url characters"),
        ))
    }
}

fn hex_decode16(s: &str) -> Result<[u8; 16]> {
    let bytes = s.as_bytes();
    if bytes.len() != 32 {
        return Err(Error::malformed("session id", "32 hex digits"));
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let text = core::str::from_utf8(pair).map_err(|_| Error::malformed("session id", "hex"))?;
        *o = u8::from_str_radix(text, 16).map_err(|_| Error::malformed("session id", "hex"))?;
    }
    Ok(out)
}

/// Which end of a session this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Sends requests, receives responses.
    Initiator,
    /// Receives requests, sends responses.
    Responder,
}

/// The authentication of one request or response, carried in HTTP headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageAuth {
    /// The session id (hex).
    pub session: String,
    /// The request's sequence number (a response repeats its request's).
    pub seq: u64,
    /// The sender's clock, Unix seconds.
    pub time: u64,
    /// The MAC.
    #[serde(with = "crate::sealed::b64_array")]
    pub mac: [u8; 32],
}

/// An established session: directional keys, the peer's proven identity, replay state.
pub struct Session {
    /// The session's name on the wire: the derived id, or the responder's ticket once the
    /// initiator adopted it (§12.5).
    id: String,
    /// The derived id (hex), the same for every ticket of this session.
    key_id: String,
    side: Side,
    me: PartyId,
    peer: PartyId,
    request_key: Key32,
    response_key: Key32,
    request_seal: Key32,
    response_seal: Key32,
    established: u64,
    next_seq: u64,
    window: ReplayWindow,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Session {{ id: {}, me: {}, peer: {}, keys: <redacted> }}",
            self.id, self.me, self.peer
        )
    }
}

impl Session {
    /// Keys: HKDF-SHA256(salt = nonce_i ‖ nonce_r, ikm = K, info = SESSION_LABEL ‖ transcript)
    /// → 64 bytes: request key (initiator → responder) then response key. The id is the
    /// first 16 bytes of SHA-256(SESSION_LABEL ‖ transcript), in hex.
    fn derive(
        key: &PairwiseKey,
        hello: &Hello,
        nonce_r: &[u8; 32],
        side: Side,
        established: u64,
    ) -> Result<Session> {
        let t = transcript(hello, nonce_r);
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(&hello.nonce_i);
        salt[32..].copy_from_slice(nonce_r);
        let mut okm = zeroize::Zeroizing::new([0u8; 64]);
        Hkdf::<Sha256>::new(Some(&salt), key.expose())
            .expand_multi_info(&[SESSION_LABEL, &t], &mut okm[..])
            .map_err(|_| Error::Rng)?;
        let mut request_key = [0u8; 32];
        let mut response_key = [0u8; 32];
        request_key.copy_from_slice(&okm[..32]);
        response_key.copy_from_slice(&okm[32..]);
        let digest = Sha256::new()
            .chain_update(SESSION_LABEL)
            .chain_update(&t)
            .finalize();
        let id: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        let (me, peer) = match side {
            Side::Initiator => (hello.initiator.clone(), hello.responder.clone()),
            Side::Responder => (hello.responder.clone(), hello.initiator.clone()),
        };
        Ok(Session {
            key_id: id.clone(),
            id,
            side,
            me,
            peer,
            request_seal: record_key(&request_key, Direction::Request)?,
            response_seal: record_key(&response_key, Direction::Response)?,
            request_key: Key32::from_bytes(request_key),
            response_key: Key32::from_bytes(response_key),
            established,
            next_seq: 1,
            window: ReplayWindow::default(),
        })
    }

    /// The session's name on the wire (the `Warifu-Session` header): the derived id of
    /// §12.2, or the ticket of §12.5 once [`Session::adopt_ticket`] took it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The derived session id of §12.2 (32 hex characters), the same for every ticket of
    /// the session: what logs name and replay records are keyed by.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// When the session ends (Unix seconds).
    pub fn expires_at(&self) -> u64 {
        self.established.saturating_add(SESSION_LIFETIME)
    }

    /// Initiator: names the session by the responder's ticket (§12.5) from now on; later
    /// requests carry it as their session id, and their MACs cover it.
    pub fn adopt_ticket(&mut self, ticket: &str) -> Result<()> {
        if self.side != Side::Initiator {
            return Err(Error::HeaderMismatch(
                "only the initiator carries a ticket".into(),
            ));
        }
        check_ticket_text(ticket)?;
        self.id = ticket.to_owned();
        Ok(())
    }

    /// The authenticated peer.
    pub fn peer(&self) -> &PartyId {
        &self.peer
    }

    /// This end's identity.
    pub fn me(&self) -> &PartyId {
        &self.me
    }

    /// Whether the session has outlived [`SESSION_LIFETIME`] at `now`.
    pub fn expired(&self, now: u64) -> bool {
        now > self.established.saturating_add(SESSION_LIFETIME)
    }

    fn request_mac(&self, seq: u64, time: u64, method: &str, path: &str, body: &[u8]) -> [u8; 32] {
        crate::meter::measure(crate::meter::Section::Session, || {
            let mut w = Writer::new();
            w.bytes16(self.id.as_bytes())
                .u64(seq)
                .u64(time)
                .bytes32(method.as_bytes())
                .bytes32(path.as_bytes())
                .raw(&Sha256::digest(body));
            mac(self.request_key.expose(), &[REQUEST_TAG, &w.finish()])
        })
    }

    fn response_mac(&self, request: &MessageAuth, time: u64, status: u16, body: &[u8]) -> [u8; 32] {
        crate::meter::measure(crate::meter::Section::Session, || {
            let mut w = Writer::new();
            w.bytes16(self.id.as_bytes())
                .u64(request.seq)
                .raw(&request.mac)
                .u64(time)
                .u16(status)
                .raw(&Sha256::digest(body));
            mac(self.response_key.expose(), &[RESPONSE_TAG, &w.finish()])
        })
    }

    /// Initiator: authenticates a request `method path` with `body`.
    pub fn sign_request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        now: u64,
    ) -> Result<MessageAuth> {
        if self.side != Side::Initiator {
            return Err(Error::HeaderMismatch(
                "only the initiator sends requests".into(),
            ));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        Ok(MessageAuth {
            session: self.id.clone(),
            seq,
            time: now,
            mac: self.request_mac(seq, now, method, path, body),
        })
    }

    /// Responder: checks a request's MAC, time and freshness; a replayed or stale sequence
    /// number is refused with [`Error::Replay`].
    pub fn verify_request(
        &mut self,
        auth: &MessageAuth,
        method: &str,
        path: &str,
        body: &[u8],
        now: u64,
    ) -> Result<()> {
        self.check_request(auth, method, path, body, now)?;
        if !self.window.accept(auth.seq) {
            return Err(Error::Replay);
        }
        Ok(())
    }

    /// Everything [`Session::verify_request`] checks but freshness of the sequence number.
    fn check_request(
        &self,
        auth: &MessageAuth,
        method: &str,
        path: &str,
        body: &[u8],
        now: u64,
    ) -> Result<()> {
        if self.side != Side::Responder {
            return Err(Error::HeaderMismatch(
                "only the responder receives requests".into(),
            ));
        }
        if auth.session != self.id || self.expired(now) {
            return Err(Error::Decrypt);
        }
        check_time(auth.time, now)?;
        let expected = self.request_mac(auth.seq, auth.time, method, path, body);
        if expected.ct_eq(&auth.mac).unwrap_u8() == 0 {
            return Err(Error::Decrypt);
        }
        Ok(())
    }

    /// Responder: authenticates the response to `request`.
    pub fn sign_response(
        &self,
        request: &MessageAuth,
        status: u16,
        body: &[u8],
        now: u64,
    ) -> MessageAuth {
        MessageAuth {
            session: self.id.clone(),
            seq: request.seq,
            time: now,
            mac: self.response_mac(request, now, status, body),
        }
    }

    /// Initiator: checks that `response` answers exactly `request`, fresh and untampered.
    pub fn verify_response(
        &self,
        request: &MessageAuth,
        response: &MessageAuth,
        status: u16,
        body: &[u8],
        now: u64,
    ) -> Result<()> {
        if response.session != self.id || response.seq != request.seq {
            return Err(Error::Decrypt);
        }
        check_time(response.time, now)?;
        let expected = self.response_mac(request, response.time, status, body);
        if expected.ct_eq(&response.mac).unwrap_u8() == 0 {
            return Err(Error::Decrypt);
        }
        Ok(())
    }
}

/// The record layer (§12.4): every body of a session travels as a record, encrypted and
/// authenticated under its direction's record key; the session MAC then covers the record.
impl Session {
    /// Initiator: seals `body` into a record and authenticates the request `method path`
    /// carrying it. Send the record as the body (even for an empty `body`).
    pub fn seal_request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        now: u64,
        rng: &mut dyn Randomness,
    ) -> Result<(MessageAuth, Vec<u8>)> {
        if self.side != Side::Initiator {
            return Err(Error::HeaderMismatch(
                "only the initiator sends requests".into(),
            ));
        }
        let mut nonce = [0u8; RECORD_NONCE_LEN];
        rng.fill(&mut nonce)?;
        let seq = self.next_seq;
        let aad = request_aad(&self.id, seq, now, method, path);
        let record = seal_record(&self.request_seal, &nonce, &aad, body)?;
        let auth = self.sign_request(method, path, &record, now)?;
        Ok((auth, record))
    }

    /// Responder: checks a sealed request (MAC, time, session, record) and returns its body.
    /// The sequence number is consumed only once everything verified; a replay is refused
    /// with [`Error::Replay`], anything else that does not verify with [`Error::Decrypt`].
    pub fn open_request(
        &mut self,
        auth: &MessageAuth,
        method: &str,
        path: &str,
        record: &[u8],
        now: u64,
    ) -> Result<Vec<u8>> {
        self.check_request(auth, method, path, record, now)?;
        let aad = request_aad(&self.id, auth.seq, auth.time, method, path);
        let body = open_record(&self.request_seal, &aad, record)?;
        if !self.window.accept(auth.seq) {
            return Err(Error::Replay);
        }
        Ok(body)
    }

    /// Responder: seals the response `body` to `request` and authenticates it.
    pub fn seal_response(
        &self,
        request: &MessageAuth,
        status: u16,
        body: &[u8],
        now: u64,
        rng: &mut dyn Randomness,
    ) -> Result<(MessageAuth, Vec<u8>)> {
        if self.side != Side::Responder {
            return Err(Error::HeaderMismatch(
                "only the responder sends responses".into(),
            ));
        }
        let mut nonce = [0u8; RECORD_NONCE_LEN];
        rng.fill(&mut nonce)?;
        let aad = response_aad(&self.id, request.seq, &request.mac, now, status);
        let record = seal_record(&self.response_seal, &nonce, &aad, body)?;
        let auth = self.sign_response(request, status, &record, now);
        Ok((auth, record))
    }

    /// Initiator: checks that the sealed `record` answers exactly `request` and returns its
    /// body.
    pub fn open_response(
        &self,
        request: &MessageAuth,
        response: &MessageAuth,
        status: u16,
        record: &[u8],
        now: u64,
    ) -> Result<Vec<u8>> {
        if self.side != Side::Initiator {
            return Err(Error::HeaderMismatch(
                "only the initiator receives responses".into(),
            ));
        }
        self.verify_response(request, response, status, record, now)?;
        let aad = response_aad(&self.id, request.seq, &request.mac, response.time, status);
        open_record(&self.response_seal, &aad, record)
    }
}

/// Which way a record travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Initiator → responder.
    Request,
    /// Responder → initiator.
    Response,
}

impl Direction {
    /// The HKDF-Expand label of this direction's record key.
    pub fn label(self) -> &'static [u8] {
        match self {
            Direction::Request => REQUEST_SEAL_LABEL,
            Direction::Response => RESPONSE_SEAL_LABEL,
        }
    }
}

/// A direction's record key: HKDF-Expand(PRK = that direction's session key (request key or
/// response key), info = u16(len(label)) ‖ label, L = 32).
pub fn record_key(session_key: &[u8; 32], direction: Direction) -> Result<Key32> {
    expand_label(session_key, direction.label())
}

/// A request record's associated data: the request MAC's input without the body digest,
/// u16-len session id ‖ u64 seq ‖ u64 time ‖ u32-len method ‖ u32-len path.
pub fn request_aad(session: &str, seq: u64, time: u64, method: &str, path: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes16(session.as_bytes())
        .u64(seq)
        .u64(time)
        .bytes32(method.as_bytes())
        .bytes32(path.as_bytes());
    w.finish()
}

/// A response record's associated data: the response MAC's input without the body digest,
/// u16-len session id ‖ u64 seq ‖ request MAC ‖ u64 time ‖ u16 status.
pub fn response_aad(
    session: &str,
    seq: u64,
    request_mac: &[u8; 32],
    time: u64,
    status: u16,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes16(session.as_bytes())
        .u64(seq)
        .raw(request_mac)
        .u64(time)
        .u16(status);
    w.finish()
}

/// A record: nonce ‖ XChaCha20-Poly1305(key, nonce, aad, body) (ciphertext ‖ 16-byte tag).
pub fn seal_record(
    key: &Key32,
    nonce: &[u8; RECORD_NONCE_LEN],
    aad: &[u8],
    body: &[u8],
) -> Result<Vec<u8>> {
    crate::meter::measure(crate::meter::Section::Session, || {
        let sealed = XChaCha20Poly1305::new(key.expose().into())
            .encrypt(&XNonce::from(*nonce), Payload { msg: body, aad })
            .map_err(|_| Error::Decrypt)?;
        let mut record = Vec::with_capacity(RECORD_NONCE_LEN + sealed.len());
        record.extend_from_slice(nonce);
        record.extend_from_slice(&sealed);
        Ok(record)
    })
}

/// Opens a record sealed by [`seal_record`]; any change to it, to `aad` or the key is
/// [`Error::Decrypt`], as is a record shorter than its nonce and tag.
pub fn open_record(key: &Key32, aad: &[u8], record: &[u8]) -> Result<Vec<u8>> {
    crate::meter::measure(crate::meter::Section::Session, || {
        if record.len() < RECORD_OVERHEAD {
            return Err(Error::Decrypt);
        }
        let (nonce, sealed) = record.split_at(RECORD_NONCE_LEN);
        let nonce: [u8; RECORD_NONCE_LEN] = nonce.try_into().map_err(|_| Error::Decrypt)?;
        XChaCha20Poly1305::new(key.expose().into())
            .decrypt(&XNonce::from(nonce), Payload { msg: sealed, aad })
            .map_err(|_| Error::Decrypt)
    })
}

/// Sliding-window anti-replay (as in IPsec): each sequence number is accepted once, and only
/// if it is within [`REPLAY_WINDOW`] of the highest seen.
#[derive(Debug, Default)]
pub struct ReplayWindow {
    highest: u64,
    seen: std::collections::BTreeSet<u64>,
}

impl ReplayWindow {
    /// Whether `seq` is accepted (and from now on seen): not 0, not seen, not
    /// [`REPLAY_WINDOW`] or more below the highest seen.
    pub fn accept(&mut self, seq: u64) -> bool {
        if seq == 0 || seq.saturating_add(REPLAY_WINDOW) <= self.highest || self.seen.contains(&seq)
        {
            return false;
        }
        self.seen.insert(seq);
        if seq > self.highest {
            self.highest = seq;
            let floor = self.highest.saturating_sub(REPLAY_WINDOW);
            self.seen = self.seen.split_off(&floor);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blom::{Master, PersonalKey};
    use crate::rand::SeededRandom;

    const NOW: u64 = 1_800_000_000;

    fn keys() -> (PersonalKey, PersonalKey, PersonalKey) {
        let master = Master::generate(4, &mut SeededRandom::new(b"hs")).expect("master");
        let id = |s: &str| PartyId::parse(s).expect("id");
        (
            master.personal_key(&id("merchant:shop")),
            master.personal_key(&id("issuer:bank")),
            master.personal_key(&id("merchant:fake")),
        )
    }

    fn handshake(a: &PersonalKey, b: &PersonalKey) -> Result<(Session, Session)> {
        let mut rng = SeededRandom::new(b"r");
        let (init, hello) = Initiator::start(a, b.owner(), NOW, &mut rng)?;
        let (pending, challenge) = PendingHandshake::respond(b, &hello, NOW, &mut rng)?;
        let (client, confirm) = init.finish(&challenge)?;
        let server = pending.confirm(&confirm, NOW + 1)?;
        Ok((client, server))
    }

    #[test]
    fn both_sides_agree_and_messages_flow() {
        let (m, i, _) = keys();
        let (mut client, mut server) = handshake(&m, &i).expect("handshake");
        assert_eq!(client.id(), server.id());
        assert_eq!(server.peer(), m.owner());
        let req = client
            .sign_request("POST", "/v1/authorize", b"{}", NOW)
            .expect("sign");
        server
            .verify_request(&req, "POST", "/v1/authorize", b"{}", NOW)
            .expect("verify");
        let resp = server.sign_response(&req, 200, b"ok", NOW);
        client
            .verify_response(&req, &resp, 200, b"ok", NOW)
            .expect("response");
        // Replay of the same request.
        assert_eq!(
            server.verify_request(&req, "POST", "/v1/authorize", b"{}", NOW),
            Err(Error::Replay)
        );
        // Tampered body, path or status.
        let req2 = client
            .sign_request("POST", "/v1/authorize", b"{}", NOW)
            .expect("sign");
        assert!(
            server
                .verify_request(&req2, "POST", "/v1/capture", b"{}", NOW)
                .is_err()
        );
        assert!(
            client
                .verify_response(&req, &resp, 500, b"ok", NOW)
                .is_err()
        );
        // A response moved onto another request.
        assert!(
            client
                .verify_response(&req2, &resp, 200, b"ok", NOW)
                .is_err()
        );
        // Reflection: a request presented as a response, and vice versa.
        let as_resp = MessageAuth { ..req2.clone() };
        assert!(
            client
                .verify_response(&req2, &as_resp, 200, b"{}", NOW)
                .is_err()
        );
        // A stale message.
        let old = client
            .sign_request("GET", "/x", b"", NOW - TIME_WINDOW - 1)
            .expect("sign");
        assert_eq!(
            server.verify_request(&old, "GET", "/x", b"", NOW),
            Err(Error::Stale)
        );
    }

    #[test]
    fn a_fake_party_learns_nothing_and_gets_no_session() {
        let (m, i, fake) = keys();
        let mut rng = SeededRandom::new(b"f");
        // A fake merchant claims to be merchant:shop to the issuer, holding its own key.
        let (_, mut hello) = Initiator::start(&fake, i.owner(), NOW, &mut rng).expect("start");
        hello.initiator = m.owner().clone();
        let (pending, challenge) =
            PendingHandshake::respond(&i, &hello, NOW, &mut rng).expect("respond");
        // It cannot produce the initiator's proof without merchant:shop's key.
        let forged = Confirm {
            nonce_r: challenge.nonce_r,
            mac: challenge.mac,
        };
        assert!(
            pending.confirm(&forged, NOW).is_err(),
            "reflected responder MAC accepted"
        );
        // A fake issuer answering the real merchant cannot prove the key either.
        let (init, hello) = Initiator::start(&m, i.owner(), NOW, &mut rng).expect("start");
        let fake_issuer = Master::generate(4, &mut SeededRandom::new(b"other"))
            .expect("master")
            .personal_key(i.owner());
        let (_, challenge) =
            PendingHandshake::respond(&fake_issuer, &hello, NOW, &mut rng).expect("respond");
        assert_eq!(init.finish(&challenge).err(), Some(Error::Decrypt));
    }

    #[test]
    fn records_round_trip_and_hide_the_body() {
        let (m, i, _) = keys();
        let (mut client, mut server) = handshake(&m, &i).expect("handshake");
        let mut rng = SeededRandom::new(b"records");
        let secret = br#"{"destination":"7-3-1 Hongo"}"#;
        for body in [&secret[..], b""] {
            let (auth, record) = client
                .seal_request("POST", "/v1/x", body, NOW, &mut rng)
                .expect("seal");
            assert_eq!(record.len(), body.len() + RECORD_OVERHEAD);
            assert!(!record.windows(5).any(|w| w == b"Hongo"));
            let opened = server
                .open_request(&auth, "POST", "/v1/x", &record, NOW)
                .expect("open");
            assert_eq!(opened, body);
            let (resp, rrecord) = server
                .seal_response(&auth, 200, body, NOW, &mut rng)
                .expect("seal response");
            assert_eq!(rrecord.len(), body.len() + RECORD_OVERHEAD);
            assert!(!rrecord.windows(5).any(|w| w == b"Hongo"));
            let answer = client
                .open_response(&auth, &resp, 200, &rrecord, NOW)
                .expect("open response");
            assert_eq!(answer, body);
            // A replayed record is refused as a replay, after it verified.
            assert_eq!(
                server.open_request(&auth, "POST", "/v1/x", &record, NOW),
                Err(Error::Replay)
            );
        }
        // The record and the MAC agree with the plain MAC functions: the MAC covers the record.
        let (auth, record) = client
            .seal_request("GET", "/v1/y", b"", NOW, &mut rng)
            .expect("seal");
        assert!(
            server
                .check_request(&auth, "GET", "/v1/y", &record, NOW)
                .is_ok()
        );
    }

    #[test]
    fn a_tampered_misdirected_or_reordered_record_is_refused() {
        let (m, i, _) = keys();
        let (mut client, mut server) = handshake(&m, &i).expect("handshake");
        let mut rng = SeededRandom::new(b"tamper");
        let (a1, r1) = client
            .seal_request("POST", "/v1/x", b"first", NOW, &mut rng)
            .expect("seal");
        let (a2, r2) = client
            .seal_request("POST", "/v1/x", b"second", NOW, &mut rng)
            .expect("seal");
        // Every flipped bit of the record fails (the MAC, and the AEAD under it).
        for at in [0, RECORD_NONCE_LEN, r1.len() - 1] {
            let mut bad = r1.clone();
            bad[at] ^= 1;
            assert_eq!(
                server.open_request(&a1, "POST", "/v1/x", &bad, NOW),
                Err(Error::Decrypt)
            );
        }
        // Reordered: record 2 under the headers of request 1, and the other way round.
        assert_eq!(
            server.open_request(&a1, "POST", "/v1/x", &r2, NOW),
            Err(Error::Decrypt)
        );
        assert_eq!(
            server.open_request(&a2, "POST", "/v1/x", &r1, NOW),
            Err(Error::Decrypt)
        );
        // Nothing above consumed a sequence number: both still open, in any order.
        assert_eq!(
            server
                .open_request(&a2, "POST", "/v1/x", &r2, NOW)
                .as_deref(),
            Ok(&b"second"[..])
        );
        assert_eq!(
            server
                .open_request(&a1, "POST", "/v1/x", &r1, NOW)
                .as_deref(),
            Ok(&b"first"[..])
        );
        // Wrong direction: a request record presented as the response (same seq, same
        // session), and a response record presented as a request.
        assert!(client.open_response(&a1, &a1, 200, &r1, NOW).is_err());
        let (resp, rrec) = server
            .seal_response(&a1, 200, b"answer", NOW, &mut rng)
            .expect("seal");
        let (a3, _) = client
            .seal_request("POST", "/v1/x", b"third", NOW, &mut rng)
            .expect("seal");
        let forged = MessageAuth {
            seq: a3.seq,
            ..resp.clone()
        };
        assert!(
            server
                .open_request(&forged, "POST", "/v1/x", &rrec, NOW)
                .is_err()
        );
        // Even with a valid MAC, a record sealed under the other direction's key does not open.
        let aad = request_aad(server.id(), a1.seq, a1.time, "POST", "/v1/x");
        let nonce = [7u8; RECORD_NONCE_LEN];
        let misdirected = seal_record(&server.response_seal, &nonce, &aad, b"x").expect("seal");
        assert_eq!(
            open_record(&server.request_seal, &aad, &misdirected),
            Err(Error::Decrypt)
        );
        // A response moved to another request, or read with another status.
        assert!(client.open_response(&a2, &resp, 200, &rrec, NOW).is_err());
        assert!(client.open_response(&a1, &resp, 201, &rrec, NOW).is_err());
        assert_eq!(
            client.open_response(&a1, &resp, 200, &rrec, NOW).as_deref(),
            Ok(&b"answer"[..])
        );
        // Only the initiator seals requests and opens responses, and the other way round.
        assert!(server.seal_request("GET", "/", b"", NOW, &mut rng).is_err());
        assert!(client.seal_response(&a1, 200, b"", NOW, &mut rng).is_err());
        assert!(server.open_response(&a1, &resp, 200, &rrec, NOW).is_err());
        assert!(client.open_request(&a1, "POST", "/v1/x", &r1, NOW).is_err());
    }

    #[test]
    fn arbitrary_records_never_panic() {
        let key = Key32::from_bytes([3u8; 32]);
        let mut rng = SeededRandom::new(b"junk");
        for len in 0..=(RECORD_OVERHEAD + 3) {
            let mut junk = vec![0u8; len];
            rng.fill(&mut junk).expect("fill");
            assert_eq!(open_record(&key, b"aad", &junk), Err(Error::Decrypt));
        }
        for d in [Direction::Request, Direction::Response] {
            assert!(record_key(&[0u8; 32], d).is_ok());
        }
        assert_ne!(
            record_key(&[1u8; 32], Direction::Request).map(|k| *k.expose()),
            record_key(&[1u8; 32], Direction::Response).map(|k| *k.expose())
        );
    }

    #[test]
    fn a_stateless_responder_keeps_nothing_and_any_replica_answers() {
        let (m, i, fake) = keys();
        let a = Responder::new(&i).expect("responder");
        let b = Responder::new(&i).expect("another replica");
        let mut rng = SeededRandom::new(b"stateless");
        let (init, hello) = Initiator::start(&m, i.owner(), NOW, &mut rng).expect("start");
        let challenge = a.challenge(&i, &hello, NOW).expect("challenge");
        assert_eq!(&challenge.nonce_r[..8], &NOW.to_be_bytes());
        let (mut client, confirm) = init.finish(&challenge).expect("finish");
        let msg = HelloConfirm::new(hello.clone(), confirm);
        // Message 3 at the other replica.
        let server = b.confirm(&i, &msg, NOW + 2).expect("confirm");
        assert_eq!(server.key_id(), client.key_id());
        assert_eq!(server.expires_at(), NOW + SESSION_LIFETIME);
        let ticket = b.ticket(&server, &[9u8; RECORD_NONCE_LEN]).expect("ticket");
        client.adopt_ticket(&ticket).expect("adopt");
        assert_eq!(client.id(), ticket);
        // The first replica resumes the session from the ticket alone.
        let mut at_a = a.resume(&ticket, NOW + 3).expect("resume");
        assert_eq!(at_a.peer(), m.owner());
        assert_eq!(at_a.key_id(), client.key_id());
        let (auth, record) = client
            .seal_request("POST", "/v1/x", b"{}", NOW + 3, &mut rng)
            .expect("seal");
        assert_eq!(auth.session, ticket);
        assert_eq!(
            at_a.open_request(&auth, "POST", "/v1/x", &record, NOW + 3)
                .as_deref(),
            Ok(&b"{}"[..])
        );
        let (resp, rrec) = at_a
            .seal_response(&auth, 200, b"ok", NOW + 3, &mut rng)
            .expect("seal response");
        assert_eq!(
            client
                .open_response(&auth, &resp, 200, &rrec, NOW + 3)
                .as_deref(),
            Ok(&b"ok"[..])
        );
        // A Confirm replayed within the cookie's life restores the same session.
        let again = a.confirm(&i, &msg, NOW + 20).expect("replayed confirm");
        assert_eq!(
            (again.key_id(), again.expires_at()),
            (server.key_id(), server.expires_at())
        );
        // Too late, a forged or misapplied cookie, a reflected MAC.
        assert_eq!(
            a.confirm(&i, &msg, NOW + COOKIE_LIFETIME + 1).err(),
            Some(Error::Stale)
        );
        let mut forged = msg.clone();
        forged.nonce_r[20] ^= 1;
        assert_eq!(a.confirm(&i, &forged, NOW).err(), Some(Error::Decrypt));
        let mut other_hello = msg.clone();
        other_hello.hello.nonce_i[0] ^= 1;
        assert_eq!(a.confirm(&i, &other_hello, NOW).err(), Some(Error::Decrypt));
        let reflected = HelloConfirm {
            mac: challenge.mac,
            ..msg.clone()
        };
        assert_eq!(a.confirm(&i, &reflected, NOW).err(), Some(Error::Decrypt));
        let mut misaddressed = msg.clone();
        misaddressed.hello.responder = fake.owner().clone();
        assert!(matches!(
            a.confirm(&i, &misaddressed, NOW),
            Err(Error::HeaderMismatch(_))
        ));
        // Another party's responder neither takes the cookie nor the ticket.
        let other = Responder::new(&fake).expect("other");
        assert_ne!(other.cookie(&hello, NOW), a.cookie(&hello, NOW));
        assert_eq!(other.resume(&ticket, NOW).err(), Some(Error::Decrypt));
        // A tampered, expired, truncated or foreign ticket is unknown.
        let mut chars = ticket.clone().into_bytes();
        chars[40] = if chars[40] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(chars).expect("ascii");
        assert_eq!(a.resume(&tampered, NOW).err(), Some(Error::Decrypt));
        assert_eq!(
            a.resume(&ticket, NOW + SESSION_LIFETIME + 1).err(),
            Some(Error::Decrypt)
        );
        assert_eq!(a.resume(&ticket[..30], NOW).err(), Some(Error::Decrypt));
        assert_eq!(a.resume("not a ticket!", NOW).err(), Some(Error::Decrypt));
        // Only the responder issues tickets, only the initiator adopts them.
        assert!(a.ticket(&client, &[0u8; RECORD_NONCE_LEN]).is_err());
        assert!(at_a.adopt_ticket(&ticket).is_err());
        assert!(client.adopt_ticket("bad ticket").is_err());
    }

    #[test]
    fn responder_secrets_are_per_party_and_need_a_self_key() {
        let (m, i, _) = keys();
        let sok = crate::sok::SokMaster::generate(&mut SeededRandom::new(b"sok"))
            .expect("sok master")
            .personal_key(m.owner());
        assert!(Responder::secret(&sok).is_ok(), "a SOK key serves itself");
        let sm = Responder::secret(&m).expect("secret");
        let si = Responder::secret(&i).expect("secret");
        assert_ne!(sm.expose(), si.expose());
        assert_eq!(Responder::secret(&m).expect("again").expose(), sm.expose());
        // Behind the pairwise-key cache (as the services hold keys) the secret is the same.
        let cached = crate::keycache::CachedKeys::new(m, 4);
        assert_eq!(
            Responder::secret(&cached).expect("cached").expose(),
            sm.expose()
        );
        let table = crate::keysource::Predistributed::new(
            i.owner().clone(),
            std::collections::BTreeMap::new(),
        );
        assert!(matches!(
            Responder::secret(&table),
            Err(Error::NoPairwiseKey { .. })
        ));
    }

    #[test]
    fn replay_window() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(5) && w.accept(3) && !w.accept(3) && !w.accept(0));
        assert!(w.accept(2000) && !w.accept(5) && !w.accept(900) && w.accept(1999));
    }
}
