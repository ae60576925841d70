//! The early-exit channel: what a phase returns when the request ends
//! without reaching a backend (a denial, a redirect, an error page, a CORS
//! preflight answer). Policies describe the answer; the proxy's `respond`
//! module is the one place that turns it into a response.
//!
//! A leaf module: it names nothing of the crate, so every layer can refuse.

use bytes::Bytes;
use http::header::{HeaderValue, LOCATION};
use http::{HeaderMap, StatusCode};

/// A response the gateway makes itself instead of proxying.
#[derive(Clone, Debug)]
pub struct Refusal {
    status: StatusCode,
    headers: HeaderMap,
    body: RefusalBody,
    rate_limit_exceeding: Option<u8>,
}

/// What a [`Refusal`]'s body is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefusalBody {
    /// The gateway's HTML error page for the status, in nginx's shape.
    ErrorPage,
    /// No body.
    Empty,
    /// These bytes, as `text/html`.
    Html(Bytes),
}

impl Refusal {
    /// The standard error page for `status`.
    pub fn error_page(status: StatusCode) -> Self {
        Self::new(status, RefusalBody::ErrorPage)
    }

    /// `status` with no body.
    pub fn empty(status: StatusCode) -> Self {
        Self::new(status, RefusalBody::Empty)
    }

    /// `status` with an HTML body of its own.
    pub fn html(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Self::new(status, RefusalBody::Html(body.into()))
    }

    /// A redirect to `location` with `status` (the error page as body, as
    /// nginx's `return 3xx`).
    pub fn redirect(status: StatusCode, location: HeaderValue) -> Self {
        let mut refusal = Self::error_page(status);
        refusal.headers.insert(LOCATION, location);
        refusal
    }

    fn new(status: StatusCode, body: RefusalBody) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body,
            rate_limit_exceeding: None,
        }
    }

    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers set on the answer (over the body's own).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, to add to.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// What the body is.
    pub fn body(&self) -> &RefusalBody {
        &self.body
    }

    /// Marks the answer as a global rate limit's, with the access log's
    /// `$global_rate_limit_exceeding` (`y`, or `c` for a remembered key).
    pub fn set_rate_limit_exceeding(&mut self, exceeding: u8) {
        self.rate_limit_exceeding = Some(exceeding);
    }

    /// `$global_rate_limit_exceeding` when a global rate limit refused.
    pub fn rate_limit_exceeding(&self) -> Option<u8> {
        self.rate_limit_exceeding
    }

    /// Its parts, for the renderer.
    pub fn into_parts(self) -> (StatusCode, HeaderMap, RefusalBody) {
        (self.status, self.headers, self.body)
    }
}
