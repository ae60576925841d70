//! `bench-upstream`: a minimal, fast HTTP/1.1 upstream for the load tests,
//! so that the proxies are measured, not the backend. One thread (a
//! current-thread tokio runtime), keep-alive, no logging.
//!
//! - `GET /1m`: a 1 MiB body (one shared buffer);
//! - `GET /sse`: `text/event-stream`; one event at once, a second after
//!   `--sse-gap-ms` (a proxy that buffers shows it as a late first byte);
//! - `POST` anything: the body is read to the end, a short reply;
//! - anything else: a 13-byte `hello, world\n`.
//!
//! `bench-upstream --listen 127.0.0.1:19000 [--listen ...] [--sse-gap-ms 20]`

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt as _};
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Size of the large response.
const LARGE: usize = 1 << 20;

type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: Bytes, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(bytes).boxed());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn sse(gap: Duration) -> Response<Body> {
    let events = stream::unfold(0u8, move |n| async move {
        match n {
            0 => Some((Bytes::from_static(b"data: 0\n\n"), 1)),
            1 => {
                tokio::time::sleep(gap).await;
                Some((Bytes::from_static(b"data: 1\n\n"), 2))
            }
            _ => None,
        }
    })
    .map(|data| Ok::<_, Infallible>(Frame::data(data)));
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(events)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    response
}

async fn handle(
    req: Request<Incoming>,
    large: Bytes,
    gap: Duration,
) -> Result<Response<Body>, Infallible> {
    if req.method() == Method::POST {
        let mut body = req.into_body();
        let mut read = 0usize;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => read += frame.data_ref().map_or(0, Bytes::len),
                Err(_) => {
                    let mut response = full(Bytes::new(), "text/plain");
                    *response.status_mut() = StatusCode::BAD_REQUEST;
                    return Ok(response);
                }
            }
        }
        return Ok(full(Bytes::from(format!("read {read}\n")), "text/plain"));
    }
    Ok(match req.uri().path() {
        "/1m" => full(large, "application/octet-stream"),
        "/sse" => sse(gap),
        _ => full(Bytes::from_static(b"hello, world\n"), "text/plain"),
    })
}

async fn serve(listener: TcpListener, large: Bytes, gap: Duration) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let large = large.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, large.clone(), gap));
            // Errors are clients going away; nothing to report.
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn usage(message: &str) -> std::process::ExitCode {
    let _ = writeln!(
        std::io::stderr(),
        "bench-upstream: {message}\nusage: bench-upstream --listen ADDR [--listen ADDR ...] [--sse-gap-ms N]"
    );
    std::process::ExitCode::from(2)
}

fn main() -> std::process::ExitCode {
    let mut addrs: Vec<SocketAddr> = Vec::new();
    let mut gap = Duration::from_millis(20);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(value)) => match value.parse() {
                Ok(addr) => addrs.push(addr),
                Err(_) => return usage(&format!("bad address {value:?}")),
            },
            ("--sse-gap-ms", Some(value)) => match value.parse() {
                Ok(ms) => gap = Duration::from_millis(ms),
                Err(_) => return usage(&format!("bad --sse-gap-ms {value:?}")),
            },
            _ => return usage(&format!("unexpected argument {arg:?}")),
        }
    }
    if addrs.is_empty() {
        return usage("no --listen address");
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return usage(&format!("cannot start the runtime: {error}")),
    };
    let large = Bytes::from(vec![b'x'; LARGE]);
    runtime.block_on(async move {
        let mut listeners = Vec::new();
        for addr in addrs {
            match TcpListener::bind(addr).await {
                Ok(listener) => listeners.push(listener),
                Err(error) => return usage(&format!("cannot listen on {addr}: {error}")),
            }
        }
        let servers: Vec<_> = listeners
            .into_iter()
            .map(|l| tokio::spawn(serve(l, large.clone(), gap)))
            .collect();
        for server in servers {
            let _ = server.await;
        }
        std::process::ExitCode::SUCCESS
    })
}
