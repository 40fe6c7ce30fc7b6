//! A session by hand, as an attacker or a test would run it: the handshake, a request sealed
//! and signed in it, the same bytes sent again (a replay) or altered (a forgery). Also used by
//! the CLI's replica test (`#[path]`), so it needs only `warifu-core`, `warifu-services`,
//! `reqwest` and `serde_json`.
#![allow(dead_code)]

use warifu_core::PartyId;

/// Sends a handshake's first message by hand (as an attacker or a test would): the
/// initiator's state, its hello and the responder's challenge.
pub async fn raw_hello(
    keys: &dyn warifu_core::keysource::KeySource,
    peer: &PartyId,
    endpoint: &str,
) -> (
    warifu_core::session::Initiator,
    warifu_core::session::Hello,
    warifu_core::session::Challenge,
) {
    let (init, hello) = warifu_core::session::Initiator::start(
        keys,
        peer,
        warifu_services::clock::Clock::system().now_unix(),
        &mut warifu_core::rand::OsRandom,
    )
    .expect("start");
    let challenge = warifu_services::http::tls::client(|b| b)
        .expect("http client")
        .post(format!("{endpoint}/v1/handshake/hello"))
        .json(&hello)
        .send()
        .await
        .expect("hello")
        .json()
        .await
        .expect("challenge");
    (init, hello, challenge)
}

/// Runs the handshake by hand (as an attacker or a test would), returning the session.
pub async fn raw_handshake(
    keys: &dyn warifu_core::keysource::KeySource,
    peer: &PartyId,
    endpoint: &str,
) -> warifu_core::session::Session {
    let http = warifu_services::http::tls::client(|b| b).expect("http client");
    let (init, hello, challenge) = raw_hello(keys, peer, endpoint).await;
    let (mut session, confirm) = init.finish(&challenge).expect("responder proof");
    // Message 3 carries the Hello; the answer is the session's ticket (PROTOCOL.md §12.5).
    let r = http
        .post(format!("{endpoint}/v1/handshake/confirm"))
        .json(&warifu_core::session::HelloConfirm::new(hello, confirm))
        .send()
        .await
        .expect("confirm");
    let status = r.status();
    let body = r.bytes().await.expect("confirm answer");
    assert!(
        status.is_success(),
        "confirm refused: {status} {}",
        String::from_utf8_lossy(&body)
    );
    let established: warifu_services::protocol::handshake::SessionEstablished =
        serde_json::from_slice(&body).expect("established");
    session.adopt_ticket(&established.ticket).expect("ticket");
    session
}

/// Seals `body` into a record and signs the request carrying it in `session`.
pub fn seal(
    session: &mut warifu_core::session::Session,
    method: &reqwest::Method,
    path: &str,
    body: &[u8],
) -> (warifu_core::session::MessageAuth, Vec<u8>) {
    session
        .seal_request(
            method.as_str(),
            path,
            body,
            warifu_services::clock::Clock::system().now_unix(),
            &mut warifu_core::rand::OsRandom,
        )
        .expect("seal")
}

/// Sends one request sealed and signed in `session`, returning the request's headers and
/// record, and the status, headers and (sealed) body of the answer.
pub async fn signed(
    session: &mut warifu_core::session::Session,
    endpoint: &str,
    method: reqwest::Method,
    path: &str,
    body: Vec<u8>,
) -> (
    warifu_core::session::MessageAuth,
    Vec<u8>,
    reqwest::StatusCode,
    reqwest::header::HeaderMap,
    Vec<u8>,
) {
    let (auth, record) = seal(session, &method, path, &body);
    let (status, headers, bytes) = send_with(&auth, endpoint, method, path, record.clone()).await;
    (auth, record, status, headers, bytes)
}

/// Sends a request with given session headers and a given (sealed) body: a replay, or a
/// forgery.
pub async fn send_with(
    auth: &warifu_core::session::MessageAuth,
    endpoint: &str,
    method: reqwest::Method,
    path: &str,
    record: Vec<u8>,
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let mut headers = reqwest::header::HeaderMap::new();
    warifu_services::session::headers::write_auth(&mut headers, auth);
    let resp = warifu_services::http::tls::client(|b| b)
        .expect("http client")
        .request(method, format!("{endpoint}{path}"))
        .headers(headers)
        .header("content-type", warifu_core::session::SEALED_CONTENT_TYPE)
        .body(record)
        .send()
        .await
        .expect("send");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body").to_vec();
    (status, headers, bytes)
}

/// The `code` of a JSON error body.
pub fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_owned))
        .unwrap_or_else(|| format!("<not a JSON error: {}>", String::from_utf8_lossy(body)))
}
