//! Sending a request to a backend: pick an endpoint, get a connection, wait
//! for the response head under the send/read timeouts, and try another
//! endpoint when ingress-nginx's `proxy-next-upstream` rules allow.
//!
//! Retry rules (ingress-nginx: `error timeout`, 3 tries, idempotent only):
//! - a request that never left the gateway (connect refused or timed out,
//!   or a pooled connection found closed before sending) is retried for
//!   every method, since no byte of it reached an upstream;
//! - a request that was sent is retried only when it is idempotent (or
//!   `retry-non-idempotent` is on) and has no body, so it can be rebuilt;
//! - a request whose own body failed (too large, client stalled or gone)
//!   is never retried.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::{Method, Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use tokio::time::Instant;

use super::body::{Lease, RequestBody, RequestBodyError, ResponseBody, SendProgress};
use super::error::ProxyError;
use super::exchange::Trace;
use crate::backend::{Backend, Endpoint, InFlight};
use crate::settings::ProxySettings;
use crate::upstream::{self, Conn};

/// A failed attempt, with the request if it never left the gateway.
struct Failure {
    error: ProxyError,
    unsent: Option<Request<RequestBody>>,
}

/// Forwards `req` to one of `backend`'s endpoints, retrying as the module
/// docs describe. `progress` is the request body's send record, if it has a
/// body.
pub(crate) async fn forward(
    backend: &Backend,
    req: Request<RequestBody>,
    progress: Option<Arc<SendProgress>>,
    settings: &ProxySettings,
    trace: &mut Trace,
) -> Result<Response<ResponseBody>, ProxyError> {
    let endpoints = backend.endpoints();
    if endpoints.endpoints().is_empty() {
        return Err(if endpoints.service_found() {
            ProxyError::NoEndpoints
        } else {
            ProxyError::ServiceNotFound
        });
    }
    let replay = replayable(&req, settings).then(|| copy_head(&req));
    let started = Instant::now();
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut request = req;
    loop {
        let Some(endpoint) = backend.pick(&endpoints, &tried) else {
            return Err(ProxyError::NoEndpoints);
        };
        let addr = endpoint.addr();
        trace.upstream = Some(addr);
        trace.upstream_started = Some(Instant::now());
        let failure = match attempt(endpoint, request, progress.as_deref(), settings, trace).await {
            Ok(response) => return Ok(response),
            Err(failure) => failure,
        };
        tried.push(addr);
        let may_retry = is_retryable(&failure.error)
            && tried.len() < settings.next_upstream_tries as usize
            && tried.len() < endpoints.endpoints().len()
            && settings
                .next_upstream_timeout
                .is_none_or(|budget| started.elapsed() < budget);
        request = match (may_retry, failure.unsent, &replay) {
            (true, Some(unsent), _) => unsent,
            (true, None, Some(head)) => rebuild(head),
            _ => return Err(failure.error),
        };
        tracing::debug!(upstream = %addr, error = %failure.error, "trying the next endpoint");
    }
}

/// One try against one endpoint.
async fn attempt(
    endpoint: Arc<Endpoint>,
    mut req: Request<RequestBody>,
    progress: Option<&SendProgress>,
    settings: &ProxySettings,
    trace: &mut Trace,
) -> Result<Response<ResponseBody>, Failure> {
    let in_flight = InFlight::start(endpoint);
    let endpoint = in_flight.endpoint();
    let started = Instant::now();
    loop {
        let connecting = Instant::now();
        let mut conn = match endpoint.pool.checkout(&settings.pool) {
            Some(conn) => conn,
            None => match upstream::connect(endpoint.addr(), settings.connect_timeout).await {
                Ok(conn) => conn,
                Err(error) => {
                    return Err(Failure {
                        error: ProxyError::Connect(error),
                        unsent: Some(req),
                    });
                }
            },
        };
        trace.connect = Some(if conn.reused {
            Duration::ZERO
        } else {
            connecting.elapsed()
        });
        let sent = conn.sender.try_send_request(req);
        let Ok(outcome) = wait_for_head(sent, progress, settings).await else {
            // Dropping `conn` closes it, which cancels the upstream request.
            return Err(Failure {
                error: ProxyError::UpstreamTimeout,
                unsent: None,
            });
        };
        match outcome {
            Ok(response) => {
                trace.header = Some(started.elapsed());
                trace.upstream_status = Some(response.status().as_u16());
                return Ok(respond(response, conn, in_flight, settings));
            }
            Err(mut error) => match error.take_message() {
                // A pooled connection the upstream closed while it idled:
                // nothing was sent, so take a fresh connection.
                Some(unsent) if conn.reused => req = unsent,
                unsent => {
                    return Err(Failure {
                        error: classify(error.into_error()),
                        unsent,
                    });
                }
            },
        }
    }
}

fn respond(
    response: Response<Incoming>,
    conn: Conn,
    in_flight: InFlight,
    settings: &ProxySettings,
) -> Response<ResponseBody> {
    let lease = Lease {
        conn,
        in_flight,
        pool: settings.pool,
    };
    response.map(|incoming| ResponseBody::upstream(incoming, settings.read_timeout, lease))
}

/// The wait for the response head gave up.
struct TimedOut;

/// Waits for the response head: `read_timeout` after the request was sent,
/// or, while a request body is still going out, `send_timeout` after it
/// last moved and `read_timeout` after it ended.
async fn wait_for_head<F: Future>(
    sent: F,
    progress: Option<&SendProgress>,
    settings: &ProxySettings,
) -> Result<F::Output, TimedOut> {
    let Some(progress) = progress else {
        return tokio::time::timeout(settings.read_timeout, sent)
            .await
            .map_err(|_| TimedOut);
    };
    let deadline = || progress.deadline(settings.send_timeout, settings.read_timeout);
    let sent = std::pin::pin!(sent);
    let mut sent = sent;
    loop {
        tokio::select! {
            output = &mut sent => return Ok(output),
            () = tokio::time::sleep_until(deadline()) => {
                if deadline() <= Instant::now() {
                    return Err(TimedOut);
                }
            }
        }
    }
}

/// Maps a hyper client error to the proxy's: the client's own body
/// failures keep their meaning (413, 408, 499); the rest are upstream's.
fn classify(error: hyper::Error) -> ProxyError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if let Some(body) = cause.downcast_ref::<RequestBodyError>() {
            return match body {
                RequestBodyError::TooLarge(limit) => ProxyError::BodyTooLarge(*limit),
                RequestBodyError::Timeout(_) => ProxyError::ClientBodyTimeout,
                RequestBodyError::Client(_) => ProxyError::ClientClosed,
            };
        }
        source = cause.source();
    }
    ProxyError::Upstream(error)
}

fn is_retryable(error: &ProxyError) -> bool {
    matches!(
        error,
        ProxyError::Connect(_) | ProxyError::Upstream(_) | ProxyError::UpstreamTimeout
    )
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
