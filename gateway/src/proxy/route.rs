//! Phases 1-3 of the request path: inspect the request (the ConfigMap's
//! block lists first), find its server and route in the table (Gateway API
//! conditions, client certificates), then nginx's rewrite phase
//! (redirects, `rewrite-target`). What it decides is either an answer (an
//! [`Early`] refusal) or the route to proxy on with what the later phases
//! need ([`Routing`]).

use std::borrow::Cow;

use http::header::{CONTENT_LENGTH, HOST, HeaderValue, TRANSFER_ENCODING};
use http::uri::Uri;
use http::{Request, StatusCode};
use hyper::body::Incoming;

use crate::ids::ServerId;
use crate::matches::RequestFacts;
use crate::policy;
use crate::policy::client_cert::{self, CertHeaders, Checked};
use crate::policy::forwarded::Client;
use crate::refusal::Refusal;
use crate::route_filter::redirect::RedirectRequest;
use crate::scheme::Scheme;
use crate::table::{RouteMatch, RouteTable};
use crate::tls::ClientTls;

use super::error::ProxyError;
use super::respond::Early;
use super::{ConnInfo, exchange, headers, inspect};

/// What routing decided.
enum Routed<'t> {
    /// Answer without proxying (a redirect, a refusal), for the route if
    /// one matched. Boxed: this is the rare case.
    Respond(Box<Refusal>, Option<crate::ids::RouteId>),
    /// Proxy on this route.
    Proxy {
        found: RouteMatch<'t>,
        target: Routing,
    },
}

/// What routing learned that the later phases need, owned so that the
/// request can be taken apart.
pub(super) struct Routing {
    /// The authority of an absolute-form target (the Host upstream).
    pub(super) authority: Option<HeaderValue>,
    /// The path and query `rewrite-target` made, if any.
    pub(super) rewritten: Option<Uri>,
    /// The normalised host, kept only for external authentication.
    pub(super) auth_host: Option<String>,
    /// The `ssl-client-*` headers, on a host that checks client
    /// certificates.
    pub(super) client_cert: Option<Box<CertHeaders>>,
    /// Whether this is `auth-tls-error-page`'s internal redirect: a GET
    /// without body to the error page's path.
    pub(super) error_page: bool,
}

/// Phases 1-3: refuse a blocked client, then route the request; the
/// route's id goes in the trace. On the way on, the request carries the
/// gateway's `ssl-client-*` headers (replacing the client's, for the auth
/// service and the upstream alike), and becomes the GET of nginx's
/// internal redirect for `auth-tls-error-page`.
pub(super) fn route<'t>(
    table: &'t RouteTable,
    conn: &ConnInfo,
    client: &Client,
    req: &mut Request<Incoming>,
    trace: &mut exchange::Trace,
) -> Result<(RouteMatch<'t>, Routing), Early> {
    if policy::block::refused(table.globals(), client.ip, req.headers()) {
        return Err(Refusal::error_page(StatusCode::FORBIDDEN).into());
    }
    match decide(table, conn, client, req, trace)? {
        Routed::Respond(refusal, id) => {
            trace.route = id;
            Err(Early::Refused(refusal))
        }
        Routed::Proxy { found, mut target } => {
            trace.route = Some(found.id);
            if let Some(headers) = target.client_cert.take() {
                headers.apply(req.headers_mut());
            }
            if target.error_page {
                internal_redirect(req);
            }
            Ok((found, target))
        }
    }
}

/// Turns the request into the GET (or HEAD) without body that nginx's
/// internal redirect to an error page makes.
fn internal_redirect(req: &mut Request<Incoming>) {
    if req.method() != http::Method::HEAD {
        *req.method_mut() = http::Method::GET;
    }
    req.headers_mut().remove(CONTENT_LENGTH);
    req.headers_mut().remove(TRANSFER_ENCODING);
}

