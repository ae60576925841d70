//! A stream that first replays bytes already read from it: what the PROXY
//! protocol reader or the ClientHello peek read past what they needed.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `inner`, with `prefix` read first.
#[derive(Debug)]
pub struct Rewind<T> {
    prefix: Bytes,
    inner: T,
}

impl<T> Rewind<T> {
    /// `inner` with nothing to replay.
    pub fn new(inner: T) -> Self {
        Self {
            prefix: Bytes::new(),
            inner,
        }
    }

    /// `inner` replaying `prefix` first.
    pub fn with_prefix(inner: T, prefix: Bytes) -> Self {
        Self { prefix, inner }
    }

    /// The bytes still to replay, and the stream.
    pub fn into_parts(self) -> (Bytes, T) {
        (self.prefix, self.inner)
    }

    /// Whether bytes are still to replay.
    pub fn replaying(&self) -> bool {
        !self.prefix.is_empty()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
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
    async fn the_prefix_comes_first_then_the_stream() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut rewind = Rewind::with_prefix(client, Bytes::from_static(b"abc"));
        server.write_all(b"def").await.unwrap();
        drop(server);
        let mut out = Vec::new();
        rewind.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"abcdef");
    }

    #[tokio::test]
    async fn a_small_buffer_takes_the_prefix_in_pieces() {
        let (client, _server) = tokio::io::duplex(64);
        let mut rewind = Rewind::with_prefix(client, Bytes::from_static(b"abcdef"));
        let mut buf = [0u8; 4];
        assert_eq!(rewind.read(&mut buf).await.unwrap(), 4);
        assert_eq!(&buf, b"abcd");
        assert_eq!(rewind.read(&mut buf).await.unwrap(), 2);
        assert_eq!(&buf[..2], b"ef");
    }
}
