//! One access log line, written on the worker that finished the request
//! straight into its buffer: integers, addresses and durations by hand
//! (no `core::fmt`), the time text made once per second ([`super::clock`]),
//! the route's values rendered when the table was published, and escaping
//! only for the values a client controls (a number, an address or a name
//! the API server validated never needs it).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use http::header::HeaderValue;
use http::{Method, Uri, Version};

use super::clock;
use super::template::{Escape, LogFormat, Piece, RouteVar, Var};
use crate::backend::BackendKey;
use crate::settings::Scheme;
use crate::table::RouteSource;

/// The request headers a format reads, captured when the request started,
/// in the order of [`LogFormat::headers`]; four inline cover the default
/// format.
pub(crate) type Captured = smallvec::SmallVec<[Option<HeaderValue>; 4]>;

/// One upstream attempt, for the `$upstream_*` variables.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attempt {
    pub(crate) addr: SocketAddr,
    pub(crate) status: Option<u16>,
    pub(crate) response_time: Option<Duration>,
    pub(crate) connect_time: Option<Duration>,
    pub(crate) header_time: Option<Duration>,
    pub(crate) length: Option<u64>,
}

/// The route a request took, for the route variables rendered on the fly
/// (a request that started on a table since replaced).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RouteInfo<'a> {
    pub(crate) source: Option<&'a RouteSource>,
    pub(crate) backend: Option<&'a BackendKey>,
    /// ingress-nginx's upstream name; `upstream-default-backend` when no
    /// rule matched.
    pub(crate) upstream_name: Option<&'a str>,
    pub(crate) path: Option<&'a str>,
    pub(crate) host: Option<&'a str>,
}

/// What one finished request tells its line.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    pub(crate) now: SystemTime,
    pub(crate) client: SocketAddr,
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) version: Version,
    pub(crate) headers: &'a [Option<HeaderValue>],
    pub(crate) sent_headers: &'a [Option<HeaderValue>],
    pub(crate) scheme: Scheme,
    pub(crate) server_port: u16,
    pub(crate) status: u16,
    pub(crate) body_bytes: u64,
    /// The response head's size, when the format reads `$bytes_sent`.
    pub(crate) head_bytes: u64,
    pub(crate) request_bytes: u64,
    pub(crate) request_time: Duration,
    /// The `X-Request-ID` sent upstream, if the request went there.
    pub(crate) request_id: Option<&'a HeaderValue>,
    pub(crate) alternative_upstream: Option<&'a str>,
    pub(crate) upstreams: &'a [Attempt],
    /// `$global_rate_limit_exceeding`: `n`, `y` or `c`.
    pub(crate) rate_limited: u8,
}

/// Appends `record`'s line (without the newline) to `out`. `route` holds
/// the route pieces rendered at publish time, when the request's table is
/// the one they were rendered for; otherwise they are rendered from `info`.
pub(crate) fn line(
    format: &LogFormat,
    record: &Record<'_>,
    route: Option<&[Box<[u8]>]>,
    info: &RouteInfo<'_>,
    out: &mut Vec<u8>,
) {
    let escape = format.escape();
    let mut route_piece = 0;
    for piece in format.pieces() {
        match piece {
            Piece::Text(text) => out.extend_from_slice(text),
            Piece::Route { var, dash } => {
                match route.and_then(|r| r.get(route_piece)) {
                    Some(rendered) => out.extend_from_slice(rendered),
                    None => route_value(*var, info, escape, *dash, out),
                }
                route_piece += 1;
            }
            Piece::Var { var, dash } => {
                if !value(format, var, record, escape, out) && *dash {
                    out.push(b'-');
                }
            }
        }
    }
}

/// A route piece as it is written for every request of the route.
pub(crate) fn route_value(
    var: RouteVar,
    info: &RouteInfo<'_>,
    escape: Escape,
    dash: bool,
    out: &mut Vec<u8>,
) {
    let value: Option<&str> = match var {
        RouteVar::ProxyUpstreamName => info.upstream_name,
        RouteVar::Namespace => info.source.map(|s| &*s.namespace),
        RouteVar::IngressName => info.source.map(|s| &*s.name),
        RouteVar::ServiceName => info.backend.map(|b| &*b.service),
        RouteVar::ServicePort => info.backend.map(|b| &*b.port),
        RouteVar::LocationPath => info.path,
        RouteVar::ServerName => Some(info.host.filter(|h| !h.is_empty()).unwrap_or("_")),
    };
    match value {
        Some(value) => escaped(value.as_bytes(), escape, out),
        None if dash => out.push(b'-'),
        None => {}
    }
}

