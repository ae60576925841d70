//! One scrape: `GET <path>` over plain HTTP/1.1 on a fresh connection,
//! connect, answer and body all within the timeout, the body at most
//! [`MAX_PAGE_BYTES`]. Anything else is an error, and the endpoint's
//! scraped values are withdrawn.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, HOST, USER_AGENT};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The largest metrics page read: vLLM's, histograms included, is tens of
/// KiB per model.
pub(crate) const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScrapeError {
    /// Nothing within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed or broke.
    #[error("connection: {0}")]
    Connection(String),
    /// An answer other than 200.
    #[error("status {0}")]
    Status(StatusCode),
    /// A body over the bound, or not UTF-8.
    #[error("body: {0}")]
    Body(String),
}

/// Fetches the metrics page at `addr` + `path`.
pub(crate) async fn fetch(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<String, ScrapeError> {
    tokio::time::timeout(timeout, exchange(addr, path))
        .await
        .map_err(|_| ScrapeError::Timeout(timeout))?
}

async fn exchange(addr: SocketAddr, path: &str) -> Result<String, ScrapeError> {
    let connection = |e: &dyn std::fmt::Display| ScrapeError::Connection(e.to_string());
    let stream = TcpStream::connect(addr).await.map_err(|e| connection(&e))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| connection(&e))?;
    let request = Request::get(path)
        .header(HOST, addr.to_string())
        .header(ACCEPT, "text/plain;version=0.0.4")
        .header(USER_AGENT, "edge-gateway")
        .body(Empty::<Bytes>::new())
        .map_err(|e| ScrapeError::Connection(e.to_string()))?;
    // The connection runs beside the exchange, and ends with it.
    let _conn = AbortOnDrop(tokio::spawn(conn));
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| connection(&e))?;
    if response.status() != StatusCode::OK {
        return Err(ScrapeError::Status(response.status()));
    }
    let body = Limited::new(response.into_body(), MAX_PAGE_BYTES)
        .collect()
        .await
        .map_err(|e| ScrapeError::Body(e.to_string()))?
        .to_bytes();
    String::from_utf8(body.to_vec()).map_err(|e| ScrapeError::Body(e.to_string()))
}

/// Aborts a task when dropped (a scrape that timed out or failed).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
