//! The accept loop: HTTP/1.1 connections under a connection cap and header, body and idle
//! timeouts, with a graceful, bounded drain on shutdown.
//!
//! `axum::serve` has no timeouts and no cap: idle, slow-header and slow-body clients were
//! kept forever, and 4,000 idle connections cost 4,000 descriptors. Here each connection holds
//! a permit of a semaphore (accepting waits while none is free; the listen backlog absorbs a
//! burst), headers must arrive within [`Limits::header_timeout`] — hyper applies the same
//! timer to a kept-alive connection waiting for its next request, so it is the idle timeout
//! too — and a body that stops sending for [`Limits::body_timeout`] fails its request.
//!
//! With a [`ServerTls`] each connection is HTTPS: its TLS handshake runs in the connection's
//! task, holding its permit, and must finish within the header timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;
use tower_http::timeout::RequestBodyTimeoutLayer;

use super::tls::ServerTls;

/// How much a service lets its clients hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// The time a client has to send a request's headers, and the longest a kept-alive
    /// connection may wait idle for its next request.
    pub header_timeout: Duration,
    /// The longest pause between two pieces of a request body.
    pub body_timeout: Duration,
}

impl Limits {
    /// The built-in defaults: 4,096 connections, 10 s for headers (and idle), 15 s between
    /// body pieces.
    pub const BUILTIN: Limits = Limits {
        max_connections: 4096,
        header_timeout: Duration::from_secs(10),
        body_timeout: Duration::from_secs(15),
    };

    /// Sets the limits every service of this process is served with by default (a
    /// service's flags); the first call wins. Returns whether it was set.
    pub fn set_process_default(limits: Limits) -> bool {
        PROCESS_LIMITS.set(limits).is_ok()
    }
}

static PROCESS_LIMITS: std::sync::OnceLock<Limits> = std::sync::OnceLock::new();

impl Default for Limits {
    /// The process's limits if [`Limits::set_process_default`] set them, else
    /// [`Limits::BUILTIN`].
    fn default() -> Limits {
        PROCESS_LIMITS.get().copied().unwrap_or(Limits::BUILTIN)
    }
}

/// Serves `app` on `listener` within `limits`, over TLS if `tls` is given, until `shutdown`
/// completes; then it accepts no new connection, lets in-flight requests finish, and after
/// `drain` drops those still running.
pub async fn serve_limited(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
    limits: Limits,
    tls: Option<ServerTls>,
) -> std::io::Result<()> {
    let app = app.layer(RequestBodyTimeoutLayer::new(limits.body_timeout));
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a moment.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // The client's address, for the per-source limits (`ConnectInfo<SocketAddr>`).
        let service =
            TowerToHyperService::new(app.clone().map_request(move |req: Request<Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            }));
        let (http, watcher, tls) = (http.clone(), graceful.watcher(), tls.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let ended = match tls {
                None => {
                    let io = TokioIo::new(stream);
                    watcher.watch(http.serve_connection(io, service)).await
                }
                Some(tls) => {
                    let handshake = tls.acceptor().accept(stream);
                    match tokio::time::timeout(limits.header_timeout, handshake).await {
                        Ok(Ok(stream)) => {
                            let io = TokioIo::new(stream);
                            watcher.watch(http.serve_connection(io, service)).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %peer, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("stopping: finishing in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(drain) => {
            tracing::warn!(
                drain_ms = u64::try_from(drain.as_millis()).unwrap_or(u64::MAX),
                "requests still running after the drain time were dropped"
            );
        }
    }
    Ok(())
}
