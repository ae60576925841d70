//! Bytes both ways between a client connection and an upstream one, as
//! nginx's stream proxy moves them: no parsing, each side's end passed on
//! (half-close), an optional idle timeout (`proxy-stream-timeout`: no
//! byte either way for that long closes both), and the bytes counted into
//! the connection's series as they move.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::metrics::StreamStats;

/// How a spliced connection ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Both sides closed.
    Closed,
    /// Nothing moved for the idle timeout.
    Idle,
}

/// Copies between `client` and `upstream` until both ends closed, an
/// error, or `idle` without a byte either way.
pub(crate) async fn splice<C, U>(
    client: C,
    upstream: U,
    idle: Option<Duration>,
    stats: Option<Arc<StreamStats>>,
) -> io::Result<Ended>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let activity = Arc::new(Activity::new());
    let mut client = Tracked {
        inner: client,
        activity: activity.clone(),
        stats: stats.clone(),
        from_client: true,
    };
    let mut upstream = Tracked {
        inner: upstream,
        activity: activity.clone(),
        stats,
        from_client: false,
    };
    let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
    let Some(idle) = idle.filter(|d| !d.is_zero()) else {
        return copy.await.map(|_| Ended::Closed);
    };
    tokio::select! {
        copied = copy => copied.map(|_| Ended::Closed),
        () = activity.idle_for(idle) => Ok(Ended::Idle),
    }
}

/// When bytes last moved, in milliseconds after `start`.
#[derive(Debug)]
struct Activity {
    start: Instant,
    last: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let millis = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(millis, Ordering::Relaxed);
    }

    /// Resolves once nothing moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
            let deadline = self.start + last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A side of the splice that records activity and counts what is read.
struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
    stats: Option<Arc<StreamStats>>,
    /// Whether reads on this side are bytes from the client.
    from_client: bool,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.activity.touch();
            if let Some(stats) = &self.stats {
                let counter = if self.from_client {
                    &stats.received
                } else {
                    &stats.sent
                };
                counter.fetch_add(read as u64, Ordering::Relaxed);
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_move_both_ways_and_are_counted() {
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (upstream, mut upstream_peer) = tokio::io::duplex(64);
        let stats = Arc::new(StreamStats::default());
        let task = tokio::spawn(splice(client, upstream, None, Some(stats.clone())));
        client_peer.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        upstream_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        upstream_peer.write_all(b"pong!").await.unwrap();
        let mut buf = [0u8; 5];
        client_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong!");
        drop(client_peer);
        drop(upstream_peer);
        assert_eq!(task.await.unwrap().unwrap(), Ended::Closed);
        assert_eq!(stats.received.load(Ordering::Relaxed), 4);
        assert_eq!(stats.sent.load(Ordering::Relaxed), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_splice_ends_at_the_timeout() {
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (upstream, _upstream_peer) = tokio::io::duplex(64);
        let task = tokio::spawn(splice(
            client,
            upstream,
            Some(Duration::from_secs(10)),
            None,
        ));
        tokio::time::sleep(Duration::from_secs(6)).await;
        client_peer.write_all(b"x").await.unwrap();
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(!task.is_finished(), "activity pushed the deadline back");
        assert_eq!(task.await.unwrap().unwrap(), Ended::Idle);
    }
}
