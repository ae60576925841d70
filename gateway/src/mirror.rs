//! Request mirroring (`mirror-target`, `mirror-request-body`,
//! `mirror-host`): a copy of each request of a route goes to another
//! server, whose answer is thrown away, as nginx's `mirror` directive in
//! ingress-nginx's template.
//!
//! Fire and forget, never slowing or changing the client's answer: the
//! copy runs on its own task; its body is a tee of the client's body as
//! the main upstream reads it, through a bounded channel, and a mirror
//! that falls behind is abandoned rather than waited for; at most
//! [`MAX_IN_FLIGHT`] copies of a route are in flight (more are dropped);
//! each copy is bounded by the route's connect timeout and read timeout.
//! Sent, failed and dropped copies are counted
//! (`edge_gateway_mirror_requests_total`).
//!
//! The copy carries the client's request headers as received (not the
//! ones the gateway adds), `Host` set to `mirror-host` (default: the
//! target's host) and `X-Original-URI` (the client's request URI). Its
//! URI is the target's path with its variables (`$request_uri`, `$uri`,
//! `$args`, `$is_args`, `$host`, `$scheme`) filled in; a target without a
//! path sends the client's request URI.

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::metrics::MirrorStats;
use crate::upstream_tls::UpstreamTls;

/// Copies of one route's requests in flight at once; more are dropped.
pub const MAX_IN_FLIGHT: usize = 64;
/// Body frames buffered for a copy before it is abandoned as too slow.
const BODY_FRAMES: usize = 64;
/// The longest `mirror-target` accepted.
const MAX_TARGET: usize = 2048;

/// `X-Original-URI`.
static X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");

/// One piece of the target's path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(Box<str>),
    RequestUri,
    Uri,
    Args,
    IsArgs,
    Host,
    Scheme,
}

/// A route's mirror.
pub struct Mirror {
    https: bool,
    /// `host[:port]` to connect to.
    authority: Box<str>,
    /// The target as written, for messages and equality.
    target: Box<str>,
    path: Box<[Part]>,
    host: HeaderValue,
    body: bool,
    slots: Arc<Semaphore>,
}

impl PartialEq for Mirror {
    fn eq(&self, other: &Self) -> bool {
        self.target == other.target && self.host == other.host && self.body == other.body
    }
}

impl Eq for Mirror {}

impl fmt::Debug for Mirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mirror")
            .field("target", &self.target)
            .field("host", &self.host)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

impl Mirror {
    /// `mirror-target` (an `http://` or `https://` URL, variables allowed
    /// in its path only), `mirror-host` (default: the target's host) and
    /// `mirror-request-body`.
    pub fn new(target: &str, host: Option<&str>, body: bool) -> Result<Self, String> {
        if target.len() > MAX_TARGET || target.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err("must be a URL without spaces or control characters".to_owned());
        }
        let (https, rest) = if let Some(rest) = target.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = target.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err("must start with http:// or https://".to_owned());
        };
        let end = rest.find(['/', '$', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let valid = !authority.is_empty()
            && authority
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
        if !valid {
            return Err(format!("{authority:?} is not a host[:port]"));
        }
        let default_host = authority
            .rsplit_once(':')
            .filter(|(h, p)| !h.ends_with(']') || p.parse::<u16>().is_ok())
            .filter(|(_, p)| p.parse::<u16>().is_ok())
            .map_or(authority, |(h, _)| h);
        let host = host.unwrap_or(default_host);
        let host = HeaderValue::from_str(host)
            .ok()
            .filter(|_| !host.is_empty() && !host.contains(['$', ' ', '/']))
            .ok_or_else(|| format!("{host:?} is not a host name"))?;
        Ok(Self {
            https,
            authority: authority.into(),
            target: target.into(),
            path: parse_path(path)?.into_boxed_slice(),
            host,
            body,
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        })
    }

    /// Takes a copy of a request about to be forwarded, if a slot is free
    /// (else counts it dropped): the client's head now; its body, when
    /// mirrored, through [`Shadow::tee`].
    pub(crate) fn copy<B>(
        &self,
        req: &Request<B>,
        scheme: &'static str,
        host: Option<&str>,
        stats: Option<Arc<MirrorStats>>,
    ) -> Option<Shadow> {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            count(stats.as_ref(), |s| &s.dropped);
            return None;
        };
        let Some(uri) = self.uri(req.uri(), scheme, host) else {
            count(stats.as_ref(), |s| &s.failed);
            return None;
        };
        let mut headers = req.headers().clone();
        strip_hop_by_hop(&mut headers, false);
        headers.insert(header::HOST, self.host.clone());
        let original = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        if let Ok(original) = HeaderValue::from_str(original) {
            headers.insert(X_ORIGINAL_URI.clone(), original);
        }
        if !self.body {
            headers.remove(header::CONTENT_LENGTH);
        }
        Some(Shadow {
            method: req.method().clone(),
            uri,
            headers,
            destination: Destination::Url {
                https: self.https,
                authority: self.authority.clone(),
            },
            with_body: self.body,
            permit,
            stats,
        })
    }

    /// The copy's request target.
    fn uri(&self, client: &Uri, scheme: &str, host: Option<&str>) -> Option<Uri> {
        let original = client.path_and_query().map_or("/", |pq| pq.as_str());
        if self.path.is_empty() {
            return original.parse().ok();
        }
        let mut out = String::new();
        for part in self.path.iter() {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::RequestUri => out.push_str(original),
                Part::Uri => out.push_str(client.path()),
                Part::Args => out.push_str(client.query().unwrap_or("")),
                Part::IsArgs => {
                    if client.query().is_some() {
                        out.push('?');
                    }
                }
                Part::Host => out.push_str(host.unwrap_or("")),
                Part::Scheme => out.push_str(scheme),
            }
        }
        if !out.starts_with('/') {
            out.insert(0, '/');
        }
        out.parse().ok()
    }
}

