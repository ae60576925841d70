//! Phase 6, forward ([`phase`]): the upstream request to the picked
//! backend, and the answer; an answer whose status the route's
//! `custom-http-errors` lists is replaced by its default backend's page.
//!
//! Sending a request to a backend: wait for a ready endpoint if the backend
//! holds requests ([`balance::hold`]), take an endpoint slot
//! ([`balance::queue`]), get a connection, wait for the response head under
//! the send/read (or first-byte) timeouts and the request deadline, and
//! try another endpoint when ingress-nginx's `proxy-next-upstream` rules
//! allow.
//!
//! Retry rules (`proxy-next-upstream`, ingress-nginx's default `error
//! timeout`; 3 tries; idempotent only):
//! - only the failures the route's `proxy-next-upstream` names are retried:
//!   `error` (connect or TLS failure, connection broken before a response
//!   head), `timeout` (connect or response head), `invalid_header`, and the
//!   `http_<code>` statuses; `off` retries nothing;
//! - a request that never left the gateway (connect refused or timed out,
//!   or a pooled connection found closed before sending) is retried for
//!   every method, POST included, since no byte of it reached an upstream;
//! - a request that was sent (a retried status included) is retried only
//!   when it is idempotent (or `retry-non-idempotent` / `non_idempotent` is
//!   on) and has no body, so it can be rebuilt;
//! - a request whose own body failed (too large, client stalled or gone)
//!   is never retried;
//! - a request that ran into `proxy-first-byte-timeout` or
//!   `request-deadline` is never retried: the model may still be working
//!   on it, and running it again elsewhere doubles the cost.
//!
//! A client that goes away drops this future, and with it the upstream
//! connection (never returned to the pool), which cancels the request
//! upstream.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use hyper::body::Incoming;
use tokio::time::Instant;

use super::body::{Lease, RequestBody, RequestBodyError, ResponseBody, SendProgress};
use super::error::ProxyError;
use super::exchange::Trace;
use super::outbound::Outbound;
use super::pick::Picked;
use super::respond::{self, Early};
use super::stream::{Bounds, StreamClock};
use super::{Scope, error_pages};
use crate::backend::balance;
use crate::backend::balance::affinity::Sticky;
use crate::backend::{Backend, InFlight};
use crate::metrics::inference::InferenceStats;
use crate::settings::{NextUpstream, ProxySettings};
use crate::upstream::{self, Conn, Wire};

/// Phase 6: forwards the outbound request to the picked backend; a
/// `custom-http-errors` status is replaced by the default backend's page.
/// A gateway-made error of a CORS request is answered here, with the
/// request it names, so that the response phase adds the CORS headers.
pub(super) async fn phase(
    scope: &Scope<'_>,
    picked: &Picked<'_>,
    outbound: Outbound,
    sticky: &mut Sticky,
    trace: &mut Trace,
) -> Result<Response<ResponseBody>, Early> {
    let (table, route) = (scope.table, scope.found.route);
    let Outbound {
        request,
        wire,
        progress,
        original,
        error_context,
    } = outbound;
    let destination = Destination {
        backend: picked.backend,
        wire: &wire,
        settings: &route.settings,
    };
    let stats = table.inference(scope.found.id);
    let forwarded = forward(destination, request, progress, trace, stats, sticky).await;
    match (forwarded, error_context) {
        (Ok(response), _) => {
            let id = trace.request_id.as_ref();
            let status = response.status();
            match error_pages::replacement(table, route, picked.backend, original, status, id) {
                None => Ok(response),
                Some(replacement) => Ok(replacement.fetch(response).await),
            }
        }
        (Err(error), Some(named)) => {
            let client = scope.client.socket_addr(scope.conn.peer);
            let (method, uri) = &*named;
            Ok(respond::error(error, client, method, uri))
        }
        (Err(error), None) => Err(error.into()),
    }
}

/// A failed attempt, with the request if it never left the gateway.
struct Failure {
    error: ProxyError,
    unsent: Option<Request<RequestBody>>,
}

/// Where a request goes and how: the backend, the wire to its endpoints,
/// and the route's settings.
pub(crate) struct Destination<'a> {
    pub(crate) backend: &'a Backend,
    pub(crate) wire: &'a Wire,
    pub(crate) settings: &'a ProxySettings,
}

