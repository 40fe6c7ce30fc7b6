//! `warifu merchant`: the merchant's service alone, and its operator's commands (refund,
//! cancel, dispute, orders, webhooks) over the service's operator routes.
use std::path::PathBuf;
use std::sync::Arc;
use warifu_core::OrderId;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use warifu_core::order::CatalogItem;
use warifu_core::policy::Policy;
use warifu_core::{PartyId, Role};
use warifu_services::clock::Clock;
use warifu_services::directory::SharedDirectory;
use warifu_services::http::dashboard::time_ms as utc;
use warifu_services::merchant;
use warifu_services::merchant::MerchantConfig;
use warifu_services::protocol::cardholder_merchant::OrderOutcome;
use warifu_services::protocol::merchant_issuer::DisputeAnswer;
use warifu_services::protocol::operator::{
    AdminOrderList, OperatorRefund, PATH_WEBHOOK_DELIVERIES, PATH_WEBHOOK_ENDPOINTS,
    PATH_WEBHOOK_REPLAY, WebhookDeliveryList, WebhookEndpointChange, WebhookEndpointCreated,
    WebhookEndpointList, WebhookEndpointRequest, WebhookReplayAnswer, WebhookReplayRequest,
};
use warifu_store::Party;

use crate::support::files;
use crate::support::logging::init_logs_as;
use crate::support::service::{
    ListArgs, OperatorArgs, RotateKemArgs, ServeArgs, answer, ctrl_c, listen, load_keys, op_call,
    open_store, operator_auth, rotate_kem_key, runtime, watch_revocations,
};
/// `warifu merchant …`
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum MerchantCommand {
    /// Run the merchant's service.
    Serve(MerchantServeArgs),
    /// Refund a captured order, all of what is left or `--amount` (operator).
    Refund(MerchantRefundArgs),
    /// Cancel an order: voided before capture, refunded after (operator).
    Cancel(OrderArgs),
    /// List the merchant's orders, newest first (operator).
    Orders(ListArgs),
    /// Answer a dispute: show the issuer the carrier's proof of delivery of a delivered
    /// order (no address in it) and print whether the issuer found it valid (operator).
    Dispute(OrderArgs),
    /// The webhooks to the shop's backend: endpoints, the delivery log, replay (operator).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Rotate the merchant's KEM key (forward secrecy of its sealed parts): a new epoch, the
    /// epochs past their grace period deleted.
    RotateKemKey(RotateKemArgs),
}

/// `warifu merchant webhooks …`
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// The delivery log, newest first: each event to each endpoint, its status and attempts.
    List(WebhookListArgs),
    /// Send failed deliveries again (or one event's, whatever their status), in order per
    /// order, with the same event ids.
    Replay(WebhookReplayArgs),
    /// The configured endpoints (never their secrets).
    Endpoints(OperatorArgs),
    /// Add an endpoint; prints its signing secret once.
    Add(WebhookAddArgs),
    /// Change an endpoint: URL, events, enabled, or a new secret (printed once).
    Set(WebhookSetArgs),
}

/// `warifu merchant webhooks list`
#[derive(Debug, Args)]
pub struct WebhookListArgs {
    /// The service and the token.
    #[command(flatten)]
    pub op: OperatorArgs,
    /// Only this order's deliveries.
    #[arg(long, value_name = "ORDER_ID")]
    pub order: Option<String>,
    /// Only to this endpoint.
    #[arg(long, value_name = "ID")]
    pub endpoint: Option<String>,
    /// Only this event's.
    #[arg(long, value_name = "EVENT_ID")]
    pub event: Option<String>,
    /// Only `pending`, `delivered` or `failed` ones.
    #[arg(long)]
    pub status: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Print every attempt (time, HTTP status, latency, error).
    #[arg(long)]
    pub attempts: bool,
}

/// `warifu merchant webhooks replay`
#[derive(Debug, Args)]
pub struct WebhookReplayArgs {
    /// The service and the token.
    #[command(flatten)]
    pub op: OperatorArgs,
    /// This event's deliveries, whatever their status (a resend).
    #[arg(long, value_name = "EVENT_ID")]
    pub event: Option<String>,
    /// Only this order's failed deliveries.
    #[arg(long, value_name = "ORDER_ID")]
    pub order: Option<String>,
    /// Only this endpoint's failed deliveries.
    #[arg(long, value_name = "ID")]
    pub endpoint: Option<String>,
}

