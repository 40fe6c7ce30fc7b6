//! The initiator side of mutual confirmation over HTTP: a client for one peer that runs the
//! handshake lazily (and again when the session expires or the peer forgot it), seals and
//! signs every request body (the record layer, PROTOCOL.md §12.4) and accepts only responses
//! whose MAC and sealed record verify.
//!
//! A peer that cannot prove its identity fails in the handshake, before any request body is
//! sent: a fake merchant gets nothing. [`PeerClients`] keeps one client per peer, found in the
//! key center's directory (the cardholder's and the merchant's).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use warifu_core::keysource::KeySource;
use warifu_core::rand::OsRandom;
use warifu_core::session::{Challenge, HelloConfirm, Initiator, SEALED_CONTENT_TYPE, Session};
use warifu_core::{Error as CoreError, PartyId, Role};

use super::headers::{read_auth, write_auth};
use crate::clock::Clock;
use crate::directory::{DirectoryError, SharedDirectory};
use crate::error::{ErrorBody, ErrorCode};
use crate::protocol::handshake::{PATH_CONFIRM, PATH_HELLO, SessionEstablished};

/// What a call to a peer can end in, other than a verified success.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The peer cannot be reached (connection refused, timeout).
    #[error("{peer} is unreachable at {endpoint}: {detail}")]
    Unavailable {
        /// The peer.
        peer: PartyId,
        /// Its endpoint.
        endpoint: String,
        /// What failed.
        detail: String,
    },
    /// The peer failed to prove that it holds the key of its identifier, or a response's MAC
    /// did not verify. Nothing secret was sent after the failing step.
    #[error("{peer} failed to prove its identity ({step})")]
    NotAuthentic {
        /// The peer.
        peer: PartyId,
        /// Where it failed.
        step: &'static str,
    },
    /// The peer answered with an error. `verified` says whether the answer was authenticated
    /// by the session (errors raised before a request is verified are not).
    #[error("{peer} refused: {code}: {message}")]
    Refused {
        /// The peer.
        peer: PartyId,
        /// The HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// The peer's message.
        message: String,
        /// Whether the session MAC covered this answer.
        verified: bool,
    },
    /// The peer answered something that is not the expected JSON.
    #[error("{peer} answered an unexpected body: {detail}")]
    Protocol {
        /// The peer.
        peer: PartyId,
        /// What was wrong.
        detail: String,
    },
    /// Our own key cannot serve this peer.
    #[error("no key for {peer}: {source}")]
    Key {
        /// The peer.
        peer: PartyId,
        /// The cause.
        source: CoreError,
    },
}

impl ClientError {
    /// The stable code of a refusal, if this is one; `identity_revoked` when this party's own
    /// revocation list refuses the peer.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { code, .. } => Some(code),
            ClientError::Key {
                source: CoreError::Revoked(_),
                ..
            } => Some("identity_revoked"),
            _ => None,
        }
    }
}

impl ClientError {
    /// Whether the failure is worth retrying (an outage, an unauthenticated or transient
    /// answer, an order not ready yet) rather than the peer's verdict on the request.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Refused { verified, code, .. } => {
                !*verified
                    || matches!(
                        ErrorCode::parse(code),
                        Some(
                            ErrorCode::Busy
                                | ErrorCode::Internal
                                | ErrorCode::PeerUnavailable
                                | ErrorCode::PeerNotAuthentic
                                | ErrorCode::SessionUnknown
                                | ErrorCode::StaleMessage
                                | ErrorCode::OrderNotReady
                        )
                    )
            }
            // This party's own revocation list refuses the peer: a verdict, not an outage.
            ClientError::Key {
                source: CoreError::Revoked(_),
                ..
            } => false,
            _ => true,
        }
    }
}

/// How often a rate-limited hello is tried again.
pub const HELLO_RETRIES: u64 = 4;

/// An authenticated client for one peer.
pub struct PeerClient {
    http: reqwest::Client,
    endpoint: String,
    keys: Arc<dyn KeySource>,
    peer: PartyId,
    session: tokio::sync::Mutex<Option<Arc<Mutex<Session>>>>,
    clock: Clock,
}

impl core::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "PeerClient {{ me: {}, peer: {}, endpoint: {} }}",
            self.keys.owner(),
            self.peer,
            self.endpoint
        )
    }
}

/// An HTTP client with the timeouts the services use, trusting the process's CA roots for
/// `https://` peers ([`crate::http::tls::client`]).
pub fn http_client() -> reqwest::Client {
    crate::http::tls::client(|b| {
        b.connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(15))
            .pool_idle_timeout(Duration::from_secs(60))
    })
    .unwrap_or_default()
}

