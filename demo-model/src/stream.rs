//! `GET|POST .../stream`: a Server-Sent-Events token stream, paced like a
//! language model's output, to show (and test) that the gateway passes
//! events on as they come instead of buffering the response.
//!
//! The stream is `tokens` events
//! `data: {"model":"<id>","index":i,"token":"tok<i>"}`, the first after
//! `ttft_ms` (time to first token) and the rest `interval_ms` apart, then
//! `data: [DONE]`. Each event is its own body frame. The body generates
//! the events itself when polled, so a client that goes away (hyper drops
//! the body) stops generation at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::time::{Instant, Sleep};

use crate::fake::{Lease, hung_until};
use crate::{Replica, ReplyBody, error};

/// The last event of every stream.
const DONE: &[u8] = b"data: [DONE]\n\n";

/// How a stream is paced: from the query string, or from a fake replica's
/// plan.
#[derive(Debug, PartialEq)]
pub(crate) struct Pacing {
    /// Token events before `[DONE]`.
    pub(crate) tokens: u64,
    /// Between two tokens.
    pub(crate) interval: Duration,
    /// Before the first token.
    pub(crate) ttft: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            tokens: 10,
            interval: Duration::from_millis(50),
            ttft: Duration::ZERO,
        }
    }
}

impl Pacing {
    /// Reads `tokens`, `interval_ms` and `ttft_ms`; other parameters are
    /// ignored.
    fn from_query(query: Option<&str>) -> Result<Self, String> {
        let mut pacing = Pacing::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "tokens" => pacing.tokens = number(name, value, 10_000)?,
                "interval_ms" => {
                    pacing.interval = Duration::from_millis(number(name, value, 10_000)?);
                }
                "ttft_ms" => pacing.ttft = Duration::from_millis(number(name, value, 60_000)?),
                _ => {}
            }
        }
        Ok(pacing)
    }
}

fn number(name: &str, value: &str, max: u64) -> Result<u64, String> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| *n <= max)
        .ok_or_else(|| format!("query parameter {name:?} must be an integer from 0 to {max}"))
}

/// Answers a stream request: 400 for bad pacing, else the event stream.
pub(crate) fn respond(replica: &Arc<Replica>, query: Option<&str>) -> Response<ReplyBody> {
    let pacing = match Pacing::from_query(query) {
        Ok(pacing) => pacing,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    events(replica, pacing, None)
}

/// The event stream response for `pacing`; `lease` (a fake replica's
/// request, with its slot) is held until the stream ends or its client
/// goes away.
pub(crate) fn events(
    replica: &Arc<Replica>,
    pacing: Pacing,
    lease: Option<Lease>,
) -> Response<ReplyBody> {
    let mut response = Response::new(TokenStream::new(replica.clone(), pacing, lease).boxed());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The event stream body: each poll either waits for the next event's
/// time or hands out the event.
struct TokenStream {
    replica: Arc<Replica>,
    pacing: Pacing,
    /// The index of the next event; `pacing.tokens` is `[DONE]`, past it
    /// the stream is over.
    next: u64,
    /// When the next event is due.
    due: Pin<Box<Sleep>>,
    /// The fake replica's request (its slot, its KV-cache tokens), freed
    /// with the stream.
    lease: Option<Lease>,
}

impl TokenStream {
    fn new(replica: Arc<Replica>, pacing: Pacing, lease: Option<Lease>) -> Self {
        replica.open_streams.fetch_add(1, Ordering::Relaxed);
        let due = Box::pin(tokio::time::sleep(pacing.ttft));
        Self {
            replica,
            pacing,
            next: 0,
            due,
            lease,
        }
    }

    fn finished(&self) -> bool {
        self.next > self.pacing.tokens
    }

    fn token_event(&self, index: u64) -> Bytes {
        let model = &self.replica.model_json;
        let event =
            format!("data: {{\"model\":{model},\"index\":{index},\"token\":\"tok{index}\"}}\n\n");
        Bytes::from(event)
    }
}

impl Body for TokenStream {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.finished() {
            return Poll::Ready(None);
        }
        ready!(this.due.as_mut().poll(cx));
        // A hung fake replica sends nothing until the hang ends.
        if let Some(end) = hung_until(&this.replica) {
            this.due.as_mut().reset(end);
            ready!(this.due.as_mut().poll(cx));
        }
        let index = this.next;
        this.next += 1;
        if index == this.pacing.tokens {
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(DONE)))));
        }
        // `[DONE]` follows the last token at once; tokens are spaced.
        let wait = if this.next < this.pacing.tokens {
            this.pacing.interval
        } else {
            Duration::ZERO
        };
        this.due.as_mut().reset(Instant::now() + wait);
        if let Some(lease) = &mut this.lease {
            lease.token();
        }
        Poll::Ready(Some(Ok(Frame::data(this.token_event(index)))))
    }

    fn is_end_stream(&self) -> bool {
        self.finished()
    }
}

impl Drop for TokenStream {
    fn drop(&mut self) {
        self.replica.open_streams.fetch_sub(1, Ordering::Relaxed);
        if !self.finished() {
            tracing::debug!(
                model = %self.replica.model.id,
                sent = self.next,
                tokens = self.pacing.tokens,
                "stream client went away; generation stopped"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_comes_from_the_query() {
        assert_eq!(Pacing::from_query(None), Ok(Pacing::default()));
        assert_eq!(
            Pacing::from_query(Some("tokens=3&interval_ms=0&ttft_ms=60000&other=x&flag")),
            Ok(Pacing {
                tokens: 3,
                interval: Duration::ZERO,
                ttft: Duration::from_secs(60),
            })
        );
        for bad in [
            "tokens=10001",
            "tokens=-1",
            "tokens=",
            "tokens",
            "interval_ms=1.5",
            "interval_ms=10001",
            "ttft_ms=60001",
        ] {
            assert!(Pacing::from_query(Some(bad)).is_err(), "{bad}");
        }
    }
}