/// `warifu merchant webhooks add`
#[derive(Debug, Args)]
pub struct WebhookAddArgs {
    /// The service and the token.
    #[command(flatten)]
    pub op: OperatorArgs,
    /// The endpoint's id (a–z, 0–9, '-', '_').
    #[arg(value_name = "ENDPOINT_ID")]
    pub endpoint_id: String,
    /// Where the shop's backend receives events.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: String,
    /// Only these event types (comma-separated; default all).
    #[arg(long, value_delimiter = ',')]
    pub events: Vec<String>,
}

/// `warifu merchant webhooks set`
#[derive(Debug, Args)]
pub struct WebhookSetArgs {
    /// The service and the token.
    #[command(flatten)]
    pub op: OperatorArgs,
    /// The endpoint's id.
    #[arg(value_name = "ENDPOINT_ID")]
    pub endpoint_id: String,
    /// A new URL.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// New event types (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub events: Option<Vec<String>>,
    /// Enable it.
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    /// Disable it (nothing new is recorded for it; what is pending waits).
    #[arg(long)]
    pub disable: bool,
    /// Derive a new signing secret (printed once).
    #[arg(long)]
    pub rotate_secret: bool,
}
/// An operator command on one order.
#[derive(Debug, Args)]
pub struct OrderArgs {
    /// The service and the token.
    #[command(flatten)]
    pub op: OperatorArgs,
    /// The order id.
    #[arg(value_name = "ORDER_ID")]
    pub order_id: OrderId,
}

