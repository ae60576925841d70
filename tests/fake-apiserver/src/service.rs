//! One HTTP request in, one response out: request recording, the simulated
//! outage, routing to discovery or the resource verbs, and `Status` errors.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::Value;

use crate::body::Body;
use crate::discovery;
use crate::handlers::{self, Reply, Request as ApiRequest};
use crate::openapi;
use crate::openapi_proto;
use crate::query::Query;
use crate::router::{Route, route};
use crate::state::{RecordedRequest, Shared, lock, read};
use crate::status::ApiError;
use crate::views::View;
use crate::watch;

/// Largest request body accepted (the real server's limit is 3 MiB per
/// object; this is generous).
const BODY_LIMIT: usize = 32 << 20;

/// The request log keeps at most this many entries (the oldest half goes
/// when full), so long manual runs stay bounded.
const REQUEST_LOG_LIMIT: usize = 100_000;

/// A JSON response.
pub(crate) fn json_response(code: u16, value: &Value) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(Body::full(body));
    *resp.status_mut() = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::OK);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(err: &ApiError) -> Response<Body> {
    json_response(err.code, &err.to_status())
}

fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> &str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Serves one request.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let raw_query = req.uri().query().unwrap_or("").to_owned();
    let recorded = RecordedRequest {
        method: req.method().as_str().to_owned(),
        path: path.clone(),
        query: raw_query.clone(),
    };
    {
        let mut log = lock(&shared.requests);
        if log.len() >= REQUEST_LOG_LIMIT {
            log.drain(..REQUEST_LOG_LIMIT / 2);
        }
        log.push(recorded.clone());
    }
    shared.hang.hold_if_matching(&recorded).await;
    tracing::debug!(method = %req.method(), %path, query = %raw_query, "request");
    if shared.is_unavailable() {
        return Ok(error_response(&ApiError::unavailable()));
    }
    let query = Query::parse(&raw_query);
    let kinds = read(&shared.kinds).clone();
    let resp = match route(&kinds, &path) {
        Route::Resource(p) => resource(shared, req, &p, &query).await,
        _ if req.method() != Method::GET => Err(ApiError::method_not_allowed()),
        Route::Version => Ok(json_response(200, &discovery::version())),
        Route::Api => Ok(json_response(200, &discovery::core_versions())),
        Route::Apis => Ok(json_response(200, &discovery::group_list(&kinds))),
        Route::Group(g) => Ok(json_response(200, &discovery::group(&kinds, &g))),
        Route::GroupVersion(g, v) => Ok(json_response(
            200,
            &discovery::resource_list(&kinds, &g, &v),
        )),
        Route::Health => {
            let mut resp = Response::new(Body::full("ok"));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            Ok(resp)
        }
        Route::OpenApiV2 => {
            let crds = crate::crd::all(&lock(&shared.store));
            let doc = openapi::v2(&kinds, &crds);
            if header_str(&req, header::ACCEPT).contains("protobuf") {
                let mut resp = Response::new(Body::full(openapi_proto::encode(&doc)));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(openapi_proto::MEDIA_TYPE),
                );
                Ok(resp)
            } else {
                Ok(json_response(200, &doc))
            }
        }
        Route::OpenApiRoot => Ok(json_response(200, &openapi::root(&kinds))),
        Route::OpenApiDoc(gv) => {
            let crds = crate::crd::all(&lock(&shared.store));
            openapi::document(&kinds, &crds, &gv)
                .map(|doc| json_response(200, &doc))
                .ok_or_else(ApiError::no_route)
        }
        Route::NotFound => Err(ApiError::no_route()),
    };
    Ok(resp.unwrap_or_else(|e| error_response(&e)))
}

async fn resource(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    p: &crate::router::ResourcePath,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let method = req.method().clone();
    let watching =
        method == Method::GET && p.name.is_none() && (p.watch_prefix || query.flag("watch"));
    if watching {
        let view = View::from_accept(header_str(&req, header::ACCEPT));
        let body = watch::start(shared, p, query, view)?;
        let mut resp = Response::new(body);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok(resp);
    }
    if p.watch_prefix {
        return Err(ApiError::method_not_allowed());
    }
    let content_type = header_str(&req, header::CONTENT_TYPE).to_owned();
    let accept = header_str(&req, header::ACCEPT).to_owned();
    let user_agent = header_str(&req, header::USER_AGENT).to_owned();
    let body: Bytes = match Limited::new(req.into_body(), BODY_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(ApiError::too_large());
        }
        Err(e) => return Err(ApiError::bad_request(format!("reading the body: {e}"))),
    };
    let api_req = ApiRequest {
        method: &method,
        path: p,
        query,
        content_type: &content_type,
        body: &body,
        user_agent: &user_agent,
    };
    let Reply {
        code,
        body,
        warnings,
    } = handlers::handle(&shared, &api_req).await?;
    let body = if method == Method::GET {
        View::from_accept(&accept).render(&p.rt, body)
    } else {
        body
    };
    let mut resp = json_response(code, &body);
    for w in warnings {
        // `299 - "text"`, as the real server sends warnings.
        let text = format!("299 - {}", serde_json::Value::String(w));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    Ok(resp)
}
