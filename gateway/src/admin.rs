//! The admin listener on the metrics port (10254): `/healthz` for the
//! kubelet's probes, answering 200 only once the first full configuration
//! load is done, as ingress-nginx's probes expect.

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
use crate::server::ShutdownSignal;

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
    pub async fn serve(
        self,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
        mut shutdown: ShutdownSignal,
    ) {
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
            let health = health.clone();
            let metrics = metrics.clone();
            let service = service_fn(move |req| {
                let response = answer(&health, &metrics, &req);
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

fn answer<B>(health: &Health, metrics: &Metrics, req: &Request<B>) -> Response<Full<Bytes>> {
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    let (status, content_type, body) = match (get, req.uri().path()) {
        (true, "/healthz") if health.is_ready() => {
            (StatusCode::OK, "text/plain", Bytes::from_static(b"ok"))
        }
        (true, "/healthz") if health.has_failed() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            Bytes::from_static(b"unhealthy: the control plane stopped"),
        ),
        (true, "/healthz") => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            Bytes::from_static(b"not ready: first configuration load not done"),
        ),
        (true, "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            Bytes::from(metrics.render()),
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_follows_readiness() {
        let health = Health::default();
        let metrics = metrics();
        let req = Request::get("/healthz").body(()).unwrap();
        assert_eq!(answer(&health, &metrics, &req).status(), 503);
        health.set_ready(true);
        assert_eq!(answer(&health, &metrics, &req).status(), 200);
        health.begin_shutdown();
        health.set_ready(true);
        assert_eq!(answer(&health, &metrics, &req).status(), 503);
        let failed = Health::default();
        failed.set_ready(true);
        failed.fail();
        assert_eq!(answer(&failed, &metrics, &req).status(), 503);
        let other = Request::get("/other").body(()).unwrap();
        assert_eq!(answer(&health, &metrics, &other).status(), 404);
    }

    #[test]
    fn metrics_are_served_in_the_text_format() {
        let req = Request::get("/metrics").body(()).unwrap();
        let response = answer(&Health::default(), &metrics(), &req);
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
    }

    fn metrics() -> Arc<Metrics> {
        let table: crate::proxy::TableHandle = Arc::default();
        Metrics::new(&crate::metrics::MetricsConfig::default(), table).unwrap()
    }
}