/// Writes one variable; `false` when it has no value (nginx's "not found").
fn value(format: &LogFormat, var: &Var, r: &Record<'_>, escape: Escape, out: &mut Vec<u8>) -> bool {
    let special = format.special();
    let captured = |index: Option<usize>| {
        index
            .and_then(|i| r.headers.get(i))
            .and_then(Option::as_ref)
            .filter(|v| !v.is_empty())
    };
    match var {
        Var::RemoteAddr => ip(r.client.ip(), out),
        Var::RemotePort => integer(u64::from(r.client.port()), out),
        Var::RemoteUser => match captured(special.authorization).and_then(basic_user) {
            Some(user) => escaped(&user, escape, out),
            None => return false,
        },
        Var::TimeLocal => clock::with(r.now, |c| out.extend_from_slice(c.local())),
        Var::TimeIso8601 => clock::with(r.now, |c| out.extend_from_slice(c.iso8601())),
        Var::TimeRfc3339 => clock::with(r.now, |c| {
            out.extend_from_slice(c.rfc3339());
            out.push(b'.');
            three_digits(clock::millis(r.now), out);
            out.push(b'Z');
        }),
        Var::Msec => {
            let since = r
                .now
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            integer(since.as_secs(), out);
            out.push(b'.');
            three_digits(since.subsec_millis(), out);
        }
        Var::Request => {
            out.extend_from_slice(r.method.as_str().as_bytes());
            out.push(b' ');
            request_target(r, escape, out);
            out.push(b' ');
            out.extend_from_slice(protocol(r.version));
        }
        Var::RequestMethod => escaped(r.method.as_str().as_bytes(), escape, out),
        Var::RequestUri => escaped(path_and_query(r.uri), escape, out),
        Var::RequestPath => escaped(r.uri.path().as_bytes(), escape, out),
        Var::Uri => {
            let decoded = percent_encoding::percent_decode(r.uri.path().as_bytes());
            let decoded: Vec<u8> = decoded.collect();
            escaped(&decoded, escape, out);
        }
        Var::Args => match r.uri.query() {
            Some(query) => escaped(query.as_bytes(), escape, out),
            None => return false,
        },
        Var::IsArgs => {
            if r.uri.query().is_some() {
                out.push(b'?');
            }
        }
        Var::Arg(name) => {
            match r
                .uri
                .query()
                .and_then(|q| crate::balance::hash_key::arg(q.as_bytes(), name))
            {
                Some(value) => escaped(value, escape, out),
                None => return false,
            }
        }
        Var::Cookie(name) => {
            match captured(special.cookie)
                .and_then(|line| crate::cookies::cookie_value(line.as_bytes(), name))
            {
                Some(value) => escaped(value, escape, out),
                None => return false,
            }
        }
        Var::Header(index) => match r.headers.get(*index).and_then(Option::as_ref) {
            Some(value) => escaped(value.as_bytes(), escape, out),
            None => return false,
        },
        Var::SentHeader(index) => match r.sent_headers.get(*index).and_then(Option::as_ref) {
            Some(value) => escaped(value.as_bytes(), escape, out),
            None => return false,
        },
        Var::Host => {
            let host = r
                .uri
                .host()
                .map(str::as_bytes)
                .or_else(|| captured(special.host).map(HeaderValue::as_bytes))
                .map(strip_port);
            match host {
                Some(host) if !host.is_empty() => {
                    let lower: smallvec::SmallVec<[u8; 64]> =
                        host.iter().map(u8::to_ascii_lowercase).collect();
                    escaped(&lower, escape, out);
                }
                _ => out.push(b'_'),
            }
        }
        Var::ServerProtocol => out.extend_from_slice(protocol(r.version)),
        Var::Scheme => out.extend_from_slice(r.scheme.as_str().as_bytes()),
        Var::Https => {
            if r.scheme == Scheme::Https {
                out.extend_from_slice(b"on");
            }
        }
        Var::ServerPort => integer(u64::from(r.server_port), out),
        Var::Status => integer(u64::from(r.status), out),
        Var::BodyBytesSent => integer(r.body_bytes, out),
        Var::BytesSent => integer(r.body_bytes + r.head_bytes, out),
        Var::RequestLength => integer(r.request_bytes, out),
        Var::RequestTime => seconds(r.request_time, out),
        Var::Pipe => out.push(b'.'),
        Var::ReqId => {
            match r
                .request_id
                .or_else(|| captured(special.request_id))
                .filter(|id| !id.is_empty())
            {
                Some(id) => escaped(id.as_bytes(), escape, out),
                None => out.extend_from_slice(&fresh_request_id()),
            }
        }
        Var::RequestId => {
            // nginx's own id: the one generated for the upstream when the
            // client sent none, else a fresh one.
            match r
                .request_id
                .filter(|_| captured(special.request_id).is_none())
            {
                Some(id) => escaped(id.as_bytes(), escape, out),
                None => out.extend_from_slice(&fresh_request_id()),
            }
        }
        Var::UpstreamAddr => {
            return list(r.upstreams, out, |a, out| {
                socket(a.addr, out);
                true
            });
        }
        Var::UpstreamStatus => {
            return list(r.upstreams, out, |a, out| match a.status {
                Some(status) => {
                    integer(u64::from(status), out);
                    true
                }
                None => {
                    out.push(b'-');
                    true
                }
            });
        }
        Var::UpstreamResponseTime => {
            return list(r.upstreams, out, |a, out| timing(a.response_time, out));
        }
        Var::UpstreamConnectTime => {
            return list(r.upstreams, out, |a, out| timing(a.connect_time, out));
        }
        Var::UpstreamHeaderTime => {
            return list(r.upstreams, out, |a, out| timing(a.header_time, out));
        }
        Var::UpstreamResponseLength => {
            return list(r.upstreams, out, |a, out| {
                integer(a.length.unwrap_or(0), out);
                true
            });
        }
        Var::ProxyAlternativeUpstreamName => {
            if let Some(name) = r.alternative_upstream {
                escaped(name.as_bytes(), escape, out);
            }
        }
        Var::GlobalRateLimitExceeding => out.push(r.rate_limited),
        Var::ProxyProtocolAddr => return false,
        Var::Hostname => escaped(clock::hostname().as_bytes(), escape, out),
        Var::Pid => integer(u64::from(std::process::id()), out),
    }
    true
}