/// Forwards `req` to one of the destination's endpoints, retrying as the
/// module docs describe. `progress` is the request body's send record, if
/// it has a body; `stats` the route's inference series, if recorded;
/// `sticky` what the request brings to the backend's affinity, and the
/// cookie it earns.
pub(crate) async fn forward(
    destination: Destination<'_>,
    req: Request<RequestBody>,
    progress: Option<Arc<SendProgress>>,
    trace: &mut Trace,
    stats: Option<&Arc<InferenceStats>>,
    sticky: &mut Sticky,
) -> Result<Response<ResponseBody>, ProxyError> {
    let Destination {
        backend,
        wire,
        settings,
    } = destination;
    let started = Instant::now();
    let deadline = settings.request_deadline.map(|d| started + d);
    let policy = backend.policy();
    let refused = |why| ProxyError::refused(why, policy.overflow_status);
    balance::hold::ready(backend, &policy, deadline, stats.map(AsRef::as_ref))
        .await
        .map_err(refused)?;
    // A sent request can only be retried on another endpoint: with one
    // endpoint (or `proxy-next-upstream-tries: 1`) no retry can happen, and
    // no copy of the head is made for one.
    let replay = (replayable(&req, settings) && backend.endpoints().endpoints().len() > 1)
        .then(|| copy_head(&req));
    let attempt = Attempt {
        wire,
        progress: progress.as_deref(),
        settings,
        deadline,
        stats,
    };
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut request = req;
    loop {
        let in_flight = balance::queue::acquire(
            backend,
            &policy,
            &tried,
            deadline,
            stats.map(AsRef::as_ref),
            sticky,
        )
        .await
        .map_err(refused)?;
        let addr = in_flight.endpoint().addr();
        trace.upstream = Some(addr);
        trace.upstream_started = Some(Instant::now());
        let outcome = attempt.run(in_flight, request, trace).await;
        tried.push(addr);
        let more = tried.len() < settings.next_upstream_tries as usize
            && tried.len() < backend.endpoints().endpoints().len()
            && settings
                .next_upstream_timeout
                .is_none_or(|budget| started.elapsed() < budget);
        let failure = match outcome {
            Ok(response) => match &replay {
                Some(head) if more && settings.next_upstream.retries_status(response.status()) => {
                    tracing::debug!(upstream = %addr, status = %response.status(), "trying the next endpoint");
                    trace.retrying(None);
                    // Dropping the response closes its connection.
                    request = rebuild(head);
                    continue;
                }
                _ => return Ok(response),
            },
            Err(failure) => failure,
        };
        let may_retry = more && is_retryable(&failure.error, &settings.next_upstream);
        request = match (may_retry, failure.unsent, &replay) {
            (true, Some(unsent), _) => unsent,
            (true, None, Some(head)) => rebuild(head),
            _ => return Err(failure.error),
        };
        tracing::debug!(upstream = %addr, error = %failure.error, "trying the next endpoint");
        trace.retrying(Some(failure.error.status().as_u16()));
    }
}

/// What every attempt of one request shares.
struct Attempt<'a> {
    wire: &'a Wire,
    progress: Option<&'a SendProgress>,
    settings: &'a ProxySettings,
    deadline: Option<Instant>,
    stats: Option<&'a Arc<InferenceStats>>,
}

