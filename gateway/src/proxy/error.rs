//! Everything that can end a request early with an error, and the status
//! map: 4xx for what the client did, 5xx for what the upstream (or its
//! absence) did. The `respond` module turns an error into the response.

use http::StatusCode;

use super::body::RequestBodyError;
use crate::backend::balance::Refused;
use crate::upstream::ConnectError;

/// nginx's non-standard status for a client that closed the connection
/// before its response: nobody reads it, but logs and metrics do.
pub(crate) const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Why a request was not proxied.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Malformed or ambiguous request (framing, Host, path).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The request target is longer than the request line limit.
    #[error("request target too long")]
    UriTooLong,
    /// A header line is longer than one `large-client-header-buffers` buffer.
    #[error("request header line too long")]
    HeaderTooLarge,
    /// A transfer coding other than `chunked`.
    #[error("unsupported transfer coding")]
    NotImplemented,
    /// A method a reverse proxy does not serve (CONNECT).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// No route matches the host and path.
    #[error("no route")]
    NoRoute,
    /// The body is larger than `proxy-body-size`.
    #[error("request body larger than {0} bytes")]
    BodyTooLarge(u64),
    /// The client stalled sending its body.
    #[error("client body timeout")]
    ClientBodyTimeout,
    /// The client went away before the response started.
    #[error("client closed the connection")]
    ClientClosed,
    /// The route's Service has no ready endpoint.
    #[error("no ready endpoint")]
    NoEndpoints,
    /// The route's Service (or its port) does not exist.
    #[error("service not found")]
    ServiceNotFound,
    /// No connection could be made to any endpoint tried.
    #[error("upstream connect: {0}")]
    Connect(#[source] ConnectError),
    /// The upstream failed before sending a response head.
    #[error("upstream: {0}")]
    Upstream(#[source] hyper::Error),
    /// The upstream did not answer within `proxy-read-timeout` (or stalled
    /// reading the body for `proxy-send-timeout`).
    #[error("upstream timed out")]
    UpstreamTimeout,
    /// No first response byte within `proxy-first-byte-timeout`.
    #[error("no first byte from upstream in time")]
    FirstByteTimeout,
    /// `request-deadline` passed before the response started.
    #[error("request deadline passed")]
    DeadlineExceeded,
    /// `rewrite-target` made a request target that does not parse.
    #[error("rewrite-target made an invalid request target {0:?}")]
    Rewrite(String),
    /// The backend's queue or hold refused the request (full, or waited
    /// too long); the client is told when to retry.
    #[error("backend overloaded: {why}")]
    Overloaded {
        /// 503, or the backend's `queue-overflow-status`.
        status: StatusCode,
        /// What was full or over.
        why: Refused,
    },
}

impl ProxyError {
    /// The error for a request the balancer could not place; `overflow` is
    /// the backend's status for a full or slow queue.
    pub(crate) fn refused(why: Refused, overflow: StatusCode) -> Self {
        match why {
            Refused::NoEndpoints | Refused::HoldTimeout => Self::NoEndpoints,
            Refused::ServiceNotFound => Self::ServiceNotFound,
            Refused::Deadline => Self::DeadlineExceeded,
            Refused::QueueFull | Refused::QueueTimeout => Self::Overloaded {
                status: overflow,
                why,
            },
            Refused::PendingFull => Self::Overloaded {
                status: StatusCode::SERVICE_UNAVAILABLE,
                why,
            },
            Refused::Shed => Self::Overloaded {
                status: StatusCode::TOO_MANY_REQUESTS,
                why,
            },
        }
    }
}

impl From<&RequestBodyError> for ProxyError {
    fn from(error: &RequestBodyError) -> Self {
        match error {
            RequestBodyError::TooLarge(limit) => Self::BodyTooLarge(*limit),
            RequestBodyError::Timeout(_) => Self::ClientBodyTimeout,
            RequestBodyError::Client(error) => Self::client_body(error),
        }
    }
}

impl From<RequestBodyError> for ProxyError {
    fn from(error: RequestBodyError) -> Self {
        Self::from(&error)
    }
}

impl ProxyError {
    /// A failure reading the client's body: malformed framing (a bad
    /// chunk size, a chunk that does not end where it says) is the
    /// client's error, 400 and the connection closed; anything else means
    /// the client went away (499, recorded, never read by anyone).
    pub(crate) fn client_body(error: &hyper::Error) -> Self {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<std::io::Error>()
                && matches!(
                    io.kind(),
                    std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
                )
            {
                return Self::BadRequest("malformed request body");
            }
            source = cause.source();
        }
        Self::ClientClosed
    }
}