impl PeerClient {
    /// A client for `peer` at `endpoint` (a base URL without trailing slash), acting as the
    /// owner of `keys`.
    pub fn new(
        http: reqwest::Client,
        keys: Arc<dyn KeySource>,
        peer: PartyId,
        endpoint: &str,
    ) -> PeerClient {
        PeerClient {
            http,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            keys,
            peer,
            session: tokio::sync::Mutex::new(None),
            clock: Clock::system(),
        }
    }

    /// The client reading `clock` (handshake times, sessions' expiry, messages' times)
    /// instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> PeerClient {
        self.clock = clock;
        self
    }

    /// The peer.
    pub fn peer(&self) -> &PartyId {
        &self.peer
    }

    /// The peer's endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn unavailable(&self, e: &reqwest::Error) -> ClientError {
        ClientError::Unavailable {
            peer: self.peer.clone(),
            endpoint: self.endpoint.clone(),
            detail: if e.is_timeout() {
                "timed out".into()
            } else if let Some(tls) = crate::http::tls::failure(e) {
                tls
            } else if e.is_connect() {
                "connection refused or failed".into()
            } else {
                "request failed".into()
            },
        }
    }

    fn protocol(&self, detail: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            peer: self.peer.clone(),
            detail: detail.into(),
        }
    }

    /// Runs the handshake now (also done lazily by [`PeerClient::call`]). Fails with
    /// [`ClientError::NotAuthentic`] if the peer cannot prove its identity.
    pub async fn handshake(&self) -> Result<(), ClientError> {
        let mut slot = self.session.lock().await;
        *slot = Some(Arc::new(Mutex::new(self.run_handshake().await?)));
        Ok(())
    }

    async fn run_handshake(&self) -> Result<Session, ClientError> {
        let (initiator, hello) = Initiator::start(
            self.keys.as_ref(),
            &self.peer,
            self.clock.now_unix(),
            &mut OsRandom,
        )
        .map_err(|source| ClientError::Key {
            peer: self.peer.clone(),
            source,
        })?;
        let challenge: Challenge = self.post_hello(&hello).await?;
        let (mut session, confirm) =
            initiator
                .finish(&challenge)
                .map_err(|_| ClientError::NotAuthentic {
                    peer: self.peer.clone(),
                    step: "its handshake proof does not verify",
                })?;
        // Message 3 carries the Hello: the responder kept nothing (PROTOCOL.md §12.5).
        let established: SessionEstablished = self
            .post_plain(PATH_CONFIRM, &HelloConfirm::new(hello, confirm))
            .await?;
        if established.session != session.key_id() {
            return Err(ClientError::NotAuthentic {
                peer: self.peer.clone(),
                step: "it derived another session",
            });
        }
        session
            .adopt_ticket(&established.ticket)
            .map_err(|_| self.protocol("not a session ticket"))?;
        tracing::debug!(peer = %self.peer, session = %session.key_id(), "session established");
        Ok(session)
    }

    /// Sends message 1; a `rate_limited` answer is waited out (its `Retry-After`, at most
    /// [`HELLO_RETRIES`] times, a few seconds each).
    async fn post_hello(
        &self,
        hello: &warifu_core::session::Hello,
    ) -> Result<Challenge, ClientError> {
        let mut tries = 0;
        loop {
            match self.post_plain(PATH_HELLO, hello).await {
                Err(e)
                    if tries < HELLO_RETRIES
                        && e.code() == Some(ErrorCode::RateLimited.as_str()) =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(500 * tries)).await;
                }
                other => return other,
            }
        }
    }

    async fn post_plain<T: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<R, ClientError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.endpoint))
            .json(body)
            .send()
            .await
            .map_err(|e| self.unavailable(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.unavailable(&e))?;
        if !status.is_success() {
            return Err(self.refusal(status, &bytes, false));
        }
        serde_json::from_slice(&bytes).map_err(|_| self.protocol("not the handshake message"))
    }

    fn refusal(&self, status: StatusCode, body: &[u8], verified: bool) -> ClientError {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(e) => ClientError::Refused {
                peer: self.peer.clone(),
                status: status.as_u16(),
                code: e.code,
                message: e.message,
                verified,
            },
            Err(_) => ClientError::Refused {
                peer: self.peer.clone(),
                status: status.as_u16(),
                code: format!("http_{}", status.as_u16()),
                message: "the peer answered without a JSON error body".into(),
                verified,
            },
        }
    }

    async fn current_session(&self, renew: bool) -> Result<Arc<Mutex<Session>>, ClientError> {
        // A session opened before the peer (or this party) was revoked is not used again:
        // the key source (wrapped in `Revocable`) refuses the pair once the list has arrived.
        // From the pairwise-key cache this is a lookup.
        self.keys
            .shared_secret(&self.peer)
            .map_err(|source| ClientError::Key {
                peer: self.peer.clone(),
                source,
            })?;
        let mut slot = self.session.lock().await;
        let usable = slot.as_ref().filter(|s| {
            !renew
                && s.lock()
                    .map(|s| !s.expired(self.clock.now_unix().saturating_add(30)))
                    .unwrap_or(false)
        });
        if let Some(s) = usable {
            return Ok(s.clone());
        }
        let fresh = Arc::new(Mutex::new(self.run_handshake().await?));
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    /// Sends an authenticated request, its body sealed, and returns the verified status and
    /// the opened body. Runs the handshake first if needed, and once more if the peer no
    /// longer knows the session.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let url = reqwest::Url::parse(&format!("{}{path}", self.endpoint))
            .map_err(|_| self.protocol("bad URL"))?;
        let signed_path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let mut renew = false;
        loop {
            let session = self.current_session(renew).await?;
            let (auth, record) = session
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .seal_request(
                    method.as_str(),
                    &signed_path,
                    &body,
                    self.clock.now_unix(),
                    &mut OsRandom,
                )
                .map_err(|_| self.protocol("cannot seal"))?;
            let mut headers = reqwest::header::HeaderMap::new();
            write_auth(&mut headers, &auth);
            let resp = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers)
                .header(reqwest::header::CONTENT_TYPE, SEALED_CONTENT_TYPE)
                .body(record)
                .send()
                .await
                .map_err(|e| self.unavailable(&e))?;
            let status = resp.status();
            let resp_headers = resp.headers().clone();
            let bytes = resp.bytes().await.map_err(|e| self.unavailable(&e))?;
            let Ok(resp_auth) = read_auth(&resp_headers) else {
                // Unsigned: raised before the request was verified, or forged on the way.
                let err = self.refusal(status, &bytes, false);
                if !renew && err.code() == Some(ErrorCode::SessionUnknown.as_str()) {
                    renew = true;
                    continue;
                }
                return Err(err);
            };
            let bytes = session
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .open_response(
                    &auth,
                    &resp_auth,
                    status.as_u16(),
                    &bytes,
                    self.clock.now_unix(),
                )
                .map(Bytes::from)
                .map_err(|_| ClientError::NotAuthentic {
                    peer: self.peer.clone(),
                    step: "a response MAC or sealed record does not verify",
                })?;
            if !status.is_success() {
                return Err(self.refusal(status, &bytes, true));
            }
            return Ok((status, bytes));
        }
    }

    /// Sends an authenticated JSON request and decodes the verified JSON answer.
    pub async fn call<T: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&T>,
    ) -> Result<R, ClientError> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|_| self.protocol("cannot encode"))?,
            None => Vec::new(),
        };
        let (_, answer) = self.call_raw(method, path, bytes).await?;
        serde_json::from_slice(&answer).map_err(|e| {
            self.protocol(format!(
                "not the expected JSON: {}",
                crate::error::redact_quoted(&e.to_string())
            ))
        })
    }

    /// `GET path` in the session.
    pub async fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R, ClientError> {
        self.call::<(), R>(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body in the session.
    pub async fn post<T: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<R, ClientError> {
        self.call(Method::POST, path, Some(body)).await
    }
}

/// One authenticated client per peer, each found in the key center's directory: a peer whose
/// endpoint changed gets a fresh client (and handshake).
pub struct PeerClients {
    keys: Arc<dyn KeySource>,
    directory: Arc<SharedDirectory>,
    http: reqwest::Client,
    clients: Mutex<HashMap<PartyId, Arc<PeerClient>>>,
    clock: Clock,
}

impl core::fmt::Debug for PeerClients {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PeerClients {{ me: {} }}", self.keys.owner())
    }
}

