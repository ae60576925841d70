//! A small stand-in for a model server, so that the gateway can be shown
//! and tested without a real model runtime. One [`ModelServer`] is one
//! replica of one model: it answers health checks, JSON predictions and
//! Server-Sent-Event token streams, and tags every response with an
//! `x-model-replica` header naming its address, so a caller can tell which
//! replica answered.
//!
//! The gateway forwards the full original path (`/api/v1/predict/1/health`),
//! so routes match on the last path segment only:
//!
//! | last segment | methods     | answer                                   |
//! |--------------|-------------|------------------------------------------|
//! | `health`     | GET, HEAD   | `{"status":"ok",...}`                    |
//! | `stream`     | GET, POST   | an SSE token stream (see `stream.rs`)    |
//! | anything     | POST        | a JSON prediction (see `predict.rs`)     |
//! | `predict`    | other       | 405                                      |
//! | anything     | other       | 404                                      |
//!
//! A replica bound with [`ModelServer::bind_fake`] is a fake model server
//! for tests and benchmarks instead: its predictions and streams take the
//! time its [`fake::Profile`] says, in a limited number of slots with a
//! queue, and it serves `GET .../metrics` (see [`fake`]).

pub mod fake;
pub mod load;
mod predict;
mod stream;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// The header naming the replica that answered, on every response.
const REPLICA_HEADER: HeaderName = HeaderName::from_static("x-model-replica");

/// Identity of one replica of one model.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    /// The model's name, echoed in every answer.
    pub id: String,
}

/// One replica of a model, bound and ready to [`run`](ModelServer::run).
/// Binding and serving are separate so that the caller can learn the
/// address (port 0 picks a free one) before traffic starts.
#[derive(Debug)]
pub struct ModelServer {
    listener: TcpListener,
    addr: SocketAddr,
    replica: Arc<Replica>,
}

/// What the request handlers need to know about the replica they run in.
#[derive(Debug)]
struct Replica {
    model: ModelInfo,
    /// The bound address, as text for the JSON bodies.
    addr: String,
    /// The bound address as the `x-model-replica` header value.
    header: HeaderValue,
    /// The model id as a JSON string literal, quoted and escaped once
    /// rather than in every stream event.
    model_json: String,
    /// Token streams being generated right now. A stream stops (and leaves
    /// this count) as soon as its client goes away.
    open_streams: AtomicUsize,
    /// For a fake replica: its profile, slots and queue.
    fake: Option<fake::Engine>,
}

/// Every response body: a buffered JSON answer or a live token stream.
type ReplyBody = BoxBody<Bytes, Infallible>;

impl ModelServer {
    /// Binds `addr` (port 0 = any free port).
    pub async fn bind(addr: SocketAddr, model: ModelInfo) -> io::Result<ModelServer> {
        Self::bind_replica(addr, model, None).await
    }

    /// Binds `addr` as a fake replica that behaves as `profile` says,
    /// drawing its delays and lengths from `seed`. An out-of-bounds profile
    /// is an `InvalidInput` error.
    pub async fn bind_fake(
        addr: SocketAddr,
        model: ModelInfo,
        profile: fake::Profile,
        seed: u64,
    ) -> io::Result<ModelServer> {
        let engine = fake::Engine::new(profile, seed)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Self::bind_replica(addr, model, Some(engine)).await
    }

    async fn bind_replica(
        addr: SocketAddr,
        model: ModelInfo,
        fake: Option<fake::Engine>,
    ) -> io::Result<ModelServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let addr_text = addr.to_string();
        let header = HeaderValue::from_str(&addr_text).map_err(io::Error::other)?;
        let model_json = serde_json::Value::String(model.id.clone()).to_string();
        let replica = Replica {
            model,
            addr: addr_text,
            header,
            model_json,
            open_streams: AtomicUsize::new(0),
            fake,
        };
        Ok(ModelServer {
            listener,
            addr,
            replica: Arc::new(replica),
        })
    }

    /// The address actually bound, to point the gateway (or a test) at.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the task is dropped/aborted. Each connection in its own task.
    ///
    /// The connection tasks belong to this future: dropping it closes the
    /// listener and every open connection, like a replica going away.
    pub async fn run(self) {
        let mut connections = JoinSet::new();
        connections.spawn(fake::Engine::watch_hang(self.replica.clone()));
        loop {
            let stream = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Usually out of file descriptors: back off a little.
                        tracing::debug!(%error, "model server accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            let replica = self.replica.clone();
            let service = service_fn(move |req| {
                let replica = replica.clone();
                async move { Ok::<_, Infallible>(handle(&replica, req).await) }
            });
            connections.spawn(async move {
                let served = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(error) = served {
                    tracing::debug!(%error, "model server connection ended with an error");
                }
            });
        }
    }
}

/// Where a request goes, decided from its method and last path segment.
enum Route {
    Health,
    /// Only on fake replicas; 404 on demo ones.
    Metrics,
    Stream,
    Predict,
    NotAllowed(&'static str),
    NotFound,
}

impl Route {
    fn of<B>(req: &Request<B>) -> Self {
        let path = req.uri().path().trim_end_matches('/');
        let last = path.rsplit('/').next().unwrap_or(path);
        match (last, req.method()) {
            ("health", &Method::GET | &Method::HEAD) => Route::Health,
            ("health", _) => Route::NotAllowed("GET, HEAD"),
            ("metrics", &Method::GET) => Route::Metrics,
            ("stream", &Method::GET | &Method::POST) => Route::Stream,
            ("stream", _) => Route::NotAllowed("GET, POST"),
            (_, &Method::POST) => Route::Predict,
            ("predict", _) => Route::NotAllowed("POST"),
            _ => Route::NotFound,
        }
    }
}

async fn handle(replica: &Arc<Replica>, req: Request<Incoming>) -> Response<ReplyBody> {
    let mut response = match (Route::of(&req), &replica.fake) {
        (Route::Health, _) => health(replica),
        (Route::Metrics, Some(engine)) => fake::metrics(replica, engine),
        (Route::Stream, Some(engine)) => fake::stream(replica, engine, req).await,
        (Route::Predict, Some(engine)) => fake::predict(replica, engine, req).await,
        (Route::Stream, None) => stream::respond(replica, req.uri().query()),
        (Route::Predict, None) => predict::respond(replica, req).await,
        (Route::NotAllowed(allow), _) => {
            let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
            response
        }
        (Route::NotFound | Route::Metrics, _) => error(StatusCode::NOT_FOUND, "not found"),
    };
    response
        .headers_mut()
        .insert(REPLICA_HEADER, replica.header.clone());
    response
}

fn health(replica: &Replica) -> Response<ReplyBody> {
    #[derive(Serialize)]
    struct Health<'a> {
        status: &'static str,
        model: &'a str,
        replica: &'a str,
    }
    json(
        StatusCode::OK,
        &Health {
            status: "ok",
            model: &replica.model.id,
            replica: &replica.addr,
        },
    )
}

/// A JSON answer.
fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<ReplyBody> {
    let (status, body) = match serde_json::to_vec(value) {
        Ok(body) => (status, Bytes::from(body)),
        Err(error) => {
            tracing::error!(%error, "serializing an answer failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::from_static(br#"{"error":"serializing the answer failed"}"#),
            )
        }
    };
    let mut response = Response::new(Full::new(body).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A JSON error: `{"error":"<message>"}`.
fn error(status: StatusCode, message: &str) -> Response<ReplyBody> {
    #[derive(Serialize)]
    struct Error<'a> {
        error: &'a str,
    }
    json(status, &Error { error: message })
}
