//! Prometheus metrics of one service (`GET /metrics`, OpenMetrics text): request latency by
//! route template and status, and gauges of what the party holds, read from its store at
//! scrape time (orders by state, authorizations by result, shipments by status).
//!
//! Each service has its own [`Metrics`] (no process-global registry), so several deployments
//! can run in one process, as the tests do. Every metric carries the `service` label; labels
//! are route templates (`/v1/orders/{order_id}`), never raw paths with identifiers, and never
//! carry a secret.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of the `/metrics` answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The request latency histogram's name (its series end in `_bucket`, `_sum`, `_count`).
pub const REQUEST_DURATION: &str = "warifu_http_request_duration_seconds";
/// Orders by state (merchant).
pub const ORDERS: &str = "warifu_orders";
/// Messages of the merchant's outbox not yet delivered.
pub const OUTBOX_PENDING: &str = "warifu_outbox_pending";
/// Authorizations by result (`approved`, `declined`) and decline reason (issuer).
pub const AUTHORIZATIONS: &str = "warifu_authorizations";
/// Authorizations by payment state (issuer).
pub const AUTHORIZATIONS_BY_STATE: &str = "warifu_authorizations_by_state";
/// Shipments by status (carrier).
pub const SHIPMENTS: &str = "warifu_shipments";
/// Delivery events of the carrier's outbox not yet answered by their merchant.
pub const PUSH_PENDING: &str = "warifu_delivery_events_pending";
/// Live authenticated sessions.
pub const SESSIONS: &str = "warifu_sessions";
/// Handshakes waiting for their confirmation.
pub const PENDING_HANDSHAKES: &str = "warifu_pending_handshakes";
/// 1 when the store answered the scrape's queries, 0 otherwise.
pub const STORAGE_UP: &str = "warifu_storage_up";

/// The label a request is counted under when no route matched (the 404 fallback).
pub const UNMATCHED: &str = "unmatched";

/// The labels of a request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: String,
}

/// The labels of a gauge series: name–value pairs.
pub type Labels = Vec<(String, String)>;

type GaugeFamily = Family<Labels, Gauge>;

/// Which gauges each service has: (name, help, services).
const GAUGES: &[(&str, &str, &[&str])] = &[
    (
        ORDERS,
        "Orders by state, read from the merchant's store at scrape time",
        &["merchant"],
    ),
    (
        OUTBOX_PENDING,
        "Outbox messages not yet delivered to the issuer or carrier",
        &["merchant"],
    ),
    (
        AUTHORIZATIONS,
        "Authorization decisions by result (approved, declined) and decline reason",
        &["issuer"],
    ),
    (
        AUTHORIZATIONS_BY_STATE,
        "Authorizations by payment state (authorized, captured, voided, refunded, declined)",
        &["issuer"],
    ),
    (SHIPMENTS, "Shipments by status", &["carrier"]),
    (
        PUSH_PENDING,
        "Delivery events not yet answered by their merchant",
        &["carrier"],
    ),
    (
        SESSIONS,
        "Live authenticated sessions",
        &["merchant", "issuer", "carrier"],
    ),
    (
        PENDING_HANDSHAKES,
        "Handshakes waiting for their confirmation",
        &["merchant", "issuer", "carrier"],
    ),
    (
        STORAGE_UP,
        "Whether the store answered the scrape's queries (1) or not (0)",
        &["merchant", "issuer", "carrier"],
    ),
];

fn latency_histogram() -> Histogram {
    // 0.25 ms … about 8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// One service's metrics registry.
pub struct Metrics {
    service: &'static str,
    registry: Registry,
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
    gauges: BTreeMap<&'static str, GaugeFamily>,
    scrape: tokio::sync::Mutex<()>,
}

impl core::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Metrics {{ service: {} }}", self.service)
    }
}

