//! The validating admission webhook's HTTPS server (`--validating-webhook`,
//! as ingress-nginx: `:8443`, the certificate and key files its chart
//! mounts). The API server POSTs an AdmissionReview of each Ingress create
//! or update; [`controller::webhook`] decides.
//!
//! Every wait is bounded: the TLS handshake and the request head (10 s
//! each), the body ([`BODY_TIMEOUT`], at most
//! [`controller::webhook::MAX_REVIEW_BYTES`], else 408 or 413), and the
//! decision ([`JUDGE_TIMEOUT`], else 503, so the API server applies the
//! webhook's `failurePolicy`). Decisions run off the async workers, two at a
//! time (each compiles every Ingress); connections are capped at
//! [`MAX_CONNECTIONS`]. Anything but a POST is 405; a body that is not an
//! AdmissionReview is 400; before the first full sync, 503.

mod cert_files;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use controller::webhook::{BaselineHandle, MAX_REVIEW_BYTES, answer};
use gateway::server::ShutdownSignal;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use rustls::crypto::aws_lc_rs;
use rustls::version::{TLS12, TLS13};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

pub(crate) use cert_files::CertFileError;
use cert_files::CertFiles;

/// How long the TLS handshake and the request head may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the request body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a decision may take (the API server's default webhook timeout
/// is 10 s; answering after it is pointless).
const JUDGE_TIMEOUT: Duration = Duration::from_secs(8);
/// Decisions compiled at once.
const JUDGES: usize = 2;
/// Connections served at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 128;

/// Why the webhook could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebhookError {
    /// The certificate or key does not load.
    #[error("--validating-webhook-certificate/--validating-webhook-key: {0}")]
    Certificate(#[from] CertFileError),
    /// The TLS configuration was refused.
    #[error("webhook TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The address could not be bound.
    #[error("cannot listen for the webhook on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
}

/// A bound webhook listener.
pub(crate) struct WebhookServer {
    tcp: TcpListener,
    tls: TlsAcceptor,
    certs: Arc<CertFiles>,
    baseline: BaselineHandle,
}

impl WebhookServer {
    /// Loads the certificate and binds `addr`.
    pub(crate) async fn bind(
        addr: SocketAddr,
        cert: &Path,
        key: &Path,
        baseline: BaselineHandle,
    ) -> Result<Self, WebhookError> {
        let certs = CertFiles::load(cert, key)?;
        let provider = Arc::new(aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&TLS13, &TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(certs.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|source| WebhookError::Bind { addr, source })?;
        Ok(Self {
            tcp,
            tls: TlsAcceptor::from(Arc::new(config)),
            certs,
            baseline,
        })
    }

    /// The address actually bound.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Serves until shutdown.
    pub(crate) async fn serve(self, mut shutdown: ShutdownSignal) {
        self.certs.watch();
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let judges = Arc::new(Semaphore::new(JUDGES));
        loop {
            let stream = tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::debug!(%error, "webhook accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = shutdown.triggered() => return,
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                tracing::warn!("webhook: too many connections; one closed");
                continue;
            };
            let tls = self.tls.clone();
            let baseline = self.baseline.clone();
            let judges = judges.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await
                {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "webhook TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("webhook TLS handshake timed out");
                        return;
                    }
                };
                let service = service_fn(move |req| {
                    let baseline = baseline.clone();
                    let judges = judges.clone();
                    async move { Ok::<_, Infallible>(handle(req, baseline, judges).await) }
                });
                let _ = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HANDSHAKE_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}

/// One request: read the review, judge it, answer.
async fn handle(
    req: Request<Incoming>,
    baseline: BaselineHandle,
    judges: Arc<Semaphore>,
) -> Response<Full<Bytes>> {
    if req.method() != Method::POST {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "POST an AdmissionReview");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REVIEW_BYTES as u64) {
        return too_large();
    }
    let body = Limited::new(req.into_body(), MAX_REVIEW_BYTES).collect();
    let body = match tokio::time::timeout(BODY_TIMEOUT, body).await {
        Ok(Ok(body)) => body.to_bytes(),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return too_large();
        }
        Ok(Err(error)) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("reading the body: {error}"),
            );
        }
        Err(_) => {
            return text(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            );
        }
    };
    let Some(baseline) = baseline.load_full() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the first full configuration load is not done",
        );
    };
    let judged = async {
        let _permit = judges.acquire_owned().await.ok()?;
        tokio::task::spawn_blocking(move || answer(&baseline, &body))
            .await
            .ok()
    };
    match tokio::time::timeout(JUDGE_TIMEOUT, judged).await {
        Ok(Some(Ok(review))) => {
            let mut response = Response::new(Full::new(Bytes::from(review)));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Ok(Some(Err(error))) => text(StatusCode::BAD_REQUEST, &error.to_string()),
        Ok(None) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the review could not be judged",
        ),
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the review took too long to judge",
        ),
    }
}

fn too_large() -> Response<Full<Bytes>> {
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("an AdmissionReview is at most {MAX_REVIEW_BYTES} bytes"),
    )
}

fn text(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}
