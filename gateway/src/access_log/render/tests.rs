use std::sync::Arc;

use http::HeaderMap;

use super::*;
use crate::access_log::capture;
use crate::table::RouteSource;

/// A request as the tests log it; `headers` as the client sent them.
struct Given {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    upstreams: Vec<Attempt>,
    request_id: Option<HeaderValue>,
    alternative: Option<&'static str>,
}

fn given() -> Given {
    let mut headers = HeaderMap::new();
    headers.insert("user-agent", HeaderValue::from_static("oha/1 \"quoted\""));
    headers.insert("host", HeaderValue::from_static("Models.Example:8080"));
    Given {
        method: Method::POST,
        uri: Uri::from_static("/api/v1/predict/1?x=1"),
        version: Version::HTTP_11,
        headers,
        upstreams: vec![Attempt {
            addr: SocketAddr::from(([127, 0, 0, 11], 8080)),
            status: Some(200),
            response_time: Some(Duration::from_millis(11)),
            connect_time: Some(Duration::ZERO),
            header_time: Some(Duration::from_millis(10)),
            length: Some(42),
        }],
        request_id: Some(HeaderValue::from_static("abc123")),
        alternative: None,
    }
}

fn source() -> RouteSource {
    RouteSource {
        namespace: "user-1".into(),
        name: "model-serving-1".into(),
    }
}

fn backend() -> BackendKey {
    BackendKey {
        namespace: "user-1".into(),
        service: "model-serving-1".into(),
        port: "80".into(),
        cluster_ip: false,
    }
}

/// The line `format` writes for `given`, as text.
fn render(format: &LogFormat, given: &Given) -> String {
    String::from_utf8(render_bytes(format, given)).expect("ASCII")
}

/// The line `format` writes for `given`, route values rendered on the fly.
fn render_bytes(format: &LogFormat, given: &Given) -> Vec<u8> {
    let source = source();
    let backend = backend();
    let info = RouteInfo {
        source: Some(&source),
        backend: Some(&backend),
        upstream_name: Some("user-1-model-serving-1-80"),
        path: Some("/api"),
        host: Some("models.example"),
    };
    let captured = capture(format.headers(), &given.headers);
    let record = Record {
        now: SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_000_000_250),
        client: SocketAddr::from(([10, 0, 0, 1], 5000)),
        method: &given.method,
        uri: &given.uri,
        version: given.version,
        headers: &captured,
        sent_headers: &[],
        scheme: Scheme::Http,
        server_port: 80,
        status: 200,
        body_bytes: 42,
        head_bytes: 100,
        request_bytes: 180,
        request_time: Duration::from_millis(12),
        request_id: given.request_id.as_ref(),
        alternative_upstream: given.alternative,
        upstreams: &given.upstreams,
        rate_limited: b'n',
    };
    let mut out = Vec::new();
    line(format, &record, None, &info, &mut out);
    out
}

#[test]
fn upstreaminfo_reads_as_nginx_writes_it() {
    assert_eq!(
        render(&LogFormat::upstreaminfo(), &given()),
        "10.0.0.1 - - [24/Nov/2025:16:00:00 +0000] \"POST /api/v1/predict/1?x=1 HTTP/1.1\" 200 42 \"-\" \
         \"oha/1 \\x22quoted\\x22\" 180 0.012 [user-1-model-serving-1-80] [] 127.0.0.11:8080 42 0.011 200 abc123"
    );
    let mut canary = given();
    canary.alternative = Some("user-1-model-serving-1-canary-80");
    assert!(
        render(&LogFormat::upstreaminfo(), &canary)
            .contains("[user-1-model-serving-1-80] [user-1-model-serving-1-canary-80] ")
    );
}

#[test]
fn no_upstream_and_retries_as_nginx_lists_them() {
    let mut none = given();
    none.upstreams.clear();
    none.request_id = None;
    none.headers
        .insert("x-request-id", HeaderValue::from_static("from-client"));
    let line = render(&LogFormat::upstreaminfo(), &none);
    assert!(line.ends_with("[] - - - - from-client"), "{line}");

    let mut retried = given();
    retried.upstreams.insert(
        0,
        Attempt {
            addr: SocketAddr::from(([127, 0, 0, 12], 8080)),
            status: Some(502),
            response_time: Some(Duration::from_millis(1)),
            connect_time: None,
            header_time: None,
            length: Some(0),
        },
    );
    let line = render(&LogFormat::upstreaminfo(), &retried);
    assert!(
        line.ends_with("127.0.0.12:8080, 127.0.0.11:8080 0, 42 0.001, 0.011 502, 200 abc123"),
        "{line}"
    );
    let format = LogFormat::parse(
        "$upstream_connect_time|$upstream_header_time",
        Escape::Default,
    )
    .unwrap();
    assert_eq!(render(&format, &retried), "-, 0.000|-, 0.010");
}

