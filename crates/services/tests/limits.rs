//! Hard to knock over (issue 13): idle, slow-header and slow-body clients are cut off, and a
//! connection cap bounds what a flood of connections can hold.

mod common;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warifu_services::http::listen::Limits;

const LIMITS: Limits = Limits {
    max_connections: 2,
    header_timeout: Duration::from_millis(400),
    body_timeout: Duration::from_millis(400),
};

async fn echo(body: String) -> String {
    body
}

/// A server under `LIMITS`; its address, and a sender that stops it.
async fn start() -> (String, tokio::sync::oneshot::Sender<()>) {
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/echo", post(echo));
    let (addr, stop) = common::serve_app(app, LIMITS, None).await;
    (addr.to_string(), stop)
}

#[tokio::test]
async fn idle_and_slow_header_connections_are_closed() {
    let (addr, _stop) = start().await;
    // Idle: connects, says nothing.
    let mut idle = TcpStream::connect(&addr).await.expect("connect");
    let (_, waited) = common::until_closed(&mut idle).await;
    assert!(waited < Duration::from_secs(3), "idle kept {waited:?}");
    // Slow header: half a request line, then nothing.
    let mut slow = TcpStream::connect(&addr).await.expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let (_, waited) = common::until_closed(&mut slow).await;
    assert!(
        waited < Duration::from_secs(3),
        "slow header kept {waited:?}"
    );
    // Kept alive after an answer, then idle: closed too.
    let mut kept = TcpStream::connect(&addr).await.expect("connect");
    kept.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let (answer, waited) = common::until_closed(&mut kept).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        waited < Duration::from_secs(3),
        "kept-alive idle kept {waited:?}"
    );
}

#[tokio::test]
async fn a_stalled_body_fails_its_request() {
    let (addr, _stop) = start().await;
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf")
        .await
        .expect("write");
    let (answer, waited) = common::until_closed(&mut s).await;
    assert!(
        waited < Duration::from_secs(3),
        "stalled body kept {waited:?}"
    );
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[tokio::test]
async fn the_connection_cap_holds_and_frees() {
    let (addr, _stop) = start().await;
    // Two connections take both permits (each mid-request, so the header timer runs).
    let mut a = TcpStream::connect(&addr).await.expect("connect");
    let mut b = TcpStream::connect(&addr).await.expect("connect");
    a.write_all(b"GET / HTTP/1.1\r\n").await.expect("write");
    b.write_all(b"GET / HTTP/1.1\r\n").await.expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A third waits in the backlog: no answer while both are held ...
    let mut c = TcpStream::connect(&addr).await.expect("connect");
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(200), c.read(&mut buf)).await;
    assert!(early.is_err(), "answered beyond the cap");
    // ... and is served once the header timeout frees a permit.
    let (answer, _) = common::until_closed(&mut c).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop((a, b));
}