/// The request target as the request line had it: the absolute form of an
/// HTTP/1 proxy request, else the path and query.
fn request_target(r: &Record<'_>, escape: Escape, out: &mut Vec<u8>) {
    if r.uri.scheme().is_some() && r.version != Version::HTTP_2 {
        escaped(r.uri.to_string().as_bytes(), escape, out);
    } else {
        escaped(path_and_query(r.uri), escape, out);
    }
}

fn path_and_query(uri: &Uri) -> &[u8] {
    uri.path_and_query()
        .map_or(b"/", |pq| pq.as_str().as_bytes())
}

fn protocol(version: Version) -> &'static [u8] {
    match version {
        Version::HTTP_09 => b"HTTP/0.9",
        Version::HTTP_10 => b"HTTP/1.0",
        Version::HTTP_2 => b"HTTP/2.0",
        Version::HTTP_3 => b"HTTP/3.0",
        _ => b"HTTP/1.1",
    }
}

/// A host without its port (an IPv6 literal keeps its brackets).
fn strip_port(host: &[u8]) -> &[u8] {
    let end = match host.first() {
        Some(b'[') => host.iter().position(|b| *b == b']').map(|e| e + 1),
        _ => host.iter().position(|b| *b == b':'),
    };
    end.map_or(host, |end| &host[..end])
}

/// The user of a `Basic` `Authorization` header, as nginx's `$remote_user`.
fn basic_user(value: &HeaderValue) -> Option<Vec<u8>> {
    let bytes = value.as_bytes();
    let scheme = bytes.get(..6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let encoded = bytes[6..].trim_ascii();
    // Bounded: a header value is at most a header buffer long.
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let user_end = decoded.iter().position(|b| *b == b':')?;
    let mut user = decoded;
    user.truncate(user_end);
    Some(user)
}

/// nginx's multi-valued upstream variables: one value per attempt, joined
/// by `, `; not found without an attempt.
fn list(
    attempts: &[Attempt],
    out: &mut Vec<u8>,
    mut each: impl FnMut(&Attempt, &mut Vec<u8>) -> bool,
) -> bool {
    if attempts.is_empty() {
        return false;
    }
    for (i, attempt) in attempts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        if !each(attempt, out) {
            out.push(b'-');
        }
    }
    true
}

