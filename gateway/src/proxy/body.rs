//! The upstream's response body on its way to the client
//! ([`ResponseBody`]), passed on frame by frame as it arrives; the request
//! body going the other way lives in the `request_body` module.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::exchange::Exchange;
use super::stream::StreamClock;
use crate::backend::InFlight;
use crate::body_filter::Filter;
use crate::client_io::OpenStream;
use crate::policy::limits::ConnectionPermit;
use crate::upstream::{Conn, PoolSettings};

pub(crate) use crate::request_body::SendProgress;
pub use crate::request_body::{RequestBody, RequestBodyError};

/// Why an upstream response body stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum ResponseBodyError {
    /// The upstream connection failed mid-body.
    #[error("upstream body failed: {0}")]
    Upstream(#[source] hyper::Error),
    /// The upstream sent nothing for `proxy-read-timeout`.
    #[error("upstream sent no body data for {0:?}")]
    Timeout(Duration),
    /// No body byte within `proxy-first-byte-timeout` of the request.
    #[error("upstream sent no first byte within {0:?}")]
    FirstByteTimeout(Duration),
    /// Two chunks further apart than `stream-idle-timeout`.
    #[error("upstream stream idle for {0:?}")]
    StreamIdle(Duration),
    /// `request-deadline` passed mid-body.
    #[error("request deadline passed mid-response")]
    Deadline,
    /// The response could not be compressed.
    #[error("compressing the response failed: {0}")]
    Encode(#[from] std::io::Error),
}

/// The upstream connection and in-flight count a response body holds until
/// it ends: then the connection goes back to the endpoint's pool.
#[derive(Debug)]
pub(crate) struct Lease {
    pub(crate) conn: Conn,
    pub(crate) in_flight: InFlight,
    pub(crate) pool: PoolSettings,
}

impl Lease {
    fn release(self) {
        self.in_flight
            .endpoint()
            .pool
            .checkin(self.conn, &self.pool);
    }
}

/// A response body sent to the client: fixed bytes made by the gateway, or
/// an upstream body streamed through. It finishes the request's record when
/// it ends or is dropped.
#[derive(Debug)]
pub struct ResponseBody {
    kind: ResponseKind,
    /// Boxed: the record is large and most responses move several times.
    exchange: Option<Box<Exchange>>,
    /// The client's `limit-connections` slot, freed when the body is done.
    permit: Option<ConnectionPermit>,
    /// The HTTP/2 stream this body answers, counted open until it is done.
    stream: Option<OpenStream>,
    sent: u64,
    /// Compression and pacing, when configured (see [`crate::body_filter`]).
    filter: Option<Box<Filter>>,
}

#[derive(Debug)]
enum ResponseKind {
    Full(Option<Bytes>),
    /// Boxed: a response moves several times on its way out, and most of
    /// what an upstream body carries (its clock, the connection lease) is
    /// read only when a frame arrives.
    Upstream(Box<UpstreamBody>),
}

/// An upstream's body, streamed under its clock; the connection's lease is
/// released when it ends.
#[derive(Debug)]
struct UpstreamBody {
    incoming: Incoming,
    clock: StreamClock,
    lease: Option<Lease>,
}

impl ResponseBody {
    /// A body of fixed bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self::of(ResponseKind::Full((!bytes.is_empty()).then_some(bytes)))
    }

    /// A body with no bytes.
    pub fn empty() -> Self {
        Self::of(ResponseKind::Full(None))
    }

    fn of(kind: ResponseKind) -> Self {
        Self {
            kind,
            exchange: None,
            permit: None,
            stream: None,
            sent: 0,
            filter: None,
        }
    }

    /// Counts the HTTP/2 stream as open until this body is done.
    pub(crate) fn track(&mut self, stream: OpenStream) {
        self.stream = Some(stream);
    }

    /// Compresses this body with `encoder` on its way out.
    pub(crate) fn encode(&mut self, encoder: crate::compress::Encoder) {
        self.filter.get_or_insert_default().encode(encoder);
    }

    /// Paces this body (`limit-rate`).
    pub(crate) fn pace(&mut self, limit: crate::body_filter::RateLimit) {
        self.filter.get_or_insert_default().pace(limit);
    }

    /// Records the request when this body is done.
    pub(crate) fn attach(&mut self, exchange: Box<Exchange>) {
        self.exchange = Some(exchange);
    }

    /// Holds the client's `limit-connections` slot until this body is done.
    pub(crate) fn hold(&mut self, permit: ConnectionPermit) {
        self.permit = Some(permit);
    }

    /// Takes back the `limit-connections` slot, for an upgraded
    /// connection that outlives this body.
    pub(crate) fn take_permit(&mut self) -> Option<ConnectionPermit> {
        self.permit.take()
    }

    fn finish(&mut self) {
        self.permit = None;
        self.stream = None;
        if let Some(exchange) = self.exchange.take() {
            exchange.finish(self.sent);
        }
    }

    /// Streams an upstream body under `clock`; `lease` is released when
    /// it ends.
    pub(crate) fn upstream(incoming: Incoming, mut clock: StreamClock, mut lease: Lease) -> Self {
        let lease = if incoming.is_end_stream() {
            clock.first_byte(Some(&mut lease.in_flight));
            lease.release();
            None
        } else {
            Some(lease)
        };
        Self::of(ResponseKind::Upstream(Box::new(UpstreamBody {
            incoming,
            clock,
            lease,
        })))
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = ResponseBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ResponseBodyError>>> {
        let this = self.get_mut();
        let polled = match &mut this.filter {
            None => poll_kind(&mut this.kind, cx),
            Some(filter) => {
                let kind = &mut this.kind;
                filter.poll_frame(cx, &mut |cx| poll_kind(kind, cx))
            }
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                this.sent += len;
                if len > 0
                    && let Some(exchange) = &mut this.exchange
                {
                    exchange.chunk();
                }
                if this.is_end_stream() {
                    this.finish();
                }
            }
            Poll::Ready(_) => this.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        if let Some(filter) = &self.filter {
            return filter.is_end_stream();
        }
        match &self.kind {
            ResponseKind::Full(bytes) => bytes.is_none(),
            ResponseKind::Upstream(upstream) => upstream.incoming.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        if self.filter.is_some() {
            return SizeHint::default();
        }
        match &self.kind {
            ResponseKind::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ResponseKind::Upstream(upstream) => upstream.incoming.size_hint(),
        }
    }
}

/// One frame of a response body's source.
fn poll_kind(
    kind: &mut ResponseKind,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, ResponseBodyError>>> {
    match kind {
        ResponseKind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        ResponseKind::Upstream(upstream) => poll_upstream(upstream, cx),
    }
}

/// One frame of an upstream's body, its clock told, its lease released
/// when it ends.
fn poll_upstream(
    upstream: &mut UpstreamBody,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, ResponseBodyError>>> {
    let UpstreamBody {
        incoming,
        clock,
        lease,
    } = upstream;
    // An HTTP/1.1 connection is driven from here while its body streams.
    let polled = match lease.as_mut().and_then(|l| l.conn.driver()) {
        Some(driver) => driver.poll_for(|cx| Pin::new(&mut *incoming).poll_frame(cx), cx),
        None => Pin::new(&mut *incoming).poll_frame(cx),
    };
    match polled {
        Poll::Ready(Some(Ok(frame))) => {
            if frame.data_ref().is_some_and(|d| !d.is_empty()) {
                clock.chunk(lease.as_mut().map(|l| &mut l.in_flight));
            }
            if incoming.is_end_stream()
                && let Some(lease) = lease.take()
            {
                lease.release();
            }
            Poll::Ready(Some(Ok(frame)))
        }
        Poll::Ready(Some(Err(error))) => {
            // Dropping the lease closes the broken connection.
            lease.take();
            Poll::Ready(Some(Err(ResponseBodyError::Upstream(error))))
        }
        Poll::Ready(None) => {
            if let Some(mut lease) = lease.take() {
                clock.first_byte(Some(&mut lease.in_flight));
                lease.release();
            }
            Poll::Ready(None)
        }
        Poll::Pending => {
            let error = ready!(clock.poll_expired(cx));
            // Dropping the lease closes the connection: the upstream
            // stops generating.
            lease.take();
            Poll::Ready(Some(Err(error)))
        }
    }
}
