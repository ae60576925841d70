//! The subrequest client: a small HTTP/1.1 client for auth services,
//! shared by every route, with its own bounded pool of idle keep-alive
//! connections per service and the connect and TLS steps.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HeaderMap;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::*;

/// Why a subrequest failed (the client gets a 500; this goes to the log).
#[derive(Debug, thiserror::Error)]
pub(super) enum AuthError {
    #[error("auth URL: {0}")]
    Url(&'static str),
    #[error("resolving {host}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} resolves to no address")]
    NoAddress(String),
    #[error("connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
    #[error("TLS handshake: {0}")]
    Tls(#[source] std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[source] hyper::Error),
    #[error("invalid request: {0}")]
    Request(#[source] http::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

pub(super) type Sender = http1::SendRequest<Empty<Bytes>>;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct PoolKey {
    pub(super) https: bool,
    pub(super) host: String,
    pub(super) port: u16,
}

#[derive(Debug)]
pub(super) struct IdleConn {
    pub(super) sender: Sender,
    pub(super) since: Instant,
}

/// A small HTTP/1.1 client for auth subrequests, shared by every route:
/// plain HTTP and HTTPS (rustls with the aws-lc-rs provider, certificates
/// verified against the system's trust store, which `SSL_CERT_FILE` /
/// `SSL_CERT_DIR` can point at a cluster CA), host names resolved per
/// connection (cluster DNS), and a few idle keep-alive connections per
/// auth service.
pub struct AuthClient {
    pub(super) tls: TlsConnector,
    pub(super) connect_timeout: Duration,
    pub(super) pool: Mutex<HashMap<PoolKey, Vec<IdleConn>>>,
}

impl std::fmt::Debug for AuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthClient")
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl AuthClient {
    /// A client trusting the system's certificate authorities (loaded now;
    /// certificates that fail to load are logged and skipped).
    pub fn new() -> Result<Self, rustls::Error> {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!(%error, "loading system CA certificates for external auth");
        }
        let mut roots = rustls::RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
        tracing::debug!(added, ignored, "system CA certificates for external auth");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self::with_tls_config(Arc::new(config)))
    }

    /// A client with its own TLS configuration (another trust store, a
    /// client certificate).
    pub fn with_tls_config(config: Arc<ClientConfig>) -> Self {
        Self {
            tls: TlsConnector::from(config),
            connect_timeout: CONNECT_TIMEOUT,
            pool: Mutex::default(),
        }
    }

    /// Sets the connect timeout (resolve, TCP and TLS together).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sends one bodiless request and reads the response head (the body is
    /// drained so that the connection can be reused). A pooled connection
    /// that turns out dead is replaced once.
    pub(super) async fn send(
        &self,
        target: &Target,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<(StatusCode, HeaderMap), AuthError> {
        let key = PoolKey {
            https: target.https,
            host: target.host.clone(),
            port: target.port,
        };
        let build = || {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(target.path_and_query.as_str())
                .body(Empty::<Bytes>::new())
                .map_err(AuthError::Request)?;
            *request.headers_mut() = headers.clone();
            Ok::<_, AuthError>(request)
        };
        let (mut sender, response) = match self.checkout(&key) {
            Some(mut sender) => match sender.send_request(build()?).await {
                Ok(response) => (sender, response),
                Err(error) => {
                    tracing::debug!(%error, host = %key.host, "pooled auth connection failed; retrying");
                    let mut sender = self.connect(&key).await?;
                    let response = sender
                        .send_request(build()?)
                        .await
                        .map_err(AuthError::Http)?;
                    (sender, response)
                }
            },
            None => {
                let mut sender = self.connect(&key).await?;
                let response = sender
                    .send_request(build()?)
                    .await
                    .map_err(AuthError::Http)?;
                (sender, response)
            }
        };
        let (parts, mut body) = response.into_parts();
        let mut drained = 0usize;
        let mut reusable = true;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(AuthError::Http)?;
            drained += frame.data_ref().map_or(0, Bytes::len);
            if drained > MAX_DRAINED_BODY {
                reusable = false;
                break;
            }
        }
        if reusable && is_ready_now(&mut sender) {
            self.checkin(key, sender);
        }
        Ok((parts.status, parts.headers))
    }

    pub(super) fn checkout(&self, key: &PoolKey) -> Option<Sender> {
        let mut pool = self.lock();
        let idle = pool.get_mut(key)?;
        while let Some(IdleConn { mut sender, since }) = idle.pop() {
            if since.elapsed() < POOL_IDLE_TIMEOUT && is_ready_now(&mut sender) {
                return Some(sender);
            }
        }
        None
    }

    pub(super) fn checkin(&self, key: PoolKey, sender: Sender) {
        let mut pool = self.lock();
        if !pool.contains_key(&key) && pool.len() >= POOL_SERVICES {
            pool.retain(|_, idle| !idle.is_empty());
            if pool.len() >= POOL_SERVICES {
                return;
            }
        }
        let idle = pool.entry(key).or_default();
        idle.retain(|conn| conn.since.elapsed() < POOL_IDLE_TIMEOUT);
        if idle.len() < POOL_IDLE_PER_SERVICE {
            idle.push(IdleConn {
                sender,
                since: Instant::now(),
            });
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PoolKey, Vec<IdleConn>>> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves, connects (to each address in turn), does TLS for https,
    /// and hands the connection to a task; all within the connect timeout.
    pub(super) async fn connect(&self, key: &PoolKey) -> Result<Sender, AuthError> {
        let timeout = self.connect_timeout;
        tokio::time::timeout(timeout, self.connect_inner(key))
            .await
            .map_err(|_| AuthError::ConnectTimeout(timeout))?
    }

    pub(super) async fn connect_inner(&self, key: &PoolKey) -> Result<Sender, AuthError> {
        let host = key.host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, key.port))
            .await
            .map_err(|source| AuthError::Resolve {
                host: host.to_owned(),
                source,
            })?
            .collect();
        let mut last_error = None;
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(connected) => {
                    stream = Some(connected);
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        let stream = match (stream, last_error) {
            (Some(stream), _) => stream,
            (None, Some(error)) => return Err(AuthError::Connect(error)),
            (None, None) => return Err(AuthError::NoAddress(host.to_owned())),
        };
        // Best effort: a failure only costs latency.
        let _ = stream.set_nodelay(true);
        if key.https {
            let name = ServerName::try_from(host.to_owned())
                .map_err(|_| AuthError::ServerName(host.to_owned()))?;
            let tls = self
                .tls
                .connect(name, stream)
                .await
                .map_err(AuthError::Tls)?;
            handshake(TokioIo::new(tls), key).await
        } else {
            handshake(TokioIo::new(stream), key).await
        }
    }
}

pub(super) async fn handshake<T>(io: T, key: &PoolKey) -> Result<Sender, AuthError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = http1::Builder::new()
        .handshake(io)
        .await
        .map_err(AuthError::Http)?;
    let host = key.host.clone();
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%host, %error, "auth connection ended with an error");
        }
    });
    Ok(sender)
}

/// Whether a connection can take a request now, without waiting.
pub(super) fn is_ready_now(sender: &mut Sender) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    matches!(sender.poll_ready(&mut cx), Poll::Ready(Ok(())))
}