impl Attempt<'_> {
    /// One try against the endpoint `in_flight` holds a slot on.
    async fn run(
        &self,
        mut in_flight: InFlight,
        mut req: Request<RequestBody>,
        trace: &mut Trace,
    ) -> Result<Response<ResponseBody>, Failure> {
        let settings = self.settings;
        let started = Instant::now();
        let mut connecting = started;
        loop {
            let endpoint = in_flight.endpoint();
            let connected = match endpoint.pool.checkout(self.wire, &settings.pool) {
                Some(conn) => Ok(conn),
                // Boxed: a new connection's future (a TLS handshake's state
                // included) is several times the size of the rest of the
                // request's, and every request's future would carry it.
                None => {
                    Box::pin(upstream::connect(
                        endpoint.addr(),
                        self.wire,
                        settings.connect_timeout,
                        &endpoint.pool,
                    ))
                    .await
                }
            };
            let mut conn = match connected {
                Ok(conn) => conn,
                Err(error) => {
                    in_flight.fail();
                    return Err(Failure {
                        error: ProxyError::Connect(error),
                        unsent: Some(req),
                    });
                }
            };
            // A pooled connection is there at once: no second clock read.
            let sent_at = if conn.reused {
                connecting
            } else {
                Instant::now()
            };
            trace.connect = Some(sent_at.saturating_duration_since(connecting));
            let bounds = Bounds::new(settings, sent_at, self.deadline);
            let waited = {
                let sent = std::pin::pin!(conn.send(req));
                wait_for_head(sent, sent_at, self.progress, settings, bounds).await
            };
            let outcome = match waited {
                Ok(outcome) => outcome,
                Err(expired) => {
                    // Dropping `conn` closes it, which cancels the upstream
                    // request.
                    in_flight.fail();
                    return Err(Failure {
                        error: expired,
                        unsent: None,
                    });
                }
            };
            match outcome {
                Ok(response) => {
                    trace.header = Some(started.elapsed());
                    let status = response.status();
                    trace.upstream_status = Some(status.as_u16());
                    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                        in_flight.fail();
                    }
                    let clock = StreamClock::new(settings, bounds, self.stats.cloned());
                    return Ok(respond(response, conn, in_flight, clock, settings));
                }
                Err(mut error) => match error.take_message() {
                    // A pooled connection the upstream closed while it idled:
                    // nothing was sent, so take a fresh connection.
                    Some(unsent) if conn.reused => {
                        endpoint.pool.discard(conn);
                        req = unsent;
                        connecting = Instant::now();
                    }
                    unsent => {
                        in_flight.fail();
                        return Err(Failure {
                            error: classify(error.into_error()),
                            unsent,
                        });
                    }
                },
            }
        }
    }
}

fn respond(
    response: Response<Incoming>,
    mut conn: Conn,
    in_flight: InFlight,
    clock: StreamClock,
    settings: &ProxySettings,
) -> Response<ResponseBody> {
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        conn.detach();
    }
    let lease = Lease {
        conn,
        in_flight,
        pool: settings.pool,
    };
    response.map(|incoming| ResponseBody::upstream(incoming, clock, lease))
}

/// Waits for the response head of the request handed to its connection at
/// `sent_at`. nginx's bounds: `read_timeout` after the request was sent,
/// or, while a request body is still going out, `send_timeout` after it
/// last moved and `read_timeout` after it ended (counted from its end, not
/// from when the send timeout would have been); with
/// `proxy-first-byte-timeout`, that replaces `read_timeout` here. The
/// request deadline applies throughout.
async fn wait_for_head<F: Future>(
    mut sent: Pin<&mut F>,
    sent_at: Instant,
    progress: Option<&SendProgress>,
    settings: &ProxySettings,
    bounds: Bounds,
) -> Result<F::Output, ProxyError> {
    let nginx = || match progress {
        Some(p) if !p.is_sent() || bounds.first_byte.is_none() => {
            Some(p.deadline(settings.send_timeout, settings.read_timeout))
        }
        Some(_) => None,
        None => bounds
            .first_byte
            .is_none()
            .then(|| sent_at + settings.read_timeout),
    };
    let (hard, hard_error) = match (bounds.first_byte, bounds.deadline) {
        (Some((first, _)), Some(deadline)) if deadline < first => {
            (Some(deadline), ProxyError::DeadlineExceeded)
        }
        (Some((first, _)), _) => (Some(first), ProxyError::FirstByteTimeout),
        (None, deadline) => (deadline, ProxyError::DeadlineExceeded),
    };
    loop {
        // Whether the bound armed below is the send timeout's: the body
        // may end while the request is polled (its connection's I/O runs
        // in this task), which re-arms it with the read timeout.
        let sending = progress.is_some_and(|p| !p.is_sent());
        tokio::select! {
            output = sent.as_mut() => return Ok(output),
            () = sleep_until(nginx()) => {
                if nginx().is_some_and(|d| d <= Instant::now()) {
                    return Err(ProxyError::UpstreamTimeout);
                }
            }
            () = sleep_until(hard) => return Err(hard_error),
            // The body ended: the read timeout applies from now.
            () = body_sent(progress.filter(|_| sending)) => {}
        }
    }
}