impl ProxyError {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::HeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ClientBodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::ClientClosed => {
                StatusCode::from_u16(CLIENT_CLOSED_REQUEST).unwrap_or(StatusCode::BAD_REQUEST)
            }
            Self::NoEndpoints | Self::ServiceNotFound => StatusCode::SERVICE_UNAVAILABLE,
            Self::Connect(ConnectError::Timeout(_))
            | Self::UpstreamTimeout
            | Self::FirstByteTimeout
            | Self::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Self::Overloaded { status, .. } => *status,
            Self::Connect(_) | Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Rewrite(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the client connection should close after this response:
    /// after a framing error or an unread body the stream cannot be trusted.
    pub(super) fn closes_connection(&self) -> bool {
        matches!(
            self,
            Self::BadRequest(_)
                | Self::UriTooLong
                | Self::HeaderTooLarge
                | Self::NotImplemented
                | Self::BodyTooLarge(_)
                | Self::ClientBodyTimeout
                | Self::ClientClosed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::respond;
    use http::header::{CONNECTION, CONTENT_TYPE, RETRY_AFTER};
    use http::{Method, Uri};
    use std::net::SocketAddr;
    use std::time::Duration;

    #[test]
    fn statuses_follow_ingress_nginx() {
        let cases = [
            (ProxyError::NoRoute, 404),
            (ProxyError::BodyTooLarge(1), 413),
            (ProxyError::NoEndpoints, 503),
            (ProxyError::ServiceNotFound, 503),
            (
                ProxyError::Connect(ConnectError::Timeout(Duration::from_secs(5))),
                504,
            ),
            (
                ProxyError::Connect(ConnectError::Io(
                    std::io::ErrorKind::ConnectionRefused.into(),
                )),
                502,
            ),
            (ProxyError::UpstreamTimeout, 504),
            (ProxyError::FirstByteTimeout, 504),
            (ProxyError::DeadlineExceeded, 504),
            (
                ProxyError::refused(Refused::HoldTimeout, StatusCode::TOO_MANY_REQUESTS),
                503,
            ),
            (
                ProxyError::refused(Refused::PendingFull, StatusCode::TOO_MANY_REQUESTS),
                503,
            ),
            (
                ProxyError::refused(Refused::QueueFull, StatusCode::TOO_MANY_REQUESTS),
                429,
            ),
            (
                ProxyError::refused(Refused::QueueTimeout, StatusCode::SERVICE_UNAVAILABLE),
                503,
            ),
            (ProxyError::ClientClosed, 499),
            (ProxyError::NotImplemented, 501),
            (ProxyError::Rewrite("/\\".to_owned()), 500),
        ];
        for (error, status) in cases {
            assert_eq!(error.status().as_u16(), status, "{error}");
        }
    }

    #[test]
    fn framing_errors_close_the_connection() {
        let client = SocketAddr::from(([127, 0, 0, 1], 1));
        let (get, uri) = (Method::GET, Uri::from_static("/"));
        let response = respond::error(ProxyError::BadRequest("x"), client, &get, &uri);
        assert_eq!(response.headers()[CONNECTION], "close");
        let response = respond::error(ProxyError::NoRoute, client, &get, &uri);
        assert!(response.headers().get(CONNECTION).is_none());
        assert!(response.headers().get(RETRY_AFTER).is_none());
        let full = ProxyError::refused(Refused::QueueFull, StatusCode::SERVICE_UNAVAILABLE);
        let response = respond::error(full, client, &get, &uri);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        assert_eq!(response.headers()[CONTENT_TYPE], "text/html");
    }
}
