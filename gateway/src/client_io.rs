//! A client connection's byte stream with two of nginx's bounds on it:
//!
//! - **send timeout** (nginx's `send_timeout`, 60 s): a write to the client
//!   that cannot proceed for that long (the client stopped reading, its
//!   window is full) fails, which ends the connection and with it the
//!   response: the upstream connection and the in-flight slot it held are
//!   released. The timer is armed only while a write is blocked, as nginx
//!   arms it between two successive writes;
//! - **HTTP/2 flood check** (nginx's `ngx_http_v2_read_handler`): the
//!   frames a client sends are followed by their headers; when everything
//!   read, divided by 8, outgrows the DATA and HEADERS payload read by
//!   more than 1 MiB (a flood of PING, SETTINGS, WINDOW_UPDATE,
//!   PRIORITY, RST_STREAM or empty frames), the read fails and the
//!   connection closes. h2 already answers one PING or SETTINGS at a time
//!   before reading on, which bounds memory; this bounds the work.
//!
//! [`StreamActivity`] tells when an HTTP/2 connection has had no open
//! stream for `keep-alive`: it is then closed (GOAWAY), whether or not the
//! client answers pings, as nginx closes idle HTTP/2 connections.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::rewind::Rewind;

/// The bytes beyond the payload a client may send before the flood check
/// applies, as nginx.
const FLOOD_ALLOWANCE: u64 = 1 << 20;

/// A client stream with a send timeout and, for HTTP/2, the flood check.
#[derive(Debug)]
pub(crate) struct ClientIo<S> {
    inner: S,
    send_timeout: Duration,
    /// Armed while a write is blocked; made on the first stall.
    stall: Option<Pin<Box<Sleep>>>,
    stalled: bool,
    frames: Option<FrameMeter>,
}

impl<S> ClientIo<S> {
    /// `inner` with writes bounded by `send_timeout`.
    pub(crate) fn new(inner: S, send_timeout: Duration) -> Self {
        Self {
            inner,
            send_timeout,
            stall: None,
            stalled: false,
            frames: None,
        }
    }

    /// Also applies the HTTP/2 flood check to what is read.
    pub(crate) fn http2(mut self) -> Self {
        self.frames = Some(FrameMeter::default());
        self
    }

    /// A write could not proceed: arm the timer if it is not, and fail
    /// once it expires.
    fn poll_stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let deadline = Instant::now() + self.send_timeout;
        let sleep = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.stalled {
            sleep.as_mut().reset(deadline);
            self.stalled = true;
        }
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client send timeout: the client stopped reading",
        )))
    }

    fn progressed<T>(
        &mut self,
        result: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match result {
            Poll::Pending => self.poll_stalled(cx),
            ready => {
                self.stalled = false;
                ready
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ClientIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        if let Some(meter) = &mut self.frames
            && meter.read(&buf.filled()[before..])
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "http2 flood detected: too many frames without payload",
            )));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ClientIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progressed(result, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progressed(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.progressed(result, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.progressed(result, cx)
    }
}

/// A stream that can tell when bytes have come without reading them: what
/// a parked HTTP/1 connection waits on.
pub(crate) trait ReadReady {
    /// Ready once a read would not block (bytes, the end, or an error).
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

impl ReadReady for tokio::net::TcpStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::net::TcpStream::poll_read_ready(self, cx)
    }
}

/// A TLS stream is watched through its socket: a connection is parked
/// only after a read came back empty, so rustls holds no plaintext then.
impl<S: ReadReady> ReadReady for tokio_rustls::server::TlsStream<S> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_ref().0.poll_read_ready(cx)
    }
}

impl<S: ReadReady> ReadReady for Rewind<S> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.replaying() {
            Poll::Ready(Ok(()))
        } else {
            self.get_ref().poll_read_ready(cx)
        }
    }
}

impl<S: ReadReady> ReadReady for ClientIo<S> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_read_ready(cx)
    }
}

/// The streams of one HTTP/2 connection: how many are open, and since
/// when none is.
#[derive(Debug)]
pub(crate) struct StreamActivity {
    start: Instant,
    open: AtomicUsize,
    /// Milliseconds after `start` at which the last stream ended.
    last_end: AtomicU64,
}

