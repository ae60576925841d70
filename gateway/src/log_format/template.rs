//! `log-format-upstream`: an nginx `log_format` string compiled once, when
//! the table is built, into literal text and typed variables
//! ([`LogFormat`]). A request's line is never produced by evaluating text:
//! each piece is either copied or rendered from what the request recorded
//! (see the access log's renderer).
//!
//! The variables are nginx's and ingress-nginx's (`$remote_addr`,
//! `$request`, `$status`, `$upstream_addr`, `$req_id`,
//! `$proxy_upstream_name`, `$http_<name>`, ...; [`VARIABLES`] lists them).
//! A variable nginx knows but this gateway cannot produce, or one nginx
//! does not know, is refused with the variable's name, as `nginx -t` would
//! refuse an unknown one; the format then stays the default.

use http::HeaderName;
use http::header::{AUTHORIZATION, COOKIE, HOST, REFERER, USER_AGENT};

/// `X-Request-ID`, which `$req_id` reads.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest format accepted.
const MAX_LEN: usize = 8 * 1024;

/// Most `$http_*` / `$sent_http_*` / `$cookie_*` variables in one format.
const MAX_CAPTURED: usize = 32;

/// ingress-nginx's default `log-format-upstream` (`upstreaminfo`).
pub const UPSTREAMINFO: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id";

/// The JSON line `--access-log json` writes: one object, every value a
/// string, escaped as JSON.
const JSON_LINE: &str = concat!(
    "{\"time\":\"$time_rfc3339\",\"remote_addr\":\"$remote_addr\",",
    "\"request_id\":\"$req_id\",\"method\":\"$request_method\",",
    "\"host\":\"$http_host\",\"path\":\"$request_path\",",
    "\"request\":\"$request_uri\",\"request_proto\":\"$server_protocol\",",
    "\"status\":\"$status\",\"bytes_sent\":\"$body_bytes_sent\",",
    "\"request_length\":\"$request_length\",\"request_time\":\"$request_time\",",
    "\"http_referer\":\"$http_referer\",\"http_user_agent\":\"$http_user_agent\",",
    "\"namespace\":\"$namespace\",\"ingress\":\"$ingress_name\",",
    "\"service\":\"$service_name\",\"proxy_upstream_name\":\"$proxy_upstream_name\",",
    "\"proxy_alternative_upstream_name\":\"$proxy_alternative_upstream_name\",",
    "\"upstream_addr\":\"$upstream_addr\",\"upstream_status\":\"$upstream_status\",",
    "\"upstream_response_time\":\"$upstream_response_time\"}"
);

/// How variable values are escaped (`log-format-escape-json`,
/// `log-format-escape-none`; nginx's `escape=` parameter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Escape {
    /// nginx's default: `"`, `\`, bytes below 0x20 and from 0x7F as
    /// `\xHH`; an absent variable is `-`.
    #[default]
    Default,
    /// JSON string escaping; an absent variable is empty.
    Json,
    /// Nothing escaped; an absent variable is empty.
    None,
}

/// A compiled access log format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFormat {
    pieces: Box<[Piece]>,
    escape: Escape,
    /// The request headers its `$http_*` variables read, captured when a
    /// request starts (indexed by [`Var::Header`]).
    headers: Box<[HeaderName]>,
    /// The response headers its `$sent_http_*` variables read.
    sent_headers: Box<[HeaderName]>,
    /// How many [`Piece::Route`] pieces it has.
    route_pieces: usize,
    /// Whether it reads `$bytes_sent` (the response head's size).
    bytes_sent: bool,
    /// Where in [`LogFormat::headers`] the variables that read a header
    /// of their own find it.
    special: Special,
}

