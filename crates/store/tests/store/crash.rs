//! Durability under a crash: every write acknowledged before the process dies is on disk.
//!
//! The test runs itself as a child process that writes orders from many tasks (so the
//! SQLite writer commits them in groups), prints each order id once its write returned, and
//! aborts (no cleanup, no flush) after a while. The parent then opens the file and finds
//! every acknowledged order.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use warifu_core::OrderId;

use warifu_store::*;

use crate::merchant::new_order;

const CHILD_ENV: &str = "WARIFU_STORE_CRASH_CHILD";

#[test]
fn acknowledged_writes_survive_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "crash::crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let acked: Vec<String> = out
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| l.strip_prefix("ACK ").map(str::to_owned))
        .collect();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(6),
        "the child must die by abort (SIGABRT), not {status}"
    );
    assert!(acked.len() >= 200, "only {} acknowledged", acked.len());

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = Store::open_party(dir.path(), Party::Merchant)
            .await
            .unwrap();
        for id in &acked {
            let o = s.get_order(&OrderId::from(id)).await.unwrap();
            let o = o.unwrap_or_else(|| panic!("acknowledged order {id} was lost"));
            assert_eq!(o.state, OrderState::Authorized, "{id}");
            assert_eq!(
                s.outbox_for_order(&OrderId::from(id)).await.unwrap().len(),
                1,
                "{id}"
            );
        }
    });
}

/// The child: only does something when started by the test above.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let s = Store::open_party(std::path::Path::new(&dir), Party::Merchant)
            .await
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        for t in 0..32 {
            let s = s.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let id = format!("O-{t}-{i}");
                    s.insert_order(&new_order(&id, 100), &[]).await.unwrap();
                    let tr = Transition::new(
                        id.clone(),
                        OrderState::Received,
                        OrderState::Authorized,
                        1,
                    )
                    .send("ship", vec![7; 64]);
                    assert!(s.transition(&tr).await.unwrap());
                    if tx.send(id).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut n = 0;
        while let Some(id) = rx.recv().await {
            println!("ACK {id}");
            n += 1;
            if n == 400 {
                // Die mid-flight: other writes are queued or being committed right now.
                std::process::abort();
            }
        }
        // Every writer failed before enough acknowledgements: exit without aborting, which
        // fails the parent's check.
        std::process::exit(3);
    });
}
