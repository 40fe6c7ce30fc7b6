//! What every service shares over HTTP, whatever its party.
//!
//! - [`service`]: router assembly, `/healthz`, `/readyz`, graceful shutdown, fresh ids and
//!   JSON answers.
//! - [`listen`]: the accept loop — connection cap, header/idle and body timeouts, drain.
//! - [`tls`]: HTTPS with rustls, serving (certificate and key) and dialing (extra CA roots).
//! - [`metrics`]: Prometheus metrics at `/metrics`.
//! - [`openapi`]: each service's OpenAPI 3 document at `/openapi.json`.
//! - [`idempotency`]: the first answer under a key, replayed to every retry of the same
//!   request.
//! - [`dashboard`]: the kit of the HTML dashboards (layout, formats, operator sign-in).
//! - [`charts`]: the dashboards' small inline SVG charts.

pub mod charts;
pub mod dashboard;
pub mod idempotency;
pub mod listen;
pub mod metrics;
pub mod openapi;
pub mod service;
pub mod tls;