#[test]
fn a_missing_request_id_is_made_up_as_nginx_does() {
    let mut none = given();
    none.request_id = None;
    let format = LogFormat::parse("$req_id $request_id", Escape::Default).unwrap();
    let line = render(&format, &none);
    let ids: Vec<&str> = line.split(' ').collect();
    assert_eq!(ids.len(), 2);
    assert!(
        ids.iter()
            .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())),
        "{line}"
    );
    // The id sent upstream is $req_id, and $request_id when nginx made it.
    assert_eq!(render(&format, &given()), "abc123 abc123");
}

#[test]
fn escapes_as_nginx_default_json_and_none() {
    let mut hostile = given();
    hostile.headers.insert(
        "user-agent",
        HeaderValue::from_bytes(b"a\"b\\c\te\xe9").unwrap(),
    );
    let default = LogFormat::parse("\"$http_user_agent\"", Escape::Default).unwrap();
    assert_eq!(render(&default, &hostile), "\"a\\x22b\\x5Cc\\x09e\\xE9\"");
    let json = LogFormat::parse("{\"ua\":\"$http_user_agent\"}", Escape::Json).unwrap();
    assert_eq!(
        render_bytes(&json, &hostile),
        b"{\"ua\":\"a\\\"b\\\\c\\te\xe9\"}"
    );
    let none = LogFormat::parse("$http_user_agent", Escape::None).unwrap();
    assert_eq!(render_bytes(&none, &hostile), b"a\"b\\c\te\xe9");
    // Absent: `-` by default, nothing with json and none.
    let absent = |escape| {
        render(
            &LogFormat::parse("[$http_referer]", escape).unwrap(),
            &given(),
        )
    };
    assert_eq!(absent(Escape::Default), "[-]");
    assert_eq!(absent(Escape::Json), "[]");
    assert_eq!(absent(Escape::None), "[]");
    // What no header value can hold, but the escapes cover all the same.
    let mut out = Vec::new();
    escaped(b"\x01\x08\x0c\x1f\x7f", Escape::Json, &mut out);
    assert_eq!(out, b"\\u0001\\b\\f\\u001f\x7f");
    out.clear();
    escaped(b"\x01\x7f", Escape::Default, &mut out);
    assert_eq!(out, b"\\x01\\x7F");
}

#[test]
fn request_and_connection_variables() {
    let mut g = given();
    g.headers.insert(
        "authorization",
        HeaderValue::from_static("Basic YWxpY2U6c2VjcmV0"),
    );
    g.headers.append("cookie", HeaderValue::from_static("a=1"));
    g.headers
        .append("cookie", HeaderValue::from_static("sid=xyz"));
    g.uri = Uri::from_static("/p%20q?t=9&T=10");
    let format = LogFormat::parse(
        "$remote_user|$remote_port|$request_method|$request_uri|$uri|$args|$is_args|$arg_t|$cookie_sid|$http_cookie|$host|$server_protocol|$scheme|$https|$server_port|$pipe|$bytes_sent|$msec|$time_iso8601",
        Escape::Default,
    )
    .unwrap();
    assert_eq!(
        render(&format, &g),
        "alice|5000|POST|/p%20q?t=9&T=10|/p q|t=9&T=10|?|9|xyz|a=1; sid=xyz|models.example|HTTP/1.1|http||80|.|142|1764000000.250|2025-11-24T16:00:00+00:00"
    );
    let route = LogFormat::parse(
        "$namespace $ingress_name $service_name $service_port $location_path $server_name $proxy_upstream_name",
        Escape::Default,
    )
    .unwrap();
    assert_eq!(
        render(&route, &g),
        "user-1 model-serving-1 model-serving-1 80 /api models.example user-1-model-serving-1-80"
    );
    g.version = Version::HTTP_2;
    g.uri = Uri::from_static("https://models.example/a?b");
    assert_eq!(
        render(&LogFormat::parse("$request", Escape::Default).unwrap(), &g),
        "POST /a?b HTTP/2.0"
    );
    g.version = Version::HTTP_11;
    assert_eq!(
        render(&LogFormat::parse("$request", Escape::Default).unwrap(), &g),
        "POST https://models.example/a?b HTTP/1.1"
    );
}