impl PeerClients {
    /// Clients acting as the owner of `keys`, finding peers in `directory`, reading `clock`.
    pub fn new(
        keys: Arc<dyn KeySource>,
        directory: Arc<SharedDirectory>,
        clock: Clock,
    ) -> PeerClients {
        PeerClients {
            keys,
            directory,
            http: http_client(),
            clients: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// The same clients reading `clock` (those already made are dropped, to be made again).
    pub fn with_clock(mut self, clock: Clock) -> PeerClients {
        self.clock = clock;
        self.clients = Mutex::new(HashMap::new());
        self
    }

    /// The clock the clients read.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The directory the peers are found in.
    pub fn directory(&self) -> &Arc<SharedDirectory> {
        &self.directory
    }

    /// The HTTP client the peer clients share.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The authenticated client for `id`, listed in the directory in `role`.
    pub fn get(&self, id: &PartyId, role: Role) -> Result<Arc<PeerClient>, DirectoryError> {
        let dir = self.directory.get();
        let entry = dir.lookup(id, role)?;
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(id).filter(|c| c.endpoint() == entry.endpoint) {
            return Ok(c.clone());
        }
        let c = Arc::new(
            PeerClient::new(
                self.http.clone(),
                self.keys.clone(),
                id.clone(),
                &entry.endpoint,
            )
            .with_clock(self.clock.clone()),
        );
        clients.insert(id.clone(), c.clone());
        Ok(c)
    }
}