/// Finds the request's server and route, and applies nginx's rewrite phase
/// in its order: the server's `from-to-www-redirect` and `app-root`, the
/// route's `permanent-redirect` / `temporal-redirect`, the HTTPS redirect,
/// then `rewrite-target`.
fn decide<'t>(
    table: &'t RouteTable,
    conn: &ConnInfo,
    client: &Client,
    req: &Request<Incoming>,
    trace: &mut exchange::Trace,
) -> Result<Routed<'t>, ProxyError> {
    let limits = &conn.settings;
    let target = inspect::inspect(req, limits.max_uri_bytes, limits.max_header_bytes)?;
    let settings = &conn.listener.settings;
    let facts = RequestFacts {
        scheme: settings.scheme,
        method: req.method(),
        headers: req.headers(),
        query: req.uri().query(),
    };
    let found = table.find_for(target.host.as_deref(), &target.path, &facts);
    trace.tls_host = found.server.tls;
    let scheme = settings.scheme.as_str();
    let code = table.globals().redirect_code;
    let route_id = found.route.map(|m| m.id);
    let respond = |status, location: Option<HeaderValue>| {
        location.map(|l| Routed::Respond(Box::new(Refusal::redirect(status, l)), route_id))
    };
    // Client certificates are judged before anything else over HTTPS (as
    // nginx does when it reads the request), after the redirects over HTTP.
    let https = settings.scheme == Scheme::Https;
    let mut client_cert = None;
    if https && let Some(rule) = found.server.client_auth {
        let misdirected = misdirected(conn.tls.as_ref(), table, found.server.id);
        match client_cert::check(rule, conn.tls.as_ref(), misdirected) {
            Checked::Pass(headers) => client_cert = Some(headers),
            Checked::Respond(response) => return Ok(Routed::Respond(response, route_id)),
            Checked::ErrorPage(path, headers) => {
                return error_page_route(table, target, path, headers);
            }
        }
    }
    if let Some(host) = found.server.redirect_to
        && let Some(done) = respond(
            code,
            policy::redirect::host_location(scheme, host, req.uri()),
        )
    {
        return Ok(done);
    }
    if let Some(root) = found.server.app_root
        && *target.path == *b"/"
    {
        let http_host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
        let location = http_host.and_then(|h| policy::redirect::app_root_location(scheme, h, root));
        if let Some(done) = respond(StatusCode::FOUND, location) {
            return Ok(done);
        }
    }
    let found_route = found.route.ok_or(ProxyError::NoRoute)?;
    let policy = &found_route.route.policy;
    if let Some(redirect) = &policy.redirect {
        return Ok(Routed::Respond(
            Box::new(Refusal::redirect(redirect.code, redirect.location.clone())),
            route_id,
        ));
    }
    if headers::plain_http(client, settings.scheme, req.headers())
        && let Some(host) = &target.host
        && let Some(done) = respond(
            code,
            policy.https_redirect(
                found_route.tls,
                headers::redirect_host(client, req.headers(), host),
                req.uri(),
            ),
        )
    {
        return Ok(done);
    }
    if !https && let Some(rule) = found.server.client_auth {
        match client_cert::check(rule, None, false) {
            Checked::Pass(headers) => client_cert = Some(headers),
            Checked::Respond(response) => return Ok(Routed::Respond(response, route_id)),
            Checked::ErrorPage(path, headers) => {
                return error_page_route(table, target, path, headers);
            }
        }
    }
    let filters = found_route.route.filters.as_deref();
    if let Some(redirect) = filters.and_then(|f| f.redirect.as_ref()) {
        let location = redirect.location(&RedirectRequest {
            scheme: settings.scheme,
            host: target.host.as_deref().unwrap_or(""),
            raw_path: req.uri().path(),
            normalised: &target.path,
            query: req.uri().query(),
        });
        let location = location.ok_or(ProxyError::BadRequest("no host to redirect to"))?;
        return Ok(Routed::Respond(
            Box::new(Refusal::redirect(redirect.status, location)),
            route_id,
        ));
    }
    let rewritten = match filters.and_then(|f| f.rewrite.as_ref()) {
        Some(modifier) => Some(modifier.target(&target.path, req.uri().query())),
        None => found_route.route.rewrite.as_ref().and_then(|rewrite| {
            let path = std::str::from_utf8(&target.path).ok()?;
            rewrite.apply(path, req.uri().path(), req.uri().query())
        }),
    };
    let rewritten = rewritten
        .map(|target| {
            target
                .parse::<Uri>()
                .map_err(|_| ProxyError::Rewrite(target))
        })
        .transpose()?;
    let wants_host = found_route
        .route
        .admission
        .as_ref()
        .is_some_and(|a| a.external_auth.is_some());
    Ok(Routed::Proxy {
        found: found_route,
        target: Routing {
            authority: target.authority,
            rewritten,
            auth_host: target.host.filter(|_| wants_host).map(Cow::into_owned),
            client_cert,
            error_page: false,
        },
    })
}

/// Whether a TLS connection's server name picks another server than the
/// request's Host does (nginx answers 421 when the Host's server checks
/// client certificates).
fn misdirected(tls: Option<&ClientTls>, table: &RouteTable, server: ServerId) -> bool {
    tls.and_then(ClientTls::sni)
        .is_some_and(|sni| table.server_id(Some(sni)) != server)
}

/// `auth-tls-error-page` as a path: nginx's internal redirect to it on the
/// same host, served by whichever route takes that path there.
fn error_page_route<'t>(
    table: &'t RouteTable,
    target: inspect::Target<'_>,
    path: &str,
    headers: Box<CertHeaders>,
) -> Result<Routed<'t>, ProxyError> {
    let found = table
        .find(target.host.as_deref(), path.as_bytes())
        .route
        .ok_or(ProxyError::NoRoute)?;
    Ok(Routed::Proxy {
        found,
        target: Routing {
            authority: target.authority,
            rewritten: Some(
                path.parse::<Uri>()
                    .map_err(|_| ProxyError::Rewrite(path.to_owned()))?,
            ),
            auth_host: target.host.map(Cow::into_owned),
            client_cert: Some(headers),
            error_page: true,
        },
    })
}