/// The captured headers some variables read, as indexes into the format's
/// header list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Special {
    /// `$remote_user`: `Authorization`.
    pub(crate) authorization: Option<usize>,
    /// `$cookie_*`: `Cookie`.
    pub(crate) cookie: Option<usize>,
    /// `$host`: `Host`.
    pub(crate) host: Option<usize>,
    /// `$req_id`, `$request_id`: `X-Request-ID`.
    pub(crate) request_id: Option<usize>,
}

/// One piece of a format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Text written as it is.
    Text(Box<[u8]>),
    /// A value of the request; `dash`: written as `-` when absent.
    Var { var: Var, dash: bool },
    /// A value of the route, the same for all its requests: rendered when
    /// the table is published (see `RoutePieces` in the access log).
    Route { var: RouteVar, dash: bool },
}

/// A value of the route a request took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RouteVar {
    /// `$proxy_upstream_name`: `<namespace>-<service>-<port>`.
    ProxyUpstreamName,
    /// `$namespace`: the Ingress's namespace.
    Namespace,
    /// `$ingress_name`.
    IngressName,
    /// `$service_name`.
    ServiceName,
    /// `$service_port`.
    ServicePort,
    /// `$location_path`: the Ingress path.
    LocationPath,
    /// `$server_name`: the rule's host (`_` for the default server).
    ServerName,
}

/// A value of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Var {
    RemoteAddr,
    RemotePort,
    RemoteUser,
    TimeLocal,
    TimeIso8601,
    /// RFC 3339 UTC with milliseconds (the JSON line's `time`).
    TimeRfc3339,
    Msec,
    Request,
    RequestMethod,
    RequestUri,
    /// The path without the query, as sent (the JSON line's `path`).
    RequestPath,
    Uri,
    Args,
    IsArgs,
    Arg(Box<[u8]>),
    Cookie(Box<[u8]>),
    /// `$http_<name>`: index into [`LogFormat::headers`].
    Header(usize),
    /// `$sent_http_<name>`: index into [`LogFormat::sent_headers`].
    SentHeader(usize),
    Host,
    ServerProtocol,
    Scheme,
    Https,
    ServerPort,
    Status,
    BodyBytesSent,
    BytesSent,
    RequestLength,
    RequestTime,
    Pipe,
    ReqId,
    RequestId,
    UpstreamAddr,
    UpstreamStatus,
    UpstreamResponseTime,
    UpstreamConnectTime,
    UpstreamHeaderTime,
    UpstreamResponseLength,
    ProxyAlternativeUpstreamName,
    GlobalRateLimitExceeding,
    ProxyProtocolAddr,
    Hostname,
    Pid,
}

/// Why a format was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Longer than the limit.
    #[error("is longer than {MAX_LEN} bytes")]
    TooLong,
    /// A control character (nginx's format is one line).
    #[error("contains a control character")]
    Control,
    /// `$` without a name, or `${` without `}`.
    #[error("has a `$` without a variable name")]
    Dangling,
    /// Variables nginx does not know.
    #[error("uses unknown variables: {}", .0.join(", "))]
    Unknown(Vec<String>),
    /// Variables nginx knows that edge-gateway does not produce.
    #[error("uses variables edge-gateway does not provide: {}", .0.join(", "))]
    Unsupported(Vec<String>),
    /// Too many header and cookie variables.
    #[error("reads more than {MAX_CAPTURED} headers")]
    TooManyHeaders,
}

/// The variables a format may use, for messages and docs.
pub const VARIABLES: &[&str] = &[
    "$remote_addr",
    "$remote_port",
    "$remote_user",
    "$time_local",
    "$time_iso8601",
    "$msec",
    "$request",
    "$request_method",
    "$request_uri",
    "$uri",
    "$document_uri",
    "$args",
    "$query_string",
    "$is_args",
    "$arg_<name>",
    "$cookie_<name>",
    "$http_<name>",
    "$sent_http_<name>",
    "$host",
    "$server_protocol",
    "$scheme",
    "$https",
    "$server_port",
    "$server_name",
    "$status",
    "$body_bytes_sent",
    "$bytes_sent",
    "$request_length",
    "$request_time",
    "$pipe",
    "$req_id",
    "$request_id",
    "$upstream_addr",
    "$upstream_status",
    "$upstream_response_time",
    "$upstream_connect_time",
    "$upstream_header_time",
    "$upstream_response_length",
    "$proxy_upstream_name",
    "$proxy_alternative_upstream_name",
    "$namespace",
    "$ingress_name",
    "$service_name",
    "$service_port",
    "$location_path",
    "$global_rate_limit_exceeding",
    "$proxy_protocol_addr",
    "$hostname",
    "$pid",
];