/// Returns when a body still being sent ends (at once if it has ended
/// since); never without one.
async fn body_sent(progress: Option<&SendProgress>) {
    match progress {
        Some(progress) => progress.sent().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`, or forever without it.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Maps a hyper client error to the proxy's: the client's own body
/// failures keep their meaning (413, 408, 400, 499); the rest are
/// upstream's.
fn classify(error: hyper::Error) -> ProxyError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if let Some(body) = cause.downcast_ref::<RequestBodyError>() {
            return ProxyError::from(body);
        }
        source = cause.source();
    }
    ProxyError::Upstream(error)
}

/// Whether `proxy-next-upstream` names the kind of `error`: a connect
/// timeout or a response head timeout is `timeout`, a malformed response
/// head `invalid_header`, any other connection failure `error`.
fn is_retryable(error: &ProxyError, next: &NextUpstream) -> bool {
    match error {
        ProxyError::Connect(upstream::ConnectError::Timeout(_)) | ProxyError::UpstreamTimeout => {
            next.timeout
        }
        ProxyError::Upstream(e) if e.is_parse() || e.is_parse_too_large() => next.invalid_header,
        ProxyError::Connect(_) | ProxyError::Upstream(_) => next.error,
        _ => false,
    }
}

/// Whether a sent request may be sent again: nginx retries only idempotent
/// methods, and only a request without a body can be rebuilt here.
fn replayable(req: &Request<RequestBody>, settings: &ProxySettings) -> bool {
    settings.next_upstream_tries > 1
        && req.body().is_end_stream()
        && (settings.retry_non_idempotent || is_idempotent(req.method()))
}

fn is_idempotent(method: &Method) -> bool {
    !matches!(method.as_str(), "POST" | "PATCH" | "LOCK")
}

fn copy_head(req: &Request<RequestBody>) -> Parts {
    let (mut head, ()) = Request::new(()).into_parts();
    head.method = req.method().clone();
    head.uri = req.uri().clone();
    head.version = req.version();
    head.headers = req.headers().clone();
    head
}

fn rebuild(head: &Parts) -> Request<RequestBody> {
    Request::from_parts(head.clone(), RequestBody::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_follows_nginx() {
        for m in ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"] {
            assert!(is_idempotent(&Method::from_bytes(m.as_bytes()).unwrap()));
        }
        for m in ["POST", "PATCH", "LOCK"] {
            assert!(!is_idempotent(&Method::from_bytes(m.as_bytes()).unwrap()));
        }
    }

    #[test]
    fn only_bodyless_idempotent_requests_replay() {
        let settings = ProxySettings::default();
        let get = Request::get("/").body(RequestBody::empty()).unwrap();
        assert!(replayable(&get, &settings));
        let post = Request::post("/").body(RequestBody::empty()).unwrap();
        assert!(!replayable(&post, &settings));
        let lenient = ProxySettings {
            retry_non_idempotent: true,
            ..ProxySettings::default()
        };
        assert!(replayable(&post, &lenient));
        let single = ProxySettings {
            next_upstream_tries: 1,
            ..ProxySettings::default()
        };
        assert!(!replayable(&get, &single));
    }

    #[test]
    fn retried_failures_follow_proxy_next_upstream() {
        let timeout = ProxyError::UpstreamTimeout;
        let connect = ProxyError::Connect(upstream::ConnectError::Io(std::io::Error::other("x")));
        let default = NextUpstream::default();
        assert!(is_retryable(&timeout, &default) && is_retryable(&connect, &default));
        assert!(!is_retryable(&ProxyError::ClientClosed, &default));
        let off = NextUpstream::off();
        assert!(!is_retryable(&timeout, &off) && !is_retryable(&connect, &off));
        let mut only_timeout = NextUpstream::default();
        only_timeout.error = false;
        assert!(is_retryable(&timeout, &only_timeout));
        assert!(!is_retryable(&connect, &only_timeout));
    }

    #[test]
    fn copied_head_keeps_method_uri_and_headers() {
        let req = Request::put("/a?b=1")
            .header("x-a", "1")
            .body(RequestBody::empty())
            .unwrap();
        let copy = rebuild(&copy_head(&req));
        assert_eq!(copy.method(), Method::PUT);
        assert_eq!(copy.uri(), "/a?b=1");
        assert_eq!(copy.headers()["x-a"], "1");
    }
}
