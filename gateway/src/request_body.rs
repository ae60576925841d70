//! The client's request body on its way upstream ([`RequestBody`]):
//! passed on frame by frame as it arrives, under a size limit and an idle
//! timeout, never buffered. Below the upstream connection code, which
//! sends it; the proxy builds it.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

/// Why the client's request body could not be passed on.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    /// The body grew past `proxy-body-size`.
    #[error("request body is larger than {0} bytes")]
    TooLarge(u64),
    /// The client sent nothing for `client-body-timeout`.
    #[error("client sent no body data for {0:?}")]
    Timeout(Duration),
    /// The client connection failed mid-body.
    #[error("reading the client's body failed: {0}")]
    Client(#[source] hyper::Error),
}

/// When the request body last moved, for the upstream send timeout.
/// Shared between the body (which records) and the wait for the response
/// head (which reads).
#[derive(Debug)]
pub(crate) struct SendProgress {
    start: Instant,
    /// Body bytes received from the client so far.
    received: AtomicU64,
    /// Nanoseconds after `start` of the last frame handed upstream.
    last: AtomicU64,
    /// Nanoseconds after `start` at which the body ended, or `u64::MAX`.
    done: AtomicU64,
    /// Wakes the wait for the response head when the body ends, so that
    /// it switches from the send timeout to the read timeout at once.
    ended: tokio::sync::Notify,
}

impl SendProgress {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            received: AtomicU64::new(0),
            last: AtomicU64::new(0),
            done: AtomicU64::new(u64::MAX),
            ended: tokio::sync::Notify::new(),
        }
    }

    fn elapsed_nanos(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
    }

    fn record(&self, bytes: u64) -> u64 {
        self.last.store(self.elapsed_nanos(), Ordering::Relaxed);
        self.received.fetch_add(bytes, Ordering::Relaxed) + bytes
    }

    /// Body bytes received from the client so far.
    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    fn finish(&self) {
        if !self.is_sent() {
            self.done.store(self.elapsed_nanos(), Ordering::SeqCst);
            self.ended.notify_waiters();
        }
    }

    /// Whether the whole body went out.
    pub(crate) fn is_sent(&self) -> bool {
        self.done.load(Ordering::SeqCst) != u64::MAX
    }

    /// Returns once the whole body went out.
    pub(crate) async fn sent(&self) {
        let mut ended = std::pin::pin!(self.ended.notified());
        ended.as_mut().enable();
        if !self.is_sent() {
            ended.await;
        }
    }

    /// When waiting for the response head should give up: `send_timeout`
    /// after the last body progress while the body is still being sent,
    /// `read_timeout` after it ended.
    pub(crate) fn deadline(&self, send_timeout: Duration, read_timeout: Duration) -> Instant {
        let done = self.done.load(Ordering::Relaxed);
        if done == u64::MAX {
            let last = self.last.load(Ordering::Relaxed);
            self.start + Duration::from_nanos(last) + send_timeout
        } else {
            self.start + Duration::from_nanos(done) + read_timeout
        }
    }
}

/// A request body sent upstream: empty, or the client's body streamed
/// through with a size limit and an idle timeout.
#[derive(Debug)]
pub struct RequestBody {
    /// Boxed: a request moves several times on its way upstream (hyper's
    /// client hands it between tasks), the body's state only when read.
    inner: Option<Box<ClientBody>>,
}

#[derive(Debug)]
struct ClientBody {
    /// Frames read before forwarding (`model-from-body`), sent first.
    peeked: VecDeque<Frame<Bytes>>,
    incoming: Incoming,
    limit: Option<u64>,
    idle: IdleTimer,
    progress: Arc<SendProgress>,
    /// A mirrored copy's share of the body (`mirror-request-body`).
    tee: Option<crate::mirror::Tee>,
}

impl RequestBody {
    /// A body with no bytes.
    pub(crate) fn empty() -> Self {
        Self { inner: None }
    }

    /// Streams the client's body, `peeked` (frames already read from it)
    /// first; returns the progress record the response wait reads for its
    /// send timeout.
    pub(crate) fn client(
        peeked: VecDeque<Frame<Bytes>>,
        incoming: Incoming,
        limit: Option<u64>,
        idle_timeout: Duration,
    ) -> (Self, Arc<SendProgress>) {
        let progress = Arc::new(SendProgress::new());
        let body = ClientBody {
            peeked,
            incoming,
            limit,
            idle: IdleTimer::new(idle_timeout),
            progress: progress.clone(),
            tee: None,
        };
        (
            Self {
                inner: Some(Box::new(body)),
            },
            progress,
        )
    }

    /// Copies the body, as it is read, into a mirrored request's; `false`
    /// when there is no body to copy.
    pub(crate) fn tee(&mut self, tee: crate::mirror::Tee) -> bool {
        match &mut self.inner {
            Some(body) => {
                body.tee = Some(tee);
                true
            }
            None => false,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        let Some(body) = self.get_mut().inner.as_mut() else {
            return Poll::Ready(None);
        };
        let next = match body.peeked.pop_front() {
            Some(frame) => Poll::Ready(Some(Ok(frame))),
            None => Pin::new(&mut body.incoming).poll_frame(cx),
        };
        match next {
            Poll::Ready(Some(Ok(frame))) => {
                let bytes = frame.data_ref().map_or(0, |d| d.len() as u64);
                if let (Some(tee), Some(data)) = (&mut body.tee, frame.data_ref()) {
                    tee.frame(data);
                }
                let received = body.progress.record(bytes);
                if let Some(limit) = body.limit.filter(|l| received > *l) {
                    return Poll::Ready(Some(Err(RequestBodyError::TooLarge(limit))));
                }
                body.idle.progressed();
                // With a known length the sender may never poll for the
                // end: the last byte is the end.
                if body.peeked.is_empty() && body.incoming.is_end_stream() {
                    body.progress.finish();
                    if let Some(tee) = &mut body.tee {
                        tee.end();
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                if let Some(tee) = &mut body.tee {
                    tee.abandon();
                }
                Poll::Ready(Some(Err(RequestBodyError::Client(error))))
            }
            Poll::Ready(None) => {
                body.progress.finish();
                if let Some(tee) = &mut body.tee {
                    tee.end();
                }
                Poll::Ready(None)
            }
            Poll::Pending => {
                ready!(body.idle.poll_expired(cx));
                Poll::Ready(Some(Err(RequestBodyError::Timeout(body.idle.timeout))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(|b| b.peeked.is_empty() && b.incoming.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let Some(body) = &self.inner else {
            return SizeHint::with_exact(0);
        };
        let rest = body.incoming.size_hint();
        let peeked: u64 = body
            .peeked
            .iter()
            .filter_map(|f| f.data_ref().map(|d| d.len() as u64))
            .sum();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(peeked));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(peeked));
        }
        hint
    }
}

/// A timer that fires after `timeout` without progress. It is armed only
/// when a poll finds no data, so a body that is always ready costs no timer.
#[derive(Debug)]
struct IdleTimer {
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    progressed: bool,
}

impl IdleTimer {
    fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            sleep: None,
            progressed: false,
        }
    }

    fn progressed(&mut self) {
        self.progressed = true;
    }

    /// Called when the inner body is pending: `Ready` once the timeout passed
    /// with no progress.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = Instant::now() + self.timeout;
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                if std::mem::take(&mut self.progressed) {
                    sleep.as_mut().reset(deadline);
                }
                sleep
            }
            None => {
                self.progressed = false;
                self.sleep
                    .insert(Box::pin(tokio::time::sleep_until(deadline)))
            }
        };
        sleep.as_mut().poll(cx)
    }
}