/// nginx variables this gateway does not produce: refused by name.
const NOT_PROVIDED: &[&str] = &[
    "binary_remote_addr",
    "connection",
    "connection_requests",
    "connection_time",
    "content_length",
    "content_type",
    "document_root",
    "limit_rate",
    "nginx_version",
    "realpath_root",
    "request_body",
    "request_body_file",
    "request_completion",
    "request_filename",
    "server_addr",
    "tcpinfo_rtt",
    "upstream_bytes_received",
    "upstream_bytes_sent",
    "upstream_cache_status",
    "upstream_queue_time",
    "upstream_trailer_",
    "ssl_protocol",
    "ssl_cipher",
    "ssl_client_s_dn",
    "ssl_client_verify",
    "ssl_server_name",
    "http2",
    "proxy_host",
    "proxy_port",
    "proxy_add_x_forwarded_for",
    "realip_remote_addr",
    "geoip_country_code",
];

impl LogFormat {
    /// ingress-nginx's default format (`upstreaminfo`) with nginx's default
    /// escaping.
    pub fn upstreaminfo() -> Self {
        Self::parse(UPSTREAMINFO, Escape::Default).unwrap_or_else(|_| Self::empty())
    }

    /// The JSON line of `--access-log json`.
    pub fn json_line() -> Self {
        let mut format =
            Self::compile(JSON_LINE, Escape::Json, true).unwrap_or_else(|_| Self::empty());
        // Absent values the JSON line has always written as `-`.
        let dashed = [HOST, REFERER, USER_AGENT];
        let headers = format.headers.clone();
        for piece in format.pieces.iter_mut() {
            if let Piece::Var { var, dash } = piece {
                *dash = match var {
                    Var::ReqId | Var::UpstreamResponseTime => true,
                    Var::Header(i) => headers.get(*i).is_some_and(|h| dashed.contains(h)),
                    _ => false,
                };
            }
        }
        format
    }

    /// Compiles an nginx `log_format` string.
    pub fn parse(format: &str, escape: Escape) -> Result<Self, TemplateError> {
        Self::compile(format, escape, false)
    }

    fn empty() -> Self {
        Self {
            pieces: Box::new([]),
            escape: Escape::Default,
            headers: Box::new([]),
            sent_headers: Box::new([]),
            route_pieces: 0,
            bytes_sent: false,
            special: Special::default(),
        }
    }

