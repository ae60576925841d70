//! The admin listener on the metrics port (10254): the health check
//! (`--health-check-path`, `/healthz`) for the kubelet's probes, answering
//! 200 only once the first full configuration load is done, as
//! ingress-nginx's probes expect; `/metrics`; and, when enabled, the live
//! configuration ([`view`]). Read only: GET and HEAD.

pub mod view;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::metrics::Metrics;
use crate::shutdown::ShutdownSignal;
use crate::table::TableHandle;

/// Readiness shared between the control plane (which sets it) and the
/// admin listener (which reports it).
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    shutting_down: AtomicBool,
    failed: AtomicBool,
}

impl Health {
    /// Marks the gateway ready: the first full configuration load is done.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Reports not-ready from now on, whatever the control plane does, so
    /// that load balancers stop sending traffic before the listeners close.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Reports unhealthy from now on: the control plane stopped, so the
    /// table would go stale (the process is about to exit).
    pub fn fail(&self) {
        self.failed.store(true, Ordering::Release);
    }

    /// Whether the control plane stopped.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Whether the gateway is ready to take traffic.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
            && !self.shutting_down.load(Ordering::Acquire)
            && !self.has_failed()
    }
}

/// What the admin listener serves.
#[derive(Clone, Debug)]
pub struct AdminState {
    /// Readiness.
    pub health: Arc<Health>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// The health check's path (`--health-check-path`).
    pub health_path: String,
    /// The served table, when the configuration view is enabled.
    pub view: Option<TableHandle>,
}

/// The bound admin listener.
#[derive(Debug)]
pub struct AdminListener {
    tcp: TcpListener,
}

impl AdminListener {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self {
            tcp: TcpListener::bind(addr).await?,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Serves until shutdown.
    pub async fn serve(self, state: AdminState, mut shutdown: ShutdownSignal) {
        let state = Arc::new(state);
        loop {
            let (stream, _) = tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::debug!(%error, "admin accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = shutdown.triggered() => return,
            };
            let state = state.clone();
            let service = service_fn(move |req| {
                let response = answer(&state, &req);
                async move { Ok::<_, Infallible>(response) }
            });
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}

fn answer<B>(state: &AdminState, req: &Request<B>) -> Response<Full<Bytes>> {
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    let path = req.uri().path();
    let (status, content_type, body) = match (get, path, &state.view) {
        (true, p, _) if p == state.health_path && state.health.is_ready() => {
            (StatusCode::OK, "text/plain", Bytes::from_static(b"ok"))
        }
        (true, p, _) if p == state.health_path && state.health.has_failed() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            Bytes::from_static(b"unhealthy: the control plane stopped"),
        ),
        (true, p, _) if p == state.health_path => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            Bytes::from_static(b"not ready: first configuration load not done"),
        ),
        (true, "/metrics", _) => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            Bytes::from(state.metrics.render()),
        ),
        (true, "/configuration", Some(table)) => json(&view::configuration(&table.load())),
        (true, "/configuration/backends", Some(table)) => json(&view::backends(&table.load())),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found"),
        ),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json(value: &serde_json::Value) -> (StatusCode, &'static str, Bytes) {
    (
        StatusCode::OK,
        "application/json",
        Bytes::from(value.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(view: bool) -> AdminState {
        let table: TableHandle = Arc::default();
        AdminState {
            health: Arc::new(Health::default()),
            metrics: Metrics::new(&crate::metrics::MetricsConfig::default(), table.clone())
                .unwrap(),
            health_path: "/healthz".to_owned(),
            view: view.then_some(table),
        }
    }

    #[test]
    fn healthz_follows_readiness() {
        let state = state(false);
        let req = Request::get("/healthz").body(()).unwrap();
        assert_eq!(answer(&state, &req).status(), 503);
        state.health.set_ready(true);
        assert_eq!(answer(&state, &req).status(), 200);
        state.health.begin_shutdown();
        state.health.set_ready(true);
        assert_eq!(answer(&state, &req).status(), 503);
        let other = Request::get("/other").body(()).unwrap();
        assert_eq!(answer(&state, &other).status(), 404);
        let failed = AdminState {
            health: Arc::new(Health::default()),
            ..state
        };
        failed.health.set_ready(true);
        failed.health.fail();
        assert_eq!(answer(&failed, &req).status(), 503);
    }

    #[test]
    fn the_health_path_is_configurable() {
        let state = AdminState {
            health_path: "/ready".to_owned(),
            ..state(false)
        };
        state.health.set_ready(true);
        let ready = Request::get("/ready").body(()).unwrap();
        assert_eq!(answer(&state, &ready).status(), 200);
        let healthz = Request::get("/healthz").body(()).unwrap();
        assert_eq!(answer(&state, &healthz).status(), 404);
    }

    #[test]
    fn metrics_are_served_in_the_text_format() {
        let req = Request::get("/metrics").body(()).unwrap();
        let response = answer(&state(false), &req);
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
    }

    #[test]
    fn the_configuration_view_is_off_unless_enabled_and_read_only() {
        let req = || Request::get("/configuration").body(()).unwrap();
        assert_eq!(answer(&state(false), &req()).status(), 404);
        let on = state(true);
        let response = answer(&on, &req());
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let post = Request::post("/configuration").body(()).unwrap();
        assert_eq!(answer(&on, &post).status(), 404);
        let backends = Request::get("/configuration/backends").body(()).unwrap();
        assert_eq!(answer(&on, &backends).status(), 200);
    }
}
