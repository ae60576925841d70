//! One OCSP fetch: `POST` of the DER request to the responder over plain
//! HTTP/1.1 (`Content-Type: application/ocsp-request`, as ingress-nginx
//! sends it), on a fresh connection; connect, answer and body within
//! [`FETCH_TIMEOUT`], the body at most [`MAX_RESPONSE_BYTES`].

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{FETCH_TIMEOUT, MAX_RESPONSE_BYTES};

/// Why no answer came from the responder.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Nothing within the timeout.
    #[error("no answer within {FETCH_TIMEOUT:?}")]
    Timeout,
    /// The connection failed or broke.
    #[error("connection: {0}")]
    Connection(String),
    /// An answer other than 200.
    #[error("HTTP status {0}")]
    Status(StatusCode),
    /// A body over the bound, or a broken one.
    #[error("body: {0}")]
    Body(String),
}

/// POSTs `request` to the responder at `url` and returns its answer.
pub(super) async fn fetch(url: &http::Uri, request: &[u8]) -> Result<Vec<u8>, FetchError> {
    tokio::time::timeout(FETCH_TIMEOUT, exchange(url, request))
        .await
        .map_err(|_| FetchError::Timeout)?
}

async fn exchange(url: &http::Uri, body: &[u8]) -> Result<Vec<u8>, FetchError> {
    let connection = |e: &dyn std::fmt::Display| FetchError::Connection(e.to_string());
    let authority = url
        .authority()
        .ok_or_else(|| connection(&"no host in the URL"))?;
    // An IPv6 literal comes bracketed.
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| connection(&e))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| connection(&e))?;
    let path = url.path_and_query().map_or("/", |p| p.as_str());
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(HOST, authority.as_str())
        .header(CONTENT_TYPE, "application/ocsp-request")
        .header(USER_AGENT, "edge-gateway")
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| connection(&e))?;
    // The connection runs beside the exchange, and ends with it.
    let _conn = AbortOnDrop(tokio::spawn(conn));
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| connection(&e))?;
    if response.status() != StatusCode::OK {
        return Err(FetchError::Status(response.status()));
    }
    let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| FetchError::Body(e.to_string()))?
        .to_bytes();
    Ok(body.to_vec())
}

/// Aborts a task when dropped (a fetch that timed out or failed).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-shot HTTP server answering `answer`; returns its URL and the
    /// request it read.
    async fn serve_once(answer: Vec<u8>) -> (http::Uri, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ocsp", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // Head plus the 3-byte body the test sends.
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") || !seen.ends_with(b"abc") {
                let n = socket.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            // The client may stop reading (an oversized answer).
            let _ = socket.write_all(&answer).await;
            seen
        });
        (url.parse().unwrap(), task)
    }

    #[tokio::test]
    async fn posts_the_request_and_reads_the_answer() {
        let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/ocsp-response\r\ncontent-length: 4\r\n\r\nresp".to_vec();
        let (url, server) = serve_once(answer).await;
        let body = fetch(&url, b"abc").await.unwrap();
        assert_eq!(body, b"resp");
        let seen = String::from_utf8(server.await.unwrap()).unwrap();
        assert!(seen.starts_with("POST /ocsp HTTP/1.1\r\n"), "{seen}");
        assert!(
            seen.to_ascii_lowercase()
                .contains("content-type: application/ocsp-request"),
            "{seen}"
        );
    }

    #[tokio::test]
    async fn errors_and_oversized_answers_are_failures() {
        let (url, _server) =
            serve_once(b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n".to_vec()).await;
        assert!(matches!(
            fetch(&url, b"abc").await,
            Err(FetchError::Status(StatusCode::INTERNAL_SERVER_ERROR))
        ));
        let big = MAX_RESPONSE_BYTES + 1;
        let mut answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {big}\r\n\r\n").into_bytes();
        answer.resize(answer.len() + big, b'x');
        let (url, _server) = serve_once(answer).await;
        assert!(matches!(
            fetch(&url, b"abc").await,
            Err(FetchError::Body(_))
        ));

        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url: http::Uri = format!("http://{}/", closed.local_addr().unwrap())
            .parse()
            .unwrap();
        drop(closed);
        assert!(matches!(
            fetch(&url, b"abc").await,
            Err(FetchError::Connection(_))
        ));
    }
}