/// `warifu merchant refund`
#[derive(Debug, Args)]
pub struct MerchantRefundArgs {
    /// The order.
    #[command(flatten)]
    pub order: OrderArgs,
    /// The amount in minor units (default: what is left of the capture).
    #[arg(long)]
    pub amount: Option<u64>,
    /// The refund's id: a retry under the same id refunds once (default: derived from the
    /// amount).
    #[arg(long, value_name = "ID")]
    pub refund_id: Option<String>,
}
/// `warifu merchant serve`
#[derive(Debug, Args)]
pub struct MerchantServeArgs {
    /// Key, database, address.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// The key center's directory (JSON), re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub directory: PathBuf,
    /// An issuer whose cards are accepted (repeatable).
    #[arg(long = "issuer", value_name = "ID", required = true)]
    pub issuers: Vec<String>,
    /// The carrier to ship with (without it: digital goods only).
    #[arg(long, value_name = "ID")]
    pub carrier: Option<String>,
    /// The catalog (JSON array of {product_number, name, unit_price}); default: the example
    /// shop's.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// The disclosure policy (TOML); default: the patent's table.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}
/// Runs `warifu merchant …`.
pub fn merchant(cmd: &MerchantCommand) -> Result<()> {
    let a = match cmd {
        MerchantCommand::Serve(a) => a,
        MerchantCommand::Refund(a) => return merchant_refund(a),
        MerchantCommand::Cancel(a) => return merchant_cancel(a),
        MerchantCommand::Orders(a) => return merchant_orders(a),
        MerchantCommand::Dispute(a) => return merchant_dispute(a),
        MerchantCommand::Webhooks(c) => return webhooks(c),
        MerchantCommand::RotateKemKey(a) => return rotate_kem_key(a, Party::Merchant),
    };
    init_logs_as(&a.serve.log, a.serve.log_format);
    let (keys, revocations) = load_keys(&a.serve, Role::Merchant, Some(&a.directory))?;
    let issuers = a
        .issuers
        .iter()
        .map(|s| PartyId::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let carrier = a.carrier.as_deref().map(PartyId::parse).transpose()?;
    let mut config = MerchantConfig::example(issuers[0].clone(), carrier);
    config.accepted_issuers = issuers;
    if let Some(path) = &a.catalog {
        let items: Vec<CatalogItem> = serde_json::from_slice(&files::read_file(path)?)
            .with_context(|| format!("{} is not a catalog", path.display()))?;
        config.catalog = items;
    }
    if let Some(path) = &a.policy {
        let text = String::from_utf8(files::read_file(path)?)
            .with_context(|| format!("{} is not UTF-8", path.display()))?;
        config.policy = Policy::from_toml(&text)?;
    }
    let directory = Arc::new(SharedDirectory::from_file(&a.directory)?);
    let operator = operator_auth(&a.serve)?;
    runtime()?.block_on(async {
        let store = open_store(&a.serve.db, Party::Merchant).await?;
        let state =
            merchant::MerchantState::new(keys, config, Arc::new(store), directory, Clock::system());
        state.guard().operator().set(operator);
        watch_revocations(revocations.as_ref(), state.guard());
        let l = listen(a.serve.listen, state.id()).await?;
        let worker =
            warifu_services::merchant::worker::Worker::start(state.clone(), Default::default());
        let webhooks = merchant::webhooks::Deliverer::start(state.clone(), Default::default());
        merchant::run(l, state, ctrl_c()).await?;
        worker.stop().await;
        webhooks.stop().await;
        Ok(())
    })
}
fn order_line(o: &OrderOutcome) -> String {
    let mut line = format!("order {}: {}", o.order_id, o.state);
    if let Some(p) = &o.payment {
        line.push_str(&format!(
            "; payment {} (captured {}, refunded {} {}; {})",
            p.state, p.captured, p.refunded, p.currency, p.payment_method
        ));
    }
    if let Some(d) = &o.delivery {
        line.push_str(&format!("; delivery {d}"));
    }
    if let Some(t) = &o.tracking_number {
        line.push_str(&format!("; tracking {t}"));
    }
    line + "\n"
}

fn merchant_refund(a: &MerchantRefundArgs) -> Result<()> {
    let body = serde_json::to_value(OperatorRefund {
        amount: a.amount,
        refund_id: a.refund_id.clone(),
    })?;
    let path = format!("/v1/admin/orders/{}/refund", a.order.order_id);
    runtime()?.block_on(async {
        let (o, raw): (OrderOutcome, _) = op_call(&a.order.op, true, &path, Some(body)).await?;
        answer(a.order.op.json, &raw, || order_line(&o))
    })
}

fn merchant_cancel(a: &OrderArgs) -> Result<()> {
    let path = format!("/v1/admin/orders/{}/cancel", a.order_id);
    runtime()?.block_on(async {
        let (o, raw): (OrderOutcome, _) =
            op_call(&a.op, true, &path, Some(serde_json::json!({}))).await?;
        answer(a.op.json, &raw, || order_line(&o))
    })
}

fn merchant_dispute(a: &OrderArgs) -> Result<()> {
    let path = format!("/v1/admin/orders/{}/dispute", a.order_id);
    runtime()?.block_on(async {
        let (d, raw): (DisputeAnswer, _) = op_call(&a.op, true, &path, None).await?;
        answer(a.op.json, &raw, || {
            format!(
                "order {}: the issuer finds the proof of delivery {} (delivered {})\n",
                d.order_id,
                if d.proof_valid { "valid" } else { "NOT valid" },
                utc(d.delivered_at_ms)
            )
        })
    })
}

fn merchant_orders(a: &ListArgs) -> Result<()> {
    let path = format!("/v1/admin/orders?limit={}&offset={}", a.limit, a.offset);
    runtime()?.block_on(async {
        let (l, raw): (AdminOrderList, _) = op_call(&a.op, false, &path, None).await?;
        answer(a.op.json, &raw, || {
            let mut out = String::new();
            for o in &l.orders {
                out.push_str(&format!(
                    "{:<28} {:<18} {:>10} {} {:<12} {}\n",
                    o.order_id,
                    o.state,
                    o.amount,
                    o.currency,
                    o.tracking_number.as_deref().unwrap_or("-"),
                    utc(o.created_at_ms)
                ));
            }
            out.push_str(&format!(
                "{} orders; {} outbox messages pending\n",
                l.orders.len(),
                l.pending_messages
            ));
            out
        })
    })
}

fn webhooks(cmd: &WebhooksCommand) -> Result<()> {
    runtime()?.block_on(async {
        match cmd {
            WebhooksCommand::List(a) => webhooks_list(a).await,
            WebhooksCommand::Replay(a) => {
                let body = serde_json::to_value(WebhookReplayRequest {
                    event_id: a.event.clone(),
                    order_id: a.order.clone().map(OrderId::from),
                    endpoint_id: a.endpoint.clone(),
                })?;
                let (r, raw): (WebhookReplayAnswer, _) =
                    op_call(&a.op, true, PATH_WEBHOOK_REPLAY, Some(body)).await?;
                answer(a.op.json, &raw, || {
                    format!("{} deliveries queued again\n", r.replayed)
                })
            }
            WebhooksCommand::Endpoints(op) => {
                let (l, raw): (WebhookEndpointList, _) =
                    op_call(op, false, PATH_WEBHOOK_ENDPOINTS, None).await?;
                answer(op.json, &raw, || {
                    let mut out = String::new();
                    for e in &l.endpoints {
                        let events = if e.events.is_empty() {
                            "all events".to_owned()
                        } else {
                            e.events.join(",")
                        };
                        out.push_str(&format!(
                            "{:<20} {:<8} {} ({events})\n",
                            e.endpoint_id,
                            if e.enabled { "enabled" } else { "disabled" },
                            e.url
                        ));
                    }
                    out
                })
            }
            WebhooksCommand::Add(a) => {
                let body = serde_json::to_value(WebhookEndpointRequest {
                    endpoint_id: a.endpoint_id.clone(),
                    url: a.endpoint_url.clone(),
                    events: a.events.clone(),
                })?;
                let (c, raw): (WebhookEndpointCreated, _) =
                    op_call(&a.op, true, PATH_WEBHOOK_ENDPOINTS, Some(body)).await?;
                answer(a.op.json, &raw, || endpoint_line(&c))
            }
            WebhooksCommand::Set(a) => {
                let enabled = match (a.enable, a.disable) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                };
                let body = serde_json::to_value(WebhookEndpointChange {
                    url: a.endpoint_url.clone(),
                    events: a.events.clone(),
                    enabled,
                    rotate_secret: a.rotate_secret,
                })?;
                let path = format!("{PATH_WEBHOOK_ENDPOINTS}/{}", a.endpoint_id);
                let (c, raw): (WebhookEndpointCreated, _) =
                    op_call(&a.op, true, &path, Some(body)).await?;
                answer(a.op.json, &raw, || endpoint_line(&c))
            }
        }
    })
}

fn endpoint_line(c: &WebhookEndpointCreated) -> String {
    let e = &c.endpoint;
    let mut out = format!(
        "endpoint {} ({}): {}\n",
        e.endpoint_id,
        if e.enabled { "enabled" } else { "disabled" },
        e.url
    );
    if let Some(s) = &c.secret {
        out.push_str(&format!(
            "signing secret (shown once; keep it in the shop's backend): {s}\n"
        ));
    }
    out
}

async fn webhooks_list(a: &WebhookListArgs) -> Result<()> {
    let mut query = vec![format!("limit={}", a.limit)];
    for (k, v) in [
        ("order_id", &a.order),
        ("endpoint_id", &a.endpoint),
        ("event_id", &a.event),
        ("status", &a.status),
    ] {
        if let Some(v) = v {
            query.push(format!("{k}={}", url_escape(v)));
        }
    }
    let path = format!("{PATH_WEBHOOK_DELIVERIES}?{}", query.join("&"));
    let (l, raw): (WebhookDeliveryList, _) = op_call(&a.op, false, &path, None).await?;
    answer(a.op.json, &raw, || {
        let mut out = String::new();
        for d in &l.deliveries {
            out.push_str(&format!(
                "{} {:<16} {:<24} {:<28} {:<12} {:<9} attempts {}{}\n",
                utc(d.created_at_ms),
                d.event_type,
                d.order_id,
                d.event_id,
                d.endpoint_id,
                d.status,
                d.attempts,
                d.last_error
                    .as_deref()
                    .map(|e| format!(" (last: {e})"))
                    .unwrap_or_default()
            ));
            if a.attempts {
                for t in &d.log {
                    out.push_str(&format!(
                        "    #{} {} {} {} ms{}\n",
                        t.attempt,
                        utc(t.at_ms),
                        t.http_status
                            .map(|s| format!("HTTP {s}"))
                            .unwrap_or_else(|| "no answer".into()),
                        t.latency_ms,
                        t.error
                            .as_deref()
                            .map(|e| format!(" {e}"))
                            .unwrap_or_default()
                    ));
                }
            }
        }
        out.push_str(&format!(
            "{} deliveries shown; {} pending, {} failed (replay: warifu merchant webhooks replay)\n",
            l.deliveries.len(),
            l.pending,
            l.failed
        ));
        out
    })
}

/// Percent-escapes a query value (ids are plain, but a value is never trusted).
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
