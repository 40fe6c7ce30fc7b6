//! `warifu carrier`: the carrier's service alone, and its operator's commands (advance,
//! shipments).
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use warifu_core::Role;
use warifu_services::carrier;
use warifu_services::clock::Clock;
use warifu_services::directory::SharedDirectory;
use warifu_services::http::dashboard::time_ms as utc;
use warifu_services::protocol::cardholder_carrier::TrackingView;
use warifu_services::protocol::operator::{self, ShipmentList};
use warifu_store::Party;

use crate::support::logging::init_logs_as;
use crate::support::service::{
    ListArgs, OperatorArgs, RotateArgs, RotateKemArgs, ServeArgs, answer, ctrl_c, listen,
    load_keys, op_call, open_store, operator_auth, rotate_data_key, rotate_kem_key, runtime,
    watch_revocations,
};
/// `warifu carrier …`
#[derive(Debug, Subcommand)]
pub enum CarrierCommand {
    /// Run the carrier's service.
    Serve(CarrierServeArgs),
    /// Move a shipment on: to `picked_up`, `in_transit`, `delivered` or `returned`. Towards
    /// `delivered` it takes every step still missing, one move each (operator).
    Advance(AdvanceArgs),
    /// List the shipments, newest first (operator; no destinations).
    Shipments(ListArgs),
    /// Rotate the data key of the destinations while the service runs: a new key, every
    /// destination re-encrypted under it, the old key dropped (optionally a new
    /// key-encryption key).
    RotateDataKey(RotateArgs),
    /// Rotate the carrier's KEM key (forward secrecy of the destination parts): a new epoch,
    /// the epochs past their grace period deleted.
    RotateKemKey(RotateKemArgs),
}

/// `warifu carrier serve`
#[derive(Debug, Args)]
pub struct CarrierServeArgs {
    /// Key, data, address, logs and operator access.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// The key center's directory (JSON), re-read when it changes. With it the carrier asks
    /// the order's issuer whether the payment still stands before it accepts a shipment (a
    /// voided or refunded order is refused) and pushes each move of a parcel to its merchant;
    /// without it the issuer's approval alone is trusted and merchants learn deliveries only
    /// by their slow safety-net poll (hours).
    #[arg(long, value_name = "FILE")]
    pub directory: Option<std::path::PathBuf>,
}

/// `warifu carrier advance`
#[derive(Debug, Args)]
pub struct AdvanceArgs {
    /// The service and the token.
    #[command(flatten)]
    pub op: OperatorArgs,
    /// The tracking number.
    #[arg(value_name = "TRACKING")]
    pub tracking: String,
    /// Where the shipment is now.
    #[arg(long, value_name = "STATUS")]
    pub to: String,
    /// A note (depot, signature) on the last move.
    #[arg(long)]
    pub note: Option<String>,
}
/// Runs `warifu carrier …`.
pub fn carrier(cmd: &CarrierCommand) -> Result<()> {
    let (a, directory) = match cmd {
        CarrierCommand::Serve(a) => (&a.serve, &a.directory),
        CarrierCommand::Advance(a) => return carrier_advance(a),
        CarrierCommand::Shipments(a) => return carrier_shipments(a),
        CarrierCommand::RotateDataKey(a) => return rotate_data_key(a, Party::Carrier),
        CarrierCommand::RotateKemKey(a) => return rotate_kem_key(a, Party::Carrier),
    };
    init_logs_as(&a.log, a.log_format);
    let (keys, revocations) = load_keys(a, Role::Carrier, directory.as_deref())?;
    let operator = operator_auth(a)?;
    runtime()?.block_on(async {
        let store = open_store(&a.db, Party::Carrier).await?;
        let state = match directory {
            Some(path) => {
                let dir = SharedDirectory::from_file(path)
                    .with_context(|| format!("cannot read the directory {}", path.display()))?;
                carrier::CarrierState::with_directory(
                    keys,
                    Arc::new(store),
                    Arc::new(dir),
                    Clock::system(),
                )
            }
            None => carrier::CarrierState::new(keys, Arc::new(store), Clock::system()),
        };
        state.guard().operator().set(operator);
        watch_revocations(revocations.as_ref(), state.guard());
        let l = listen(a.listen, state.id()).await?;
        // Delivery events go to the merchants found in the directory; without one they wait
        // in the outbox (the merchants' safety-net poll still learns the deliveries, late).
        if directory.is_none() {
            tracing::warn!(
                "serving without --directory: delivery events are not pushed, merchants learn \
                 deliveries only by their safety-net poll (first after an hour)"
            );
        }
        let pusher = directory
            .is_some()
            .then(|| carrier::push::Pusher::start(state.clone(), Default::default()));
        carrier::run(l, state, ctrl_c()).await?;
        if let Some(p) = pusher {
            p.stop().await;
        }
        Ok(())
    })
}
fn tracking_lines(v: &TrackingView) -> String {
    let mut out = format!(
        "{} (order {}): {}\n",
        v.tracking_number, v.order_id, v.status
    );
    for e in &v.events {
        out.push_str(&format!("  {} {:<11}", utc(e.at_ms), e.status));
        if let Some(n) = &e.note {
            out.push_str(&format!(" {n}"));
        }
        out.push('\n');
    }
    if let Some(p) = &v.proof_of_delivery {
        out.push_str(&format!(
            "  proof of delivery for {} at {} (MAC under K({}, {}))\n",
            p.merchant,
            utc(p.delivered_at_ms),
            p.carrier,
            p.issuer
        ));
    }
    out
}