impl Metrics {
    /// The metrics of `service` (`merchant`, `issuer` or `carrier`): the request histogram
    /// and that service's gauges.
    pub fn new(service: &'static str) -> Metrics {
        let mut registry = Registry::with_labels(std::iter::once((
            Cow::Borrowed("service"),
            Cow::Borrowed(service),
        )));
        let requests: Family<RequestLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            REQUEST_DURATION,
            "HTTP request latency in seconds by method, route template and status",
            requests.clone(),
        );
        let mut gauges = BTreeMap::new();
        for (name, help, services) in GAUGES {
            if services.contains(&service) {
                let family = GaugeFamily::default();
                registry.register(*name, *help, family.clone());
                gauges.insert(*name, family);
            }
        }
        Metrics {
            service,
            registry,
            requests,
            gauges,
            scrape: tokio::sync::Mutex::new(()),
        }
    }

    /// The service these metrics belong to.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Records one answered request under its route template (or [`UNMATCHED`]).
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status: status.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Replaces every series of the gauge `name` with `values` (a gauge this service does not
    /// have is ignored).
    pub fn set(&self, name: &str, values: impl IntoIterator<Item = (Labels, i64)>) {
        let Some(family) = self.gauges.get(name) else {
            tracing::debug!(metric = name, "no such gauge on this service");
            return;
        };
        family.clear();
        for (labels, v) in values {
            family.get_or_create(&labels).set(v);
        }
    }

    /// Sets a gauge without labels.
    pub fn set_one(&self, name: &str, value: i64) {
        self.set(name, [(Vec::new(), value)]);
    }

    /// Serializes scrapes (the gauges are refreshed, then encoded, under this lock).
    pub async fn lock_scrape(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.scrape.lock().await
    }

    /// The registry in OpenMetrics text.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// One label pair.
pub fn label(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_owned(), value.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Grafana dashboard in docs/ queries only metrics the services export: every name
    /// `warifu_…` in every `expr` is a metric family (or a histogram's series) of the three
    /// services' registries, and every expr names one.
    #[test]
    fn the_grafana_dashboard_queries_only_exported_metrics() {
        let mut exported = std::collections::BTreeSet::new();
        for service in ["merchant", "issuer", "carrier"] {
            // A family is written out once it has a series: one request, every gauge.
            let m = Metrics::new(service);
            m.observe("GET", "/healthz", 200, Duration::from_millis(1));
            for (name, _, _) in GAUGES {
                m.set_one(name, 1);
            }
            let text = m.encode().expect("encode");
            for line in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
                let mut words = line.split_whitespace();
                let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                    continue;
                };
                exported.insert(name.to_owned());
                let series: &[&str] = match kind {
                    "histogram" => &["_bucket", "_sum", "_count"],
                    "counter" => &["_total"],
                    _ => &[],
                };
                exported.extend(series.iter().map(|s| format!("{name}{s}")));
            }
        }
        assert!(exported.contains(ORDERS) && exported.contains(STORAGE_UP));
        let json: serde_json::Value =
            serde_json::from_str(include_str!("../../../../docs/grafana-warifu.json"))
                .expect("docs/grafana-warifu.json is JSON");
        let panels = json["panels"].as_array().expect("panels");
        let mut exprs = 0;
        for panel in panels {
            for target in panel["targets"].as_array().expect("targets") {
                let expr = target["expr"].as_str().expect("expr");
                exprs += 1;
                let names: Vec<&str> = expr
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|w| w.starts_with("warifu_"))
                    .collect();
                assert!(!names.is_empty(), "{expr} names no Warifu metric");
                for n in names {
                    assert!(
                        exported.contains(n),
                        "{n} in {expr} is not exported: {exported:?}"
                    );
                }
            }
        }
        assert!(exprs >= panels.len(), "every panel has a query");
    }

    #[test]
    fn encodes_requests_and_gauges_per_service() {
        let m = Metrics::new("merchant");
        m.observe(
            "GET",
            "/v1/orders/{order_id}",
            200,
            Duration::from_millis(3),
        );
        m.set(ORDERS, [(vec![label("state", "shipped")], 2)]);
        m.set(SHIPMENTS, [(vec![label("status", "accepted")], 1)]);
        let text = m.encode().expect("encode");
        assert!(
            text.contains(
                "warifu_http_request_duration_seconds_count{service=\"merchant\",method=\"GET\",route=\"/v1/orders/{order_id}\",status=\"200\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("warifu_orders{service=\"merchant\",state=\"shipped\"} 2"),
            "{text}"
        );
        assert!(!text.contains("warifu_shipments"), "not a carrier gauge");
        m.set(ORDERS, [(vec![label("state", "declined")], 1)]);
        let text = m.encode().expect("encode");
        assert!(!text.contains("state=\"shipped\""), "cleared: {text}");
        // Another service's registry is separate.
        let c = Metrics::new("carrier");
        assert!(!c.encode().expect("encode").contains("route="));
    }
}
