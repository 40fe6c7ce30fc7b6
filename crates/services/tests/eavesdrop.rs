//! Issue 13, "done means": an eavesdropper recording every byte between the parties of a
//! purchase, a tracking query and a statement learns neither the card number, nor the
//! destination, nor any part's plaintext.
//!
//! A capturing TCP proxy on loopback stands in front of the merchant, the issuer and the
//! carrier; every directory entry points at a proxy, so every link (cardholder → merchant,
//! merchant → issuer and carrier, cardholder → carrier and issuer, carrier ↔ issuer) crosses
//! one. Before the record layer (PROTOCOL.md §12.4) the carrier's tracking answer carried the
//! destination in clear, the merchant's order form the product names, the issuer's statement
//! the card's last digits.

mod common;

use std::io::ErrorKind;
use std::sync::{Arc, Mutex};

use common::{ADDRESS, ADDRESSEE, CARD, Db, NAME};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use warifu_services::directory::Entry;

/// Every byte that crossed any proxy, in either direction.
type Tape = Arc<Mutex<Vec<u8>>>;

/// Copies `from` to `to`, recording every byte, until either side closes.
async fn pump(from: OwnedReadHalf, to: OwnedWriteHalf, tape: Tape) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if from.readable().await.is_err() {
            return;
        }
        let n = match from.try_read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(_) => return,
        };
        tape.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(&buf[..n]);
        let mut sent = 0;
        while sent < n {
            if to.writable().await.is_err() {
                return;
            }
            match to.try_write(&buf[sent..n]) {
                Ok(k) => sent += k,
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(_) => return,
            }
        }
    }
}

/// A capturing proxy to `upstream` (`http://host:port`); returns its own endpoint.
async fn proxy(upstream: &str, tape: Tape) -> String {
    let target = upstream
        .strip_prefix("http://")
        .expect("a plain http endpoint")
        .to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&target).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, tape.clone()));
            tokio::spawn(pump(sr, cw, tape.clone()));
        }
    });
    format!("http://{addr}")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    common::contains(hay, needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eavesdropper_learns_neither_card_nor_destination_nor_any_part() {
    let Some(env) = common::start(Db::Sqlite).await else {
        return;
    };
    // Every party's directory entry now points at a capturing proxy.
    let tape: Tape = Arc::default();
    let mut dir = (*env.local.directory.get()).clone();
    for id in [env.merchant(), env.issuer(), env.carrier()] {
        let upstream = env.local.endpoint(&id).expect("listed");
        let front = proxy(&upstream, tape.clone()).await;
        dir.insert(Entry::new(id, &front).expect("entry"));
    }
    env.local.directory.replace(dir).expect("directory");

    // A purchase with a carrier, its tracking with the carrier, the statement at the issuer.
    let (p, statement) = env.buy_track_and_state().await;
    let order_id = p.form.order_id.clone();
    let last4 = &CARD[CARD.len() - 4..];
    assert!(statement.cards.iter().any(|c| c.last4 == last4));
    let status = env
        .alice
        .order_status(&env.merchant(), &order_id)
        .await
        .expect("status");
    assert_eq!(status.order_id, order_id);

    let tape = tape.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // The proxies did see the sessions (so the absence below means something).
    for seen in [
        &b"/v1/handshake/hello"[..],
        b"/v1/order-forms",
        b"/v1/orders",
        b"/v1/statement",
        b"/v1/shipments/",
        b"warifu-mac",
        warifu_core::session::SEALED_CONTENT_TYPE.as_bytes(),
    ] {
        assert!(
            contains(&tape, seen),
            "the recording lacks {}: the proxy missed traffic",
            String::from_utf8_lossy(seen)
        );
    }
    // What no eavesdropper may learn.
    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("card number".into(), CARD.into()),
        (
            "last four digits as on the statement".into(),
            format!("\"{last4}\"").into(),
        ),
        ("addressee".into(), ADDRESSEE.into()),
        ("address".into(), ADDRESS.into()),
        ("name on the card".into(), NAME.into()),
    ];
    // Every run of six digits of the card number (its BIN, its middle, its tail).
    for i in 0..=CARD.len() - 6 {
        secrets.push((format!("card digits {i}..{}", i + 6), CARD[i..i + 6].into()));
    }
    // Every word of the destination longer than three letters.
    for word in ADDRESS.split([' ', ',']).chain(ADDRESSEE.split(' ')) {
        if word.len() > 3 {
            secrets.push((format!("destination word {word}"), word.into()));
        }
    }
    // The name of every product on the form (the merchant's and issuer's parts hold them).
    for item in &p.form.catalog {
        secrets.push((
            format!("product {}", item.product_number),
            item.name.clone().into(),
        ));
    }
    let found: Vec<&str> = secrets
        .iter()
        .filter(|(_, s)| contains(&tape, s))
        .map(|(what, _)| what.as_str())
        .collect();
    assert!(
        found.is_empty(),
        "an eavesdropper on {} recorded bytes reads: {found:?}",
        tape.len()
    );
    common::finish(env).await;
}
