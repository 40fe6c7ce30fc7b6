//! HTTPS (issue 13): the three parties serve TLS with a certificate from a test CA, and dial
//! each other trusting that CA; a purchase, a tracking query and a statement go end to end. A
//! client without the CA is refused with a clear error, plain HTTP to a TLS port is closed at
//! once, and a stalled TLS handshake is cut by the header timeout.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::Db;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use warifu_services::http::listen::Limits;
use warifu_services::http::tls::{self, ServerTls};
use warifu_services::session::client::{ClientError, PeerClient};

/// A test CA and a certificate it issued for `localhost` and 127.0.0.1, in PEM.
struct Pki {
    ca: String,
    chain: String,
    key: String,
}

/// The test PKI, made once; every service of this process serves HTTPS with its certificate
/// and every client trusts its CA.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Warifu test CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("params")
            .signed_by(&key, &ca)
            .expect("certificate");
        let pki = Pki {
            ca: ca.pem(),
            chain: cert.pem(),
            key: key.serialize_pem(),
        };
        ServerTls::from_pem(pki.chain.as_bytes(), pki.key.as_bytes())
            .expect("server TLS")
            .set_process_default();
        assert_eq!(tls::trust_process_roots(pki.ca.as_bytes()).expect("CA"), 1);
        pki
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parties_buy_track_and_state_over_https() {
    pki();
    let env = common::start(Db::Sqlite).await.expect("deployment");
    for party in [env.merchant(), env.issuer(), env.carrier()] {
        let endpoint = env.local.endpoint(&party).expect("endpoint");
        assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    }
    // Cardholder → merchant → issuer and carrier, then cardholder → carrier and → issuer, all
    // over TLS.
    env.buy_track_and_state().await;
    common::finish(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_the_ca_is_refused_and_plain_http_is_closed() {
    pki();
    let env = common::start(Db::Sqlite).await.expect("deployment");
    let endpoint = env.local.endpoint(&env.merchant()).expect("endpoint");
    // Without the CA: the system's roots alone do not know the merchant's issuer.
    let http = tls::client_trusting(&[], |b| b).expect("client");
    let keys = env.local.issue(&env.alice_id).expect("key");
    let client = PeerClient::new(http, keys, env.merchant(), &endpoint);
    match client.handshake().await {
        Err(ClientError::Unavailable { detail, .. }) => {
            assert!(
                detail.contains("TLS") && detail.contains("--tls-ca"),
                "unclear refusal: {detail}"
            );
        }
        other => panic!("a client without the CA got {other:?}"),
    }
    // Plain HTTP to the TLS port: the connection is closed at once, nothing served.
    let addr = endpoint.trim_start_matches("https://");
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let (answer, took) = common::until_closed(&mut s).await;
    assert!(
        took < Duration::from_secs(2),
        "plain HTTP held for {took:?}"
    );
    assert!(
        !answer.contains("HTTP/1.1"),
        "plain HTTP answered: {answer}"
    );
    // And the merchant's own client says what is wrong when a peer is plain HTTP.
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let plain_addr = plain.local_addr().expect("addr");
    tokio::spawn(
        axum::serve(plain, Router::new().route("/", get(|| async { "ok" }))).into_future(),
    );
    let err = tls::client(|b| b)
        .expect("client")
        .get(format!("https://{plain_addr}/"))
        .send()
        .await
        .expect_err("TLS to a plain port");
    let said = tls::failure(&err).unwrap_or_else(|| panic!("not a TLS failure: {err:?}"));
    assert!(said.contains("does the peer serve HTTPS?"), "{said}");
    common::finish(env).await;
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_by_the_header_timeout() {
    let pki = pki();
    let limits = Limits {
        max_connections: 4,
        header_timeout: Duration::from_millis(400),
        body_timeout: Duration::from_millis(400),
    };
    let server_tls = ServerTls::from_pem(pki.chain.as_bytes(), pki.key.as_bytes()).expect("tls");
    let app = Router::new().route("/", get(|| async { "ok" }));
    let (addr, stop) = common::serve_app(app, limits, Some(server_tls)).await;
    // A TLS record header announcing a ClientHello, and then nothing.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .expect("write");
    let (_, took) = common::until_closed(&mut s).await;
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "a stalled handshake was held for {took:?}"
    );
    // A genuine client is served by the same loop, over TLS.
    let body = tls::client(|b| b)
        .expect("client")
        .get(format!("https://localhost:{}/", addr.port()))
        .send()
        .await
        .expect("https request")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "ok");
    let _ = stop.send(());
}