/// The path of a target: text and the supported variables.
fn parse_path(path: &str) -> Result<Vec<Part>, String> {
    const VARIABLES: [(&str, Part); 6] = [
        ("request_uri", Part::RequestUri),
        ("is_args", Part::IsArgs),
        ("args", Part::Args),
        ("uri", Part::Uri),
        ("host", Part::Host),
        ("scheme", Part::Scheme),
    ];
    let mut parts = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        let Some(dollar) = rest.find('$') else {
            parts.push(Part::Text(rest.into()));
            break;
        };
        if dollar > 0 {
            parts.push(Part::Text(rest[..dollar].into()));
        }
        rest = &rest[dollar + 1..];
        let (name, after) = match rest.strip_prefix('{') {
            Some(braced) => {
                let close = braced.find('}').ok_or("has `${` without `}`")?;
                (&braced[..close], &braced[close + 1..])
            }
            None => {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        let Some((_, part)) = VARIABLES.iter().find(|(n, _)| *n == name) else {
            return Err(format!(
                "uses ${name}, which is not supported (supported: $request_uri, $uri, $args, $is_args, $host, $scheme)"
            ));
        };
        parts.push(part.clone());
        rest = after;
    }
    Ok(parts)
}

/// Removes the headers of one connection from a copy's; an HTTP/2 copy
/// keeps gRPC's `te: trailers`.
fn strip_hop_by_hop(headers: &mut HeaderMap, http2: bool) {
    let keep_te = http2 && headers.get(header::TE).is_some_and(|te| te == "trailers");
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::EXPECT,
    ] {
        headers.remove(name);
    }
    if !keep_te {
        headers.remove(header::TE);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// Counts one copy in `stats` (when metrics are on).
pub(crate) fn count(
    stats: Option<&Arc<MirrorStats>>,
    which: fn(&MirrorStats) -> &std::sync::atomic::AtomicU64,
) {
    if let Some(stats) = stats {
        which(stats).fetch_add(1, Ordering::Relaxed);
    }
}

/// Where a copy goes.
#[derive(Debug)]
enum Destination {
    /// `mirror-target`'s `host[:port]`, resolved per copy, over HTTP/1.1
    /// (TLS when `https`).
    Url { https: bool, authority: Box<str> },
    /// One endpoint of a Gateway API `RequestMirror` backend, over
    /// HTTP/1.1 or HTTP/2 with prior knowledge (h2c), as the main backend.
    Endpoint { addr: SocketAddr, http2: bool },
}

/// A request copy ready to be sent.
pub(crate) struct Shadow {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    destination: Destination,
    with_body: bool,
    permit: OwnedSemaphorePermit,
    stats: Option<Arc<MirrorStats>>,
}

impl fmt::Debug for Shadow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shadow")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// The sending end of a copy's body: fed with the client's body frames as
/// the main upstream reads them, never waiting.
#[derive(Debug)]
pub(crate) struct Tee {
    sender: Option<mpsc::Sender<Bytes>>,
    aborted: Arc<AtomicBool>,
    stats: Option<Arc<MirrorStats>>,
    /// The tees of further copies of the same body (a Gateway API rule
    /// may mirror to several backends).
    more: Vec<Tee>,
}

impl Tee {
    /// Feeds `other`'s copy from the same body too.
    pub(crate) fn join(&mut self, other: Tee) {
        self.more.push(other);
    }

    /// Copies one frame of the client's body; abandons a copy when it
    /// falls behind.
    pub(crate) fn frame(&mut self, data: &Bytes) {
        for tee in &mut self.more {
            tee.frame(data);
        }
        let Some(sender) = &self.sender else { return };
        if sender.try_send(data.clone()).is_err() {
            self.abandon_own();
        }
    }

    /// The client's body ended: the copies' end too.
    pub(crate) fn end(&mut self) {
        for tee in &mut self.more {
            tee.end();
        }
        self.sender = None;
    }

    /// The client's body broke or the copies are too slow: they fail.
    pub(crate) fn abandon(&mut self) {
        for tee in &mut self.more {
            tee.abandon();
        }
        self.abandon_own();
    }

    fn abandon_own(&mut self) {
        if self.sender.take().is_some() {
            self.aborted.store(true, Ordering::Relaxed);
            count(self.stats.as_ref(), |s| &s.dropped);
        }
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        // Dropped before the body ended (the main request failed first);
        // the joined tees drop themselves.
        self.abandon_own();
    }
}

/// A copy's body, from its [`Tee`].
#[derive(Debug)]
struct CopyBody {
    frames: Option<mpsc::Receiver<Bytes>>,
    aborted: Arc<AtomicBool>,
}

/// Why a copy's body ended early.
#[derive(Debug, thiserror::Error)]
#[error("the mirrored body was abandoned")]
struct Abandoned;

impl Body for CopyBody {
    type Data = Bytes;
    type Error = Abandoned;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Abandoned>>> {
        let Some(frames) = &mut self.frames else {
            return Poll::Ready(None);
        };
        match frames.poll_recv(cx) {
            Poll::Ready(Some(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
            Poll::Ready(None) if self.aborted.load(Ordering::Relaxed) => {
                Poll::Ready(Some(Err(Abandoned)))
            }
            Poll::Ready(None) => {
                self.frames = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if self.frames.is_none() {
            SizeHint::with_exact(0)
        } else {
            SizeHint::default()
        }
    }
}

impl Shadow {
    /// A copy of `req` as it is forwarded to the main backend (method,
    /// URI, headers, body), for `addr`, one endpoint of a Gateway API
    /// mirror backend, spoken to over the main backend's wire.
    pub(crate) fn forwarded<B>(
        req: &Request<B>,
        addr: SocketAddr,
        http2: bool,
        permit: OwnedSemaphorePermit,
        stats: Option<Arc<MirrorStats>>,
    ) -> Self {
        let mut headers = req.headers().clone();
        strip_hop_by_hop(&mut headers, http2);
        Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            headers,
            destination: Destination::Endpoint { addr, http2 },
            with_body: true,
            permit,
            stats,
        }
    }

    /// A tee for the client's body, when the copy carries it and the
    /// request has one.
    pub(crate) fn tee(&mut self, has_body: bool) -> Option<(Tee, CopyBodyHandle)> {
        if !(self.with_body && has_body) {
            return None;
        }
        let (sender, receiver) = mpsc::channel(BODY_FRAMES);
        let aborted = Arc::new(AtomicBool::new(false));
        let tee = Tee {
            sender: Some(sender),
            aborted: aborted.clone(),
            stats: self.stats.clone(),
            more: Vec::new(),
        };
        Some((
            tee,
            CopyBodyHandle(CopyBody {
                frames: Some(receiver),
                aborted,
            }),
        ))
    }

    /// Sends the copy on its own task, within `connect` to connect and
    /// `total` for the whole exchange.
    pub(crate) fn send(self, body: Option<CopyBodyHandle>, connect: Duration, total: Duration) {
        tokio::spawn(async move {
            let stats = self.stats.clone();
            let target = match &self.destination {
                Destination::Url { authority, .. } => format!("{authority}{}", self.uri),
                Destination::Endpoint { addr, .. } => format!("{addr} {}", self.uri),
            };
            let outcome = tokio::time::timeout(total, self.exchange(body, connect)).await;
            match outcome {
                Ok(Ok(())) => count(stats.as_ref(), |s| &s.sent),
                Ok(Err(error)) => {
                    count(stats.as_ref(), |s| &s.failed);
                    tracing::debug!(%target, %error, "mirrored request failed");
                }
                Err(_) => {
                    count(stats.as_ref(), |s| &s.failed);
                    tracing::debug!(%target, ?total, "mirrored request timed out");
                }
            }
        });
    }

    async fn exchange(self, body: Option<CopyBodyHandle>, connect: Duration) -> Result<(), String> {
        let Shadow {
            method,
            uri,
            headers,
            destination,
            permit,
            ..
        } = self;
        let _permit = permit;
        let (addr, https, http2) = match destination {
            Destination::Url { https, authority } => {
                (resolve(&authority, https, connect).await?, https, false)
            }
            Destination::Endpoint { addr, http2 } => (addr, false, http2),
        };
        let tcp = tokio::time::timeout(connect, TcpStream::connect(addr))
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let body = body.map_or(
            CopyBody {
                frames: None,
                aborted: Arc::default(),
            },
            |b| b.0,
        );
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        if http2 {
            *request.version_mut() = http::Version::HTTP_2;
            return send_http2(TokioIo::new(tcp), request).await;
        }
        if https {
            let tls = UpstreamTls::insecure().ok_or("no TLS client configuration")?;
            let connector = tokio_rustls::TlsConnector::from(tls.config(false));
            let stream = tokio::time::timeout(connect, connector.connect(tls.server_name(), tcp))
                .await
                .map_err(|_| "TLS handshake timed out".to_owned())?
                .map_err(|e| format!("TLS: {e}"))?;
            send(TokioIo::new(stream), request).await
        } else {
            send(TokioIo::new(tcp), request).await
        }
    }
}

/// A copy's body, for [`Shadow::send`].
#[derive(Debug)]
pub(crate) struct CopyBodyHandle(CopyBody);

/// Gives each copy that carries the body its share of the client's: one
/// tee feeds them all, handed to `attach` (which says `false` when there
/// is no body to tee after all).
pub(crate) fn tee_all(
    shadows: Vec<Shadow>,
    has_body: bool,
    attach: impl FnOnce(Tee) -> bool,
) -> Vec<(Shadow, Option<CopyBodyHandle>)> {
    let mut joined: Option<Tee> = None;
    let mut out = Vec::with_capacity(shadows.len());
    for mut shadow in shadows {
        let body = shadow.tee(has_body).map(|(tee, body)| {
            match &mut joined {
                Some(first) => first.join(tee),
                None => joined = Some(tee),
            }
            body
        });
        out.push((shadow, body));
    }
    if let Some(tee) = joined
        && !attach(tee)
    {
        for (_, body) in &mut out {
            *body = None;
        }
    }
    out
}

/// One HTTP/1.1 exchange on `io`; the answer's body is read and dropped.
async fn send<I>(io: I, request: Request<CopyBody>) -> Result<(), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    let connection = tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    drain(response.into_body()).await?;
    drop(sender);
    let _ = connection.await;
    Ok(())
}

/// One HTTP/2 exchange (prior knowledge) on `io`; the answer's body and
/// trailers are read and dropped.
async fn send_http2<I>(io: I, request: Request<CopyBody>) -> Result<(), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let executor = hyper_util::rt::TokioExecutor::new();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(executor, io)
        .await
        .map_err(|e| e.to_string())?;
    let connection = tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    drain(response.into_body()).await?;
    drop(sender);
    let _ = connection.await;
    Ok(())
}

/// Reads an answer's body to its end.
async fn drain(mut body: hyper::body::Incoming) -> Result<(), String> {
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        frame.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The first address of `authority` (DNS within `timeout`).
async fn resolve(authority: &str, https: bool, timeout: Duration) -> Result<SocketAddr, String> {
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(h, p)| p.parse::<u16>().is_ok() && (!h.starts_with('[') || h.ends_with(']')))
    {
        authority.to_owned()
    } else {
        format!("{authority}:{}", if https { 443 } else { 80 })
    };
    let lookup = tokio::net::lookup_host(with_port);
    let mut addrs = tokio::time::timeout(timeout, lookup)
        .await
        .map_err(|_| format!("resolving {authority} timed out"))?
        .map_err(|e| format!("resolving {authority}: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{authority} has no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(mirror: &Mirror, client: &str) -> String {
        mirror
            .uri(&client.parse().unwrap(), "https", Some("app.example"))
            .unwrap()
            .to_string()
    }

    #[test]
    fn targets_parse_as_ingress_nginx_documents_them() {
        let m = Mirror::new("https://test.env.com$request_uri", None, true).unwrap();
        assert!(m.https);
        assert_eq!(&*m.authority, "test.env.com");
        assert_eq!(m.host, "test.env.com");
        assert_eq!(uri(&m, "/a/b?c=1"), "/a/b?c=1");
        let m = Mirror::new(
            "http://1.2.3.4:8080/copy$uri$is_args$args",
            Some("test.env.com"),
            false,
        )
        .unwrap();
        assert_eq!(&*m.authority, "1.2.3.4:8080");
        assert_eq!(m.host, "test.env.com");
        assert_eq!(uri(&m, "/a?x=1"), "/copy/a?x=1");
        assert_eq!(uri(&m, "/a"), "/copy/a");
        let m = Mirror::new("http://mirror:9000", None, true).unwrap();
        assert_eq!(m.host, "mirror");
        assert_eq!(uri(&m, "/p?q"), "/p?q");
        let m = Mirror::new("http://mirror/${scheme}/${host}", None, true).unwrap();
        assert_eq!(uri(&m, "/"), "/https/app.example");
        for bad in [
            "ftp://x/",
            "http://",
            "http://a b/",
            "http://host$remote_addr",
            "http://host/$remote_addr",
            "http://host/${uri",
            "http://x\r\n/",
        ] {
            assert!(Mirror::new(bad, None, true).is_err(), "{bad}");
        }
        assert!(Mirror::new("http://x/", Some("a b"), true).is_err());
    }

    #[test]
    fn copies_carry_the_client_head_and_the_mirror_host() {
        let m = Mirror::new("http://mirror:9000$request_uri", None, false).unwrap();
        let req = Request::builder()
            .method("POST")
            .uri("/predict?x=1")
            .header("host", "app.example")
            .header("content-length", "3")
            .header("connection", "keep-alive")
            .header("x-user", "7")
            .body(())
            .unwrap();
        let copy = m.copy(&req, "http", Some("app.example"), None).unwrap();
        assert_eq!(copy.method, Method::POST);
        assert_eq!(copy.uri, "/predict?x=1");
        assert_eq!(copy.headers["host"], "mirror");
        assert_eq!(copy.headers["x-original-uri"], "/predict?x=1");
        assert_eq!(copy.headers["x-user"], "7");
        assert!(copy.headers.get("connection").is_none());
        assert!(copy.headers.get("content-length").is_none(), "no body");
    }

    #[test]
    fn copies_beyond_the_bound_are_dropped() {
        let m = Mirror::new("http://mirror$request_uri", None, true).unwrap();
        let req = Request::new(());
        let stats = Arc::new(MirrorStats::default());
        let held: Vec<Shadow> = (0..MAX_IN_FLIGHT)
            .map(|_| m.copy(&req, "http", None, Some(stats.clone())).unwrap())
            .collect();
        assert!(m.copy(&req, "http", None, Some(stats.clone())).is_none());
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 1);
        drop(held);
        assert!(m.copy(&req, "http", None, None).is_some());
    }

    #[tokio::test]
    async fn a_slow_copy_is_abandoned_not_waited_for() {
        let m = Mirror::new("http://mirror$request_uri", None, true).unwrap();
        let stats = Arc::new(MirrorStats::default());
        let mut copy = m
            .copy(&Request::new(()), "http", None, Some(stats.clone()))
            .unwrap();
        let (mut tee, body) = copy.tee(true).unwrap();
        for _ in 0..BODY_FRAMES + 1 {
            tee.frame(&Bytes::from_static(b"chunk"));
        }
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 1);
        let mut body = body.0;
        let mut frames = 0;
        let mut failed = false;
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            match frame {
                Ok(_) => frames += 1,
                Err(_) => failed = true,
            }
            if failed {
                break;
            }
        }
        assert_eq!(frames, BODY_FRAMES);
        assert!(
            failed,
            "an abandoned body ends in an error, not a short body"
        );
    }
}
