//! `custom-http-errors`: when the upstream answers one of the route's
//! codes, the request is sent again to the route's default backend
//! (`default-backend`, else `--default-backend-service`), as
//! ingress-nginx's `@custom_<upstream>_<code>`
//! location does: path `/`, the client's method and Host, no body, and the
//! headers the default-backend contract names (`X-Code`, `X-Format`,
//! `X-Original-URI`, `X-Namespace`, `X-Ingress-Name`, `X-Service-Name`,
//! `X-Service-Port`, `X-Request-ID`, `X-Forwarded-For`). Its answer goes to
//! the client with the upstream's status code. If the default backend
//! cannot answer, the upstream's own answer is sent.

use std::net::IpAddr;

use http::header::{ACCEPT, HOST, HeaderName};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};

use super::ProxyError;
use super::body::{RequestBody, ResponseBody};
use super::exchange::Trace;
use super::forward;
use crate::backend::Backend;
use crate::backend::balance::affinity::Sticky;
use crate::ids::BackendId;
use crate::table::{Route, RouteTable};
use crate::upstream::Wire;

static X_CODE: HeaderName = HeaderName::from_static("x-code");
static X_FORMAT: HeaderName = HeaderName::from_static("x-format");
static X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
static X_NAMESPACE: HeaderName = HeaderName::from_static("x-namespace");
static X_INGRESS_NAME: HeaderName = HeaderName::from_static("x-ingress-name");
static X_SERVICE_NAME: HeaderName = HeaderName::from_static("x-service-name");
static X_SERVICE_PORT: HeaderName = HeaderName::from_static("x-service-port");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// What the error page request needs from the client's request, kept
/// before the request is taken apart; only for routes that replace errors.
#[derive(Debug)]
pub(crate) struct Original {
    method: Method,
    uri: Uri,
    host: Option<HeaderValue>,
    accept: Option<HeaderValue>,
    client: IpAddr,
}

impl Original {
    /// Keeps what an error page would need, if `route` replaces errors and
    /// has a default backend to ask.
    pub(crate) fn read<B>(
        table: &RouteTable,
        route: &Route,
        req: &Request<B>,
        client: IpAddr,
    ) -> Option<Box<Self>> {
        route.policy.custom_errors.as_ref()?;
        error_backend(table, route)?;
        Some(Box::new(Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            host: req.headers().get(HOST).cloned(),
            accept: req.headers().get(ACCEPT).cloned(),
            client,
        }))
    }
}

/// A default backend's page to ask for in place of an upstream's answer.
pub(crate) struct Replacement<'t> {
    fallback: &'t Backend,
    route: &'t Route,
    request: Request<RequestBody>,
}

/// The error-page decision, made without waiting: a replacement when
/// `route` replaces `status` from `backend` and has a default backend
/// other than `backend` to ask (nginx turns interception off in the error
/// location, so the default backend's own errors are its answer).
pub(crate) fn replacement<'t>(
    table: &'t RouteTable,
    route: &'t Route,
    backend: &Backend,
    original: Option<Box<Original>>,
    status: StatusCode,
    request_id: Option<&HeaderValue>,
) -> Option<Replacement<'t>> {
    let original = original?;
    let codes = route.policy.custom_errors.as_ref()?;
    let fallback = error_backend(table, route).and_then(|id| table.backend(id))?;
    if !codes.contains(status.as_u16()) || std::ptr::eq(&**fallback, backend) {
        return None;
    }
    let request = error_request(&original, route, backend, status.as_u16(), request_id);
    Some(Replacement {
        fallback,
        route,
        request,
    })
}

impl Replacement<'_> {
    /// The default backend's answer with `response`'s status, or `response`
    /// itself if the default backend cannot answer.
    pub(crate) async fn fetch(self, response: Response<ResponseBody>) -> Response<ResponseBody> {
        // Boxed: a second upstream exchange, rare, kept out of the request's
        // own future.
        match Box::pin(ask(self.fallback, self.request, self.route)).await {
            Ok(mut page) => {
                *page.status_mut() = response.status();
                page
            }
            Err(error) => {
                tracing::debug!(%error, backend = self.fallback.name(), "custom-http-errors: the default backend did not answer");
                response
            }
        }
    }
}

/// Where a route's error pages come from: its `default-backend`
/// annotation's Service, else `--default-backend-service`'s.
fn error_backend(table: &RouteTable, route: &Route) -> Option<BackendId> {
    route.fallback.or_else(|| table.default_backend())
}

/// Sends the error page request like any other, retries included, without
/// touching the main request's trace or session.
async fn ask(
    fallback: &Backend,
    req: Request<RequestBody>,
    route: &Route,
) -> Result<Response<ResponseBody>, ProxyError> {
    let mut trace = Trace::default();
    let mut sticky = Sticky::default();
    // Plain HTTP/1.1, as nginx's error location proxies to the default
    // backend whatever the route's backend-protocol.
    let wire = Wire {
        http2: false,
        tls: None,
    };
    let destination = forward::Destination {
        backend: fallback,
        wire: &wire,
        settings: &route.settings,
    };
    forward::forward(destination, req, None, &mut trace, None, &mut sticky).await
}

/// The request ingress-nginx's error location sends.
fn error_request(
    original: &Original,
    route: &Route,
    backend: &Backend,
    code: u16,
    request_id: Option<&HeaderValue>,
) -> Request<RequestBody> {
    let mut req = Request::new(RequestBody::empty());
    *req.method_mut() = original.method.clone();
    *req.uri_mut() = Uri::from_static("/");
    let headers = req.headers_mut();
    if let Some(host) = &original.host {
        headers.insert(HOST, host.clone());
    }
    headers.insert(X_CODE.clone(), HeaderValue::from(code));
    set(headers, &X_FORMAT, original.accept.clone());
    let request_uri = original.uri.path_and_query().map_or("/", |pq| pq.as_str());
    set(
        headers,
        &X_ORIGINAL_URI,
        HeaderValue::from_str(request_uri).ok(),
    );
    if let Some(source) = &route.source {
        set(
            headers,
            &X_NAMESPACE,
            HeaderValue::from_str(&source.namespace).ok(),
        );
        set(
            headers,
            &X_INGRESS_NAME,
            HeaderValue::from_str(&source.name).ok(),
        );
    }
    let key = backend.key();
    set(
        headers,
        &X_SERVICE_NAME,
        HeaderValue::from_str(&key.service).ok(),
    );
    set(
        headers,
        &X_SERVICE_PORT,
        HeaderValue::from_str(&key.port).ok(),
    );
    set(headers, &super::X_REQUEST_ID, request_id.cloned());
    let client = original.client.to_canonical().to_string();
    set(
        headers,
        &X_FORWARDED_FOR,
        HeaderValue::from_str(&client).ok(),
    );
    req
}

fn set(headers: &mut HeaderMap, name: &HeaderName, value: Option<HeaderValue>) {
    if let Some(value) = value {
        headers.insert(name.clone(), value);
    }
}