    fn compile(format: &str, escape: Escape, internal: bool) -> Result<Self, TemplateError> {
        if format.len() > MAX_LEN {
            return Err(TemplateError::TooLong);
        }
        if format.bytes().any(|b| b.is_ascii_control()) {
            return Err(TemplateError::Control);
        }
        let mut pieces = Vec::new();
        let mut headers = Vec::new();
        let mut sent_headers = Vec::new();
        let mut unknown = Vec::new();
        let mut unsupported = Vec::new();
        let mut text = Vec::new();
        let mut rest = format;
        while !rest.is_empty() {
            let Some(dollar) = rest.find('$') else {
                text.extend_from_slice(rest.as_bytes());
                break;
            };
            text.extend_from_slice(&rest.as_bytes()[..dollar]);
            let after = &rest[dollar + 1..];
            let (name, next) = match after.strip_prefix('{') {
                Some(braced) => {
                    let end = braced.find('}').ok_or(TemplateError::Dangling)?;
                    (&braced[..end], &braced[end + 1..])
                }
                None => {
                    let end = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            if name.is_empty() {
                return Err(TemplateError::Dangling);
            }
            match variable(name, &mut headers, &mut sent_headers, internal) {
                Ok(piece) => {
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text).into()));
                    }
                    pieces.push(piece);
                }
                Err(Refused::Unknown) => unknown.push(format!("${name}")),
                Err(Refused::Unsupported) => unsupported.push(format!("${name}")),
            }
            rest = next;
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text.into()));
        }
        if !unknown.is_empty() {
            return Err(TemplateError::Unknown(unknown));
        }
        if !unsupported.is_empty() {
            return Err(TemplateError::Unsupported(unsupported));
        }
        if headers.len() + sent_headers.len() > MAX_CAPTURED {
            return Err(TemplateError::TooManyHeaders);
        }
        let dash = escape == Escape::Default;
        let mut special = Special::default();
        for piece in &mut pieces {
            match piece {
                Piece::Var { var, dash: d } => {
                    *d = dash;
                    let (slot, name) = match var {
                        Var::RemoteUser => (&mut special.authorization, AUTHORIZATION),
                        Var::Cookie(_) => (&mut special.cookie, COOKIE),
                        Var::Host => (&mut special.host, HOST),
                        Var::ReqId | Var::RequestId => (&mut special.request_id, X_REQUEST_ID),
                        _ => continue,
                    };
                    *slot = Some(index_of(&mut headers, name));
                }
                Piece::Route { dash: d, .. } => *d = dash,
                Piece::Text(_) => {}
            }
        }
        let route_pieces = pieces
            .iter()
            .filter(|p| matches!(p, Piece::Route { .. }))
            .count();
        let bytes_sent = pieces.iter().any(|p| {
            matches!(
                p,
                Piece::Var {
                    var: Var::BytesSent,
                    ..
                }
            )
        });
        Ok(Self {
            pieces: pieces.into(),
            escape,
            headers: headers.into(),
            sent_headers: sent_headers.into(),
            route_pieces,
            bytes_sent,
            special,
        })
    }

    /// The pieces, in order.
    pub(crate) fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// How values are escaped.
    pub fn escape(&self) -> Escape {
        self.escape
    }

    /// The request headers to capture when a request starts.
    pub(crate) fn headers(&self) -> &[HeaderName] {
        &self.headers
    }

    /// The response headers to capture when the response starts.
    pub(crate) fn sent_headers(&self) -> &[HeaderName] {
        &self.sent_headers
    }

    /// How many route pieces a route's rendering holds.
    pub(crate) fn route_pieces(&self) -> usize {
        self.route_pieces
    }

    /// Whether lines need the response head's size (`$bytes_sent`).
    pub(crate) fn reads_bytes_sent(&self) -> bool {
        self.bytes_sent
    }

    /// Where the headers some variables read are captured.
    pub(crate) fn special(&self) -> Special {
        self.special
    }
}

impl Default for LogFormat {
    fn default() -> Self {
        Self::upstreaminfo()
    }
}

/// Why one variable was refused.
enum Refused {
    Unknown,
    Unsupported,
}

/// The index of `name` in `list`, added if new.
fn index_of(list: &mut Vec<HeaderName>, name: HeaderName) -> usize {
    match list.iter().position(|n| *n == name) {
        Some(i) => i,
        None => {
            list.push(name);
            list.len() - 1
        }
    }
}

