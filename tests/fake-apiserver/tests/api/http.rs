//! A tiny HTTP/1.1 client for the raw-API tests: one request per connection,
//! JSON in and out, and watch streams read line by line.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// Deadline for one request or one watch event.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// A response: status code and JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) code: u16,
    pub(crate) body: Value,
    pub(crate) content_type: String,
    /// The `Warning` headers.
    pub(crate) warnings: Vec<String>,
}

async fn send(
    base: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: Option<String>,
) -> hyper::Response<Incoming> {
    let addr = base.trim_start_matches("http://").to_owned();
    let stream = tokio::time::timeout(DEADLINE, TcpStream::connect(&addr))
        .await
        .expect("connect deadline")
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    tokio::time::timeout(DEADLINE, sender.send_request(req))
        .await
        .expect("response deadline")
        .expect("response")
}

/// Sends a request and reads the whole JSON answer.
pub(crate) async fn call(
    base: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Option<Value>,
) -> Reply {
    call_raw(
        base,
        method,
        path,
        content_type,
        None,
        body.map(|b| b.to_string()),
    )
    .await
}

/// [`call`] with a raw body and an Accept header.
pub(crate) async fn call_raw(
    base: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: Option<String>,
) -> Reply {
    let resp = send(base, method, path, content_type, accept, body).await;
    let code = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    let bytes = tokio::time::timeout(DEADLINE, resp.into_body().collect())
        .await
        .expect("body deadline")
        .expect("body")
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        code,
        body,
        content_type,
        warnings,
    }
}

pub(crate) async fn get(base: &str, path: &str) -> Reply {
    call(base, "GET", path, None, None).await
}

pub(crate) async fn post(base: &str, path: &str, body: Value) -> Reply {
    call(base, "POST", path, Some("application/json"), Some(body)).await
}

pub(crate) async fn put(base: &str, path: &str, body: Value) -> Reply {
    call(base, "PUT", path, Some("application/json"), Some(body)).await
}

pub(crate) async fn patch(base: &str, path: &str, content_type: &str, body: Value) -> Reply {
    call(base, "PATCH", path, Some(content_type), Some(body)).await
}

pub(crate) async fn delete(base: &str, path: &str) -> Reply {
    call(base, "DELETE", path, None, None).await
}

/// An open watch stream.
pub(crate) struct Watch {
    body: Incoming,
    buf: BytesMut,
    pub(crate) code: u16,
}

impl Watch {
    /// Opens a watch (`path` must carry `watch=1` and any other parameters).
    pub(crate) async fn open(base: &str, path: &str) -> Self {
        let resp = send(base, "GET", path, None, None, None).await;
        let code = resp.status().as_u16();
        Self {
            body: resp.into_body(),
            buf: BytesMut::new(),
            code,
        }
    }

    /// The next event, or `None` when the stream ended. Panics after
    /// [`DEADLINE`].
    pub(crate) async fn next(&mut self) -> Option<Value> {
        self.next_within(DEADLINE)
            .await
            .unwrap_or_else(|| panic!("no watch event within {DEADLINE:?}"))
    }

    /// The next event within `limit`: `None` when none came, `Some(None)`
    /// when the stream ended.
    pub(crate) async fn next_within(&mut self, limit: Duration) -> Option<Option<Value>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line = self.buf.split_to(pos + 1);
                let value: Value = serde_json::from_slice(&line[..pos]).expect("a JSON line");
                return Some(Some(value));
            }
            let frame = match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return None,
                // The end, or a cut connection (an outage).
                Ok(None | Some(Err(_))) => return Some(None),
                Ok(Some(Ok(frame))) => frame,
            };
            if let Ok(mut data) = frame.into_data() {
                while data.has_remaining() {
                    let chunk = data.chunk().to_vec();
                    data.advance(chunk.len());
                    self.buf.extend_from_slice(&chunk);
                }
            }
        }
    }
}

/// `(type, metadata.name)` of an event.
pub(crate) fn summary(ev: &Value) -> (String, String) {
    (
        ev["type"].as_str().unwrap_or("").to_owned(),
        ev["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    )
}

/// `metadata.resourceVersion` of an object as a number.
pub(crate) fn rv(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("a numeric resourceVersion")
}

/// Asserts a `kind: Status` failure with this code and reason.
pub(crate) fn assert_status(reply: &Reply, code: u16, reason: &str) {
    assert_eq!(reply.code, code, "{:#}", reply.body);
    assert_eq!(reply.body["kind"], "Status");
    assert_eq!(reply.body["apiVersion"], "v1");
    assert_eq!(reply.body["status"], "Failure");
    assert_eq!(reply.body["code"], code);
    assert_eq!(reply.body["reason"], reason, "{:#}", reply.body);
    assert!(
        reply.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}