impl StreamActivity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            open: AtomicUsize::new(0),
            last_end: AtomicU64::new(0),
        })
    }

    /// Counts a stream as open until the guard is dropped (with its
    /// response body).
    pub(crate) fn open(self: &Arc<Self>) -> OpenStream {
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenStream(self.clone())
    }

    /// Resolves once no stream has been open for `idle`.
    pub(crate) async fn idle_for(&self, idle: Duration) {
        loop {
            let now = Instant::now();
            let wake = if self.open.load(Ordering::Relaxed) > 0 {
                now + idle
            } else {
                let ended =
                    self.start + Duration::from_millis(self.last_end.load(Ordering::Relaxed));
                if now >= ended + idle {
                    return;
                }
                ended + idle
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

/// One open stream of a [`StreamActivity`].
#[derive(Debug)]
pub(crate) struct OpenStream(Arc<StreamActivity>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        let at = u64::try_from(self.0.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_end.store(at, Ordering::Relaxed);
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Follows HTTP/2 frames through the bytes read, counting the payload of
/// DATA, HEADERS and CONTINUATION frames against everything read.
#[derive(Debug)]
struct FrameMeter {
    /// Bytes of the client connection preface still to skip.
    preface: usize,
    header: [u8; 9],
    header_len: usize,
    /// Bytes of the current frame's payload still to come.
    payload_left: usize,
    /// Whether the current frame's payload counts as payload.
    counts: bool,
    total: u64,
    payload: u64,
}

impl Default for FrameMeter {
    fn default() -> Self {
        Self {
            preface: 24,
            header: [0; 9],
            header_len: 0,
            payload_left: 0,
            counts: false,
            total: 0,
            payload: 0,
        }
    }
}

impl FrameMeter {
    /// Takes in bytes read; true when the connection floods.
    fn read(&mut self, mut bytes: &[u8]) -> bool {
        self.total += bytes.len() as u64;
        while !bytes.is_empty() {
            if self.preface > 0 {
                let n = self.preface.min(bytes.len());
                self.preface -= n;
                bytes = &bytes[n..];
            } else if self.payload_left > 0 {
                let n = self.payload_left.min(bytes.len());
                if self.counts {
                    self.payload += n as u64;
                }
                self.payload_left -= n;
                bytes = &bytes[n..];
            } else {
                let n = (9 - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
                self.header_len += n;
                bytes = &bytes[n..];
                if self.header_len == 9 {
                    let [a, b, c, kind, ..] = self.header;
                    self.payload_left = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
                    // DATA, HEADERS, CONTINUATION.
                    self.counts = matches!(kind, 0 | 1 | 9);
                    self.header_len = 0;
                }
            }
        }
        self.total / 8 > self.payload + FLOOD_ALLOWANCE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut out = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            0,
            0,
            0,
            0,
            1,
        ];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn pings_flood_data_does_not() {
        let mut meter = FrameMeter::default();
        assert!(!meter.read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        let data = frame(0, &[7; 16 * 1024]);
        // Payload in odd-sized reads keeps the meter in step.
        for _ in 0..1000 {
            for piece in data.chunks(1000) {
                assert!(!meter.read(piece));
            }
        }
        let ping = frame(6, &[0; 8]);
        let mut pings = 0u64;
        while !meter.read(&ping) {
            pings += 1;
            assert!(pings < 10_000_000, "never flooded");
        }
        // (16 MiB payload + 1 MiB) * 8, in 17-byte pings.
        assert!(pings > 7_000_000, "flooded early after {pings}");
        let mut fresh = FrameMeter::default();
        fresh.read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        let settings = frame(4, &[]);
        let mut count = 0u64;
        while !fresh.read(&settings) {
            count += 1;
        }
        assert!((900_000..1_000_000).contains(&count), "{count}");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_means_no_open_stream_for_the_whole_period() {
        let activity = StreamActivity::new();
        let idle = Duration::from_secs(75);
        let stream = activity.open();
        let started = Instant::now();
        let watch = tokio::spawn({
            let activity = activity.clone();
            async move { activity.idle_for(idle).await }
        });
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert!(!watch.is_finished(), "closed with a stream open");
        drop(stream);
        watch.await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(175));
    }

    #[tokio::test(start_paused = true)]
    async fn a_blocked_write_fails_after_the_send_timeout() {
        let (client, server) = tokio::io::duplex(64);
        let mut io = ClientIo::new(server, Duration::from_secs(60));
        // Writes proceed while the client reads.
        io.write_all(&[1; 64]).await.unwrap();
        let mut reader = client;
        let mut buf = [0u8; 64];
        reader.read_exact(&mut buf).await.unwrap();
        let started = Instant::now();
        let error = io.write_all(&[2; 1024]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }
}