fn variable(
    name: &str,
    headers: &mut Vec<HeaderName>,
    sent_headers: &mut Vec<HeaderName>,
    internal: bool,
) -> Result<Piece, Refused> {
    let valid = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(Refused::Unknown);
    }
    let route = |var| Ok(Piece::Route { var, dash: true });
    let var = match name {
        "remote_addr" => Var::RemoteAddr,
        "remote_port" => Var::RemotePort,
        "remote_user" => Var::RemoteUser,
        "time_local" => Var::TimeLocal,
        "time_iso8601" => Var::TimeIso8601,
        "msec" => Var::Msec,
        "request" => Var::Request,
        "request_method" => Var::RequestMethod,
        "request_uri" => Var::RequestUri,
        "uri" | "document_uri" => Var::Uri,
        "args" | "query_string" => Var::Args,
        "is_args" => Var::IsArgs,
        "host" => Var::Host,
        "server_protocol" => Var::ServerProtocol,
        "scheme" => Var::Scheme,
        "https" => Var::Https,
        "server_port" => Var::ServerPort,
        "status" => Var::Status,
        "body_bytes_sent" => Var::BodyBytesSent,
        "bytes_sent" => Var::BytesSent,
        "request_length" => Var::RequestLength,
        "request_time" => Var::RequestTime,
        "pipe" => Var::Pipe,
        "req_id" => Var::ReqId,
        "request_id" => Var::RequestId,
        "upstream_addr" => Var::UpstreamAddr,
        "upstream_status" => Var::UpstreamStatus,
        "upstream_response_time" => Var::UpstreamResponseTime,
        "upstream_connect_time" => Var::UpstreamConnectTime,
        "upstream_header_time" => Var::UpstreamHeaderTime,
        "upstream_response_length" => Var::UpstreamResponseLength,
        "proxy_alternative_upstream_name" => Var::ProxyAlternativeUpstreamName,
        "global_rate_limit_exceeding" => Var::GlobalRateLimitExceeding,
        "proxy_protocol_addr" => Var::ProxyProtocolAddr,
        "hostname" => Var::Hostname,
        "pid" => Var::Pid,
        "time_rfc3339" if internal => Var::TimeRfc3339,
        "request_path" if internal => Var::RequestPath,
        "proxy_upstream_name" => return route(RouteVar::ProxyUpstreamName),
        "namespace" => return route(RouteVar::Namespace),
        "ingress_name" => return route(RouteVar::IngressName),
        "service_name" => return route(RouteVar::ServiceName),
        "service_port" => return route(RouteVar::ServicePort),
        "location_path" => return route(RouteVar::LocationPath),
        "server_name" => return route(RouteVar::ServerName),
        _ => return prefixed(name, headers, sent_headers),
    };
    Ok(Piece::Var { var, dash: true })
}