/// The moves from `from` up to `to`: every missing step towards `delivered`, else one move.
fn moves(from: &str, to: &str) -> Vec<String> {
    const ROAD: [&str; 4] = ["accepted", "picked_up", "in_transit", "delivered"];
    match (
        ROAD.iter().position(|s| *s == from),
        ROAD.iter().position(|s| *s == to),
    ) {
        (Some(i), Some(j)) if i < j => ROAD[i + 1..=j].iter().map(|s| (*s).to_owned()).collect(),
        _ => vec![to.to_owned()],
    }
}

fn carrier_advance(a: &AdvanceArgs) -> Result<()> {
    runtime()?.block_on(async {
        let (now, _): (TrackingView, _) = op_call(
            &a.op,
            false,
            &operator::admin_shipment_path(&a.tracking),
            None,
        )
        .await?;
        let steps = moves(&now.status, &a.to);
        let mut last = None;
        for (i, to) in steps.iter().enumerate() {
            let note = if i + 1 == steps.len() {
                a.note.clone()
            } else {
                None
            };
            let body = serde_json::json!({ "to": to, "note": note });
            last = Some(
                op_call::<TrackingView>(
                    &a.op,
                    true,
                    &operator::advance_path(&a.tracking),
                    Some(body),
                )
                .await?,
            );
        }
        let (v, raw) = last.context("no move to make")?;
        answer(a.op.json, &raw, || tracking_lines(&v))
    })
}

fn carrier_shipments(a: &ListArgs) -> Result<()> {
    let path = format!(
        "{}?limit={}&offset={}",
        operator::PATH_ADMIN_SHIPMENTS,
        a.limit,
        a.offset
    );
    runtime()?.block_on(async {
        let (l, raw): (ShipmentList, _) = op_call(&a.op, false, &path, None).await?;
        answer(a.op.json, &raw, || {
            let mut out = String::new();
            for s in &l.shipments {
                out.push_str(&format!(
                    "{:<14} {:<11} {:<28} {:<24} {}\n",
                    s.tracking_number,
                    s.status,
                    s.order_id,
                    s.merchant,
                    utc(s.updated_at_ms)
                ));
            }
            out.push_str(&format!("{} shipments\n", l.shipments.len()));
            out
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use warifu_services::http::dashboard::{date, time_ms as utc};

    #[test]
    fn dates_and_moves() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(19_723), "2024-01-01");
        assert_eq!(date(-1), "1969-12-31");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(
            moves("accepted", "delivered"),
            ["picked_up", "in_transit", "delivered"]
        );
        assert_eq!(moves("in_transit", "delivered"), ["delivered"]);
        assert_eq!(moves("delivered", "delivered"), ["delivered"]);
        assert_eq!(moves("picked_up", "returned"), ["returned"]);
        assert_eq!(moves("returned", "delivered"), ["delivered"]);
    }
}
