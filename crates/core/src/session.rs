//! Mutual confirmation (claim 5): a challenge–response handshake that proves possession of the
//! pairwise key in both directions, then a session whose every request and response is
//! authenticated, fresh and bound to its request.
//!
//! The handshake is ISO/IEC 9798-2's three-pass mutual authentication with the repair of
//! Basin, Cremers and Meier: both identities, both nonces and a distinct tag per message sit
//! under every MAC, so a message cannot be reflected back or replayed in another role.

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
/// How far a message's time may be from the receiver's clock, in seconds.
pub const TIME_WINDOW: u64 = 300;
/// How long a session lives, in seconds.
pub const SESSION_LIFETIME: u64 = 3600;
/// How many sequence numbers below the highest seen are still accepted once.
pub const REPLAY_WINDOW: u64 = 1024;

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
        if hello.version != VERSION {
            return Err(Error::UnsupportedVersion {
                what: "handshake",
                found: hello.version,
                supported: VERSION,
            });
        }
        if &hello.responder != keys.owner() {
            return Err(Error::HeaderMismatch(format!(
                "this party is {}, not {}",
                keys.owner(),
                hello.responder
            )));
        }
        check_time(hello.time, now)?;
        let key = pairwise_key(keys, &hello.initiator)?;
        let mut nonce_r = [0u8; 32];
        rng.fill(&mut nonce_r)?;
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
        let t = transcript(&self.hello, &self.nonce_r);
        let expected = mac(self.key.expose(), &[INITIATOR_TAG, &t]);
        if expected.ct_eq(&confirm.mac).unwrap_u8() == 0 {
            return Err(Error::Decrypt);
        }
        // The responder's session lives from its own clock, not the initiator's claimed time.
        Session::derive(&self.key, &self.hello, &self.nonce_r, Side::Responder, now)
    }
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
    id: String,
    side: Side,
    me: PartyId,
    peer: PartyId,
    request_key: Key32,
    response_key: Key32,
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
        let id = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        let (me, peer) = match side {
            Side::Initiator => (hello.initiator.clone(), hello.responder.clone()),
            Side::Responder => (hello.responder.clone(), hello.initiator.clone()),
        };
        Ok(Session {
            id,
            side,
            me,
            peer,
            request_key: Key32::from_bytes(request_key),
            response_key: Key32::from_bytes(response_key),
            established,
            next_seq: 1,
            window: ReplayWindow::default(),
        })
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
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
        let mut w = Writer::new();
        w.bytes16(self.id.as_bytes())
            .u64(seq)
            .u64(time)
            .bytes32(method.as_bytes())
            .bytes32(path.as_bytes())
            .raw(&Sha256::digest(body));
        mac(self.request_key.expose(), &[REQUEST_TAG, &w.finish()])
    }

    fn response_mac(&self, request: &MessageAuth, time: u64, status: u16, body: &[u8]) -> [u8; 32] {
        let mut w = Writer::new();
        w.bytes16(self.id.as_bytes())
            .u64(request.seq)
            .raw(&request.mac)
            .u64(time)
            .u16(status)
            .raw(&Sha256::digest(body));
        mac(self.response_key.expose(), &[RESPONSE_TAG, &w.finish()])
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
        if !self.window.accept(auth.seq) {
            return Err(Error::Replay);
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

/// Sliding-window anti-replay (as in IPsec): each sequence number is accepted once, and only
/// if it is within [`REPLAY_WINDOW`] of the highest seen.
#[derive(Debug, Default)]
struct ReplayWindow {
    highest: u64,
    seen: std::collections::BTreeSet<u64>,
}

impl ReplayWindow {
    fn accept(&mut self, seq: u64) -> bool {
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
    fn replay_window() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(5) && w.accept(3) && !w.accept(3) && !w.accept(0));
        assert!(w.accept(2000) && !w.accept(5) && !w.accept(900) && w.accept(1999));
    }
}