fn timing(value: Option<Duration>, out: &mut Vec<u8>) -> bool {
    match value {
        Some(d) => {
            seconds(d, out);
            true
        }
        None => false,
    }
}

/// `12.345`: seconds with milliseconds, as nginx's `%T.%03M`.
pub(crate) fn seconds(d: Duration, out: &mut Vec<u8>) {
    let millis = d.as_millis();
    integer(u64::try_from(millis / 1000).unwrap_or(u64::MAX), out);
    out.push(b'.');
    three_digits((millis % 1000) as u32, out);
}

fn three_digits(n: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&[
        b'0' + (n / 100 % 10) as u8,
        b'0' + (n / 10 % 10) as u8,
        b'0' + (n % 10) as u8,
    ]);
}

pub(crate) fn integer(n: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// An address as nginx writes it: IPv4 dotted, IPv6 in its canonical text
/// (the rare case, through `core::fmt`).
pub(crate) fn ip(ip: IpAddr, out: &mut Vec<u8>) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                integer(u64::from(octet), out);
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

/// `ip:port`, `[ip6]:port` for IPv6.
fn socket(addr: SocketAddr, out: &mut Vec<u8>) {
    match addr.ip().to_canonical() {
        IpAddr::V4(_) => ip(addr.ip(), out),
        IpAddr::V6(_) => {
            out.push(b'[');
            ip(addr.ip(), out);
            out.push(b']');
        }
    }
    out.push(b':');
    integer(u64::from(addr.port()), out);
}

/// A fresh `$request_id`: 32 hexadecimal digits.
fn fresh_request_id() -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0_u8; 32];
    let bits = fastrand::u128(..);
    for (i, digit) in id.iter_mut().enumerate() {
        *digit = HEX[((bits >> (i * 4)) & 0xf) as usize];
    }
    id
}

/// Writes `value` escaped as the format says.
pub(crate) fn escaped(value: &[u8], escape: Escape, out: &mut Vec<u8>) {
    match escape {
        Escape::None => out.extend_from_slice(value),
        Escape::Default => {
            if !needs_escape(value, true) {
                out.extend_from_slice(value);
                return;
            }
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            for &b in value {
                if escape_default(b) {
                    out.extend_from_slice(&[
                        b'\\',
                        b'x',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 0xf)],
                    ]);
                } else {
                    out.push(b);
                }
            }
        }
        Escape::Json => {
            if !needs_escape(value, false) {
                out.extend_from_slice(value);
                return;
            }
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for &b in value {
                match b {
                    b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    0x08 => out.extend_from_slice(b"\\b"),
                    0x0c => out.extend_from_slice(b"\\f"),
                    b if b < 0x20 => out.extend_from_slice(&[
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 0xf)],
                    ]),
                    b => out.push(b),
                }
            }
        }
    }
}

/// nginx's `ngx_http_log_escape` table: control bytes, `"`, `\`, and
/// everything from 0x7F.
fn escape_default(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b >= 0x7f
}

/// Whether any byte of `value` needs escaping: a control byte, `"` or `\\`,
/// and with `high` (nginx's default escaping) DEL and every byte from 0x80.
/// Most values need none, so the check runs eight bytes at a time.
fn needs_escape(value: &[u8], high: bool) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let splat = |b: u8| u64::from_ne_bytes([b; 8]);
    // "Has a byte below n" (n <= 128; n = 1 is "has a zero byte"), from
    // Bit Twiddling Hacks: exact as a yes/no answer.
    let below = |x: u64, n: u8| x.wrapping_sub(splat(n)) & !x & HIGHS != 0;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let mut chunks = value.chunks_exact(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let x = u64::from_ne_bytes(bytes);
        let flagged = below(x, 0x20)
            || zero_byte(x ^ splat(b'"'))
            || zero_byte(x ^ splat(b'\\'))
            || (high && (x & HIGHS != 0 || zero_byte(x ^ splat(0x7f))));
        if flagged {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| match high {
        true => escape_default(b),
        false => b < 0x20 || b == b'"' || b == b'\\',
    })
}

#[cfg(test)]
mod tests;