#[test]
fn the_json_line_keeps_its_fields() {
    let mut g = given();
    g.headers
        .insert("user-agent", HeaderValue::from_static("bot \"x\" \\ y"));
    g.upstreams.clear();
    let line = render(&LogFormat::json_line(), &g);
    let parsed: serde_json::Value = serde_json::from_str(&line).expect(&line);
    let field = |name: &str| parsed[name].as_str().unwrap_or("<missing>").to_owned();
    assert_eq!(field("time"), "2025-11-24T16:00:00.250Z");
    assert_eq!(field("remote_addr"), "10.0.0.1");
    assert_eq!(field("request_proto"), "HTTP/1.1");
    assert_eq!(field("method"), "POST");
    assert_eq!(field("host"), "Models.Example:8080");
    assert_eq!(field("path"), "/api/v1/predict/1");
    assert_eq!(field("request"), "/api/v1/predict/1?x=1");
    assert_eq!(field("status"), "200");
    assert_eq!(field("bytes_sent"), "42");
    assert_eq!(field("request_length"), "180");
    assert_eq!(field("request_time"), "0.012");
    assert_eq!(field("http_user_agent"), "bot \"x\" \\ y");
    assert_eq!(field("http_referer"), "-");
    assert_eq!(field("namespace"), "user-1");
    assert_eq!(field("ingress"), "model-serving-1");
    assert_eq!(field("service"), "model-serving-1");
    assert_eq!(field("proxy_upstream_name"), "user-1-model-serving-1-80");
    assert_eq!(field("upstream_addr"), "");
    assert_eq!(field("upstream_status"), "");
    assert_eq!(field("upstream_response_time"), "-");
    assert_eq!(parsed.as_object().map(serde_json::Map::len), Some(22));
}

#[test]
fn numbers_and_addresses_without_fmt_match_fmt() {
    for n in [0_u64, 9, 10, 99, 100, 12_345, u64::MAX] {
        let mut out = Vec::new();
        integer(n, &mut out);
        assert_eq!(out, n.to_string().into_bytes());
    }
    for d in [0_u64, 1, 999, 1000, 1001, 61_234] {
        let mut out = Vec::new();
        seconds(Duration::from_millis(d), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{:.3}", d as f64 / 1000.0)
        );
    }
    for addr in [
        "10.0.0.1:80",
        "[::1]:8080",
        "[::ffff:10.1.2.3]:9",
        "255.255.255.255:65535",
    ] {
        let addr: SocketAddr = addr.parse().unwrap();
        let mut out = Vec::new();
        socket(addr, &mut out);
        let want = SocketAddr::new(addr.ip().to_canonical(), addr.port()).to_string();
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }
}

#[test]
fn route_values_are_escaped_once_when_prepared() {
    let source = RouteSource {
        namespace: Arc::from("ns"),
        name: Arc::from("n"),
    };
    let info = RouteInfo {
        source: Some(&source),
        path: Some("/a\"b"),
        ..RouteInfo::default()
    };
    let mut out = Vec::new();
    route_value(
        RouteVar::LocationPath,
        &info,
        Escape::Default,
        true,
        &mut out,
    );
    route_value(
        RouteVar::ServiceName,
        &info,
        Escape::Default,
        true,
        &mut out,
    );
    route_value(RouteVar::ServiceName, &info, Escape::Json, false, &mut out);
    assert_eq!(out, b"/a\\x22b-");
}

/// The eight-bytes-at-a-time check agrees with the byte-by-byte rule for
/// every byte value at every position of a chunk and of the tail.
#[test]
fn the_fast_escape_check_agrees_with_the_byte_rule() {
    for len in [1usize, 7, 8, 9, 16, 17] {
        for at in 0..len {
            for b in 0..=255u8 {
                let mut value = vec![b'a'; len];
                value[at] = b;
                assert_eq!(
                    needs_escape(&value, true),
                    escape_default(b),
                    "{b:#x} at {at} of {len}"
                );
                let json = b < 0x20 || b == b'"' || b == b'\\';
                assert_eq!(
                    needs_escape(&value, false),
                    json,
                    "json {b:#x} at {at} of {len}"
                );
            }
        }
    }
}

proptest::proptest! {
    /// Any bytes: the fast check says what the byte rule says.
    #[test]
    fn the_fast_escape_check_matches_on_any_bytes(value in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
        let json = value.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        proptest::prop_assert_eq!(needs_escape(&value, true), value.iter().any(|&b| escape_default(b)));
        proptest::prop_assert_eq!(needs_escape(&value, false), json);
    }
}