/// `$http_*`, `$sent_http_*`, `$cookie_*`, `$arg_*`, and the names nginx
/// knows that are not provided here.
fn prefixed(
    name: &str,
    headers: &mut Vec<HeaderName>,
    sent_headers: &mut Vec<HeaderName>,
) -> Result<Piece, Refused> {
    let header = |rest: &str| {
        HeaderName::from_bytes(rest.replace('_', "-").to_ascii_lowercase().as_bytes())
            .map_err(|_| Refused::Unknown)
    };
    let var = if let Some(rest) = name.strip_prefix("sent_http_").filter(|r| !r.is_empty()) {
        Var::SentHeader(index_of(sent_headers, header(rest)?))
    } else if let Some(rest) = name.strip_prefix("http_").filter(|r| !r.is_empty()) {
        Var::Header(index_of(headers, header(rest)?))
    } else if let Some(rest) = name.strip_prefix("cookie_").filter(|r| !r.is_empty()) {
        Var::Cookie(rest.as_bytes().into())
    } else if let Some(rest) = name.strip_prefix("arg_").filter(|r| !r.is_empty()) {
        Var::Arg(rest.as_bytes().into())
    } else if NOT_PROVIDED
        .iter()
        .any(|n| name == *n || (n.ends_with('_') && name.starts_with(n)))
        || name.starts_with("ssl_")
        || name.starts_with("upstream_")
        || name.starts_with("sent_trailer_")
        || name.starts_with("jwt_")
        || name.starts_with("geoip")
    {
        return Err(Refused::Unsupported);
    } else {
        return Err(Refused::Unknown);
    };
    Ok(Piece::Var { var, dash: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(format: &LogFormat) -> Vec<String> {
        format
            .pieces()
            .iter()
            .filter_map(|p| match p {
                Piece::Text(_) => None,
                Piece::Var { var, .. } => Some(format!("{var:?}")),
                Piece::Route { var, .. } => Some(format!("{var:?}")),
            })
            .collect()
    }

    #[test]
    fn upstreaminfo_compiles_to_its_seventeen_variables() {
        let format = LogFormat::upstreaminfo();
        assert_eq!(vars(&format).len(), 17, "{:?}", vars(&format));
        assert_eq!(format.route_pieces(), 1);
        // Referer, User-Agent, and what $remote_user and $req_id read.
        assert_eq!(format.headers().len(), 4);
        assert!(format.special().authorization.is_some());
        assert!(format.special().request_id.is_some());
        assert_eq!(format.escape(), Escape::Default);
    }

    #[test]
    fn text_and_braced_variables() {
        let format = LogFormat::parse("a${status}b$status-$http_x_a_b c", Escape::None).unwrap();
        let texts: Vec<&[u8]> = format
            .pieces()
            .iter()
            .filter_map(|p| match p {
                Piece::Text(t) => Some(&**t),
                _ => None,
            })
            .collect();
        assert_eq!(texts, [&b"a"[..], b"b", b"-", b" c"]);
        assert_eq!(format.headers(), &[HeaderName::from_static("x-a-b")]);
        // Absent values are empty with escape=none and escape=json.
        assert!(
            format
                .pieces()
                .iter()
                .all(|p| !matches!(p, Piece::Var { dash: true, .. }))
        );
    }

    #[test]
    fn the_same_header_is_captured_once() {
        let format = LogFormat::parse("$http_a $http_A $sent_http_a", Escape::Default).unwrap();
        assert_eq!(format.headers().len(), 1);
        assert_eq!(format.sent_headers().len(), 1);
    }

    #[test]
    fn unknown_and_unsupported_variables_are_named() {
        assert_eq!(
            LogFormat::parse("$remote_addr $foo ${bar}", Escape::Default),
            Err(TemplateError::Unknown(vec![
                "$foo".to_owned(),
                "$bar".to_owned()
            ]))
        );
        let refused = LogFormat::parse("$connection $ssl_protocol $status", Escape::Default);
        assert_eq!(
            refused,
            Err(TemplateError::Unsupported(vec![
                "$connection".to_owned(),
                "$ssl_protocol".to_owned()
            ]))
        );
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("$connection, $ssl_protocol")
        );
        // Internal names are not for users.
        assert!(LogFormat::parse("$time_rfc3339", Escape::Default).is_err());
        assert_eq!(
            LogFormat::parse("a $", Escape::Default),
            Err(TemplateError::Dangling)
        );
        assert_eq!(
            LogFormat::parse("${status", Escape::Default),
            Err(TemplateError::Dangling)
        );
        assert_eq!(
            LogFormat::parse("a\nb", Escape::Default),
            Err(TemplateError::Control)
        );
        assert_eq!(
            LogFormat::parse(&"a".repeat(MAX_LEN + 1), Escape::Default),
            Err(TemplateError::TooLong)
        );
    }

    #[test]
    fn the_json_line_dashes_what_it_always_dashed() {
        let format = LogFormat::json_line();
        assert_eq!(format.escape(), Escape::Json);
        let dashed: Vec<String> = format
            .pieces()
            .iter()
            .filter_map(|p| match p {
                Piece::Var { var, dash: true } => Some(format!("{var:?}")),
                _ => None,
            })
            .collect();
        assert_eq!(dashed.len(), 5, "{dashed:?}");
        assert_eq!(vars(&format).len(), 22);
    }
}
