//! Every response the gateway makes itself: errors ([`ProxyError`], the
//! one caller of its status map), refusals from the policies and phases
//! ([`Refusal`]: denials, redirects, error pages, CORS preflight answers),
//! and a route's fixed answer. Nothing else builds a response of its own.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Method, Response, StatusCode, Uri};

use super::body::ResponseBody;
use super::error::ProxyError;
use crate::refusal::{Refusal, RefusalBody};

/// How a phase ends a request early: a policy's answer, a route's fixed
/// answer, or an error. Phases return it with `?`; [`Early::render`]
/// turns it into the response.
#[derive(Debug)]
pub(super) enum Early {
    /// A refusal: a denial, a redirect, an error page, a CORS preflight's
    /// answer.
    Refused(Box<Refusal>),
    /// A route's fixed status.
    Fixed(u16),
    /// Something failed: rendered by [`error`] with the request's log line.
    Failed(ProxyError),
}

impl Early {
    /// The response; an error is logged naming the request (`client`,
    /// `method`, `uri`).
    pub(super) fn render(
        self,
        client: SocketAddr,
        method: &Method,
        uri: &Uri,
    ) -> Response<ResponseBody> {
        match self {
            Early::Refused(answer) => refusal(*answer),
            Early::Fixed(code) => fixed(code),
            Early::Failed(failure) => error(failure, client, method, uri),
        }
    }
}

impl From<ProxyError> for Early {
    fn from(error: ProxyError) -> Self {
        Early::Failed(error)
    }
}

impl From<Refusal> for Early {
    fn from(refusal: Refusal) -> Self {
        Early::Refused(Box::new(refusal))
    }
}

impl From<Box<Refusal>> for Early {
    fn from(refusal: Box<Refusal>) -> Self {
        Early::Refused(refusal)
    }
}

/// The answer to a request that ended early: its refusal rendered, with
/// the refusal's headers over the body's own.
pub(crate) fn refusal(refusal: Refusal) -> Response<ResponseBody> {
    let (status, headers, body) = refusal.into_parts();
    let mut response = match body {
        RefusalBody::ErrorPage => error_page(status),
        RefusalBody::Empty => with_status(ResponseBody::empty(), status),
        RefusalBody::Html(bytes) => {
            let mut response = with_status(ResponseBody::full(bytes), status);
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
            response
        }
    };
    response.headers_mut().extend(headers);
    response
}

/// A route's fixed answer (a Gateway API rule with no usable backend, and
/// the like): the status alone.
pub(crate) fn fixed(code: u16) -> Response<ResponseBody> {
    with_status(
        ResponseBody::empty(),
        StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
    )
}

/// Logs the error, naming the request, at a level fitting its cause,
/// and builds the response.
pub(crate) fn error(
    error: ProxyError,
    client: SocketAddr,
    method: &Method,
    uri: &Uri,
) -> Response<ResponseBody> {
    let status = error.status();
    match &error {
        ProxyError::NoRoute => tracing::debug!(%client, %method, %uri, %status, "no route"),
        // Shedding load is routine under a burst and counted in
        // `edge_gateway_rejected_requests_total`; a line each would flood.
        ProxyError::Overloaded { .. } => {
            tracing::debug!(%client, %method, %uri, %status, error = %error, "request shed");
        }
        ProxyError::BadRequest(_)
        | ProxyError::UriTooLong
        | ProxyError::HeaderTooLarge
        | ProxyError::NotImplemented
        | ProxyError::MethodNotAllowed
        | ProxyError::BodyTooLarge(_)
        | ProxyError::ClientBodyTimeout
        | ProxyError::ClientClosed => {
            tracing::info!(%client, %method, %uri, %status, error = %error, "rejected request");
        }
        _ => tracing::warn!(%client, %method, %uri, %status, error = %error, "request failed"),
    }
    let mut response = error_page(status);
    if let ProxyError::Overloaded { .. } = error {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if error.closes_connection() {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A small HTML error page in nginx's shape, so that clients and tests that
/// look at bodies see what they saw before.
fn error_page(status: StatusCode) -> Response<ResponseBody> {
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n\
         <center><h1>{code} {reason}</h1></center>\r\n<hr><center>edge-gateway</center>\r\n\
         </body>\r\n</html>\r\n",
        code = status.as_u16()
    );
    let mut response = with_status(ResponseBody::full(Bytes::from(body)), status);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}

fn with_status(body: ResponseBody, status: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}
