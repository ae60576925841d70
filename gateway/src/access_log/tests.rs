use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, Method, Uri, Version};

use super::render::{Attempt, Record};
use super::*;
use crate::backend::{BackendKey, EndpointUpdate};
use crate::blocklist::Blocklist;
use crate::path::{PathKind, PathRule};
use crate::policy::Globals;
use crate::settings::Scheme;
use crate::table::{Route, RouteSource, RouteTableBuilder};

/// A table with one route on the default server to Service `svc`, whose
/// access log format is `format`.
fn make_table(format: &str) -> (Arc<RouteTable>, RouteId) {
    let mut b = RouteTableBuilder::default();
    let server = b.server(None);
    let backend = b.backend(
        BackendKey {
            namespace: "ns".into(),
            service: "svc".into(),
            port: "80".into(),
            cluster_ip: false,
        },
        &EndpointUpdate {
            addrs: vec![SocketAddr::from(([127, 0, 0, 1], 80))],
            service_found: true,
        },
    );
    let route = Route {
        source: Some(RouteSource {
            namespace: "ns".into(),
            name: "ing".into(),
        }),
        host: "".into(),
        path: "/a".into(),
        path_kind: PathKind::Prefix,
        action: RouteAction::Proxy(backend),
        settings: Arc::default(),
        policy: Arc::default(),
        admission: None,
        stats: None,
        rewrite: None,
        fallback: None,
        canary: None,
        filters: None,
    };
    let id = b
        .add_route(
            server,
            PathRule::new(PathKind::Prefix, "/a").unwrap(),
            route,
        )
        .unwrap();
    let mut globals = Globals::default();
    globals.access_log.format = Arc::new(LogFormat::parse(format, Escape::Default).unwrap());
    b.set_globals(globals);
    (Arc::new(b.build()), id)
}

/// A log whose writer never runs: the buffered lines are read directly.
fn log(mode: AccessLogFormat) -> AccessLog {
    AccessLog {
        mode,
        json: Arc::new(LogFormat::json_line()),
        buffers: Arc::new(Buffers::new(1 << 20)),
        control: Arc::new(Control::default()),
        prepared: ArcSwapOption::empty(),
        writer: Mutex::new(None),
    }
}

fn written(log: &AccessLog) -> String {
    let mut out = Vec::new();
    log.buffers
        .drain(&mut Vec::new(), |bytes| out.extend_from_slice(bytes));
    String::from_utf8(out).unwrap()
}

fn write(log: &AccessLog, table: &Arc<RouteTable>, route: Option<RouteId>) {
    let uri = Uri::from_static("/a/1");
    let upstreams = [Attempt {
        addr: SocketAddr::from(([127, 0, 0, 1], 80)),
        status: Some(200),
        response_time: Some(Duration::from_millis(1)),
        connect_time: None,
        header_time: None,
        length: Some(2),
    }];
    let record = Record {
        now: SystemTime::UNIX_EPOCH,
        client: SocketAddr::from(([10, 0, 0, 1], 1)),
        method: &Method::GET,
        uri: &uri,
        version: Version::HTTP_11,
        headers: &[],
        sent_headers: &[],
        scheme: Scheme::Http,
        server_port: 80,
        status: 200,
        body_bytes: 2,
        head_bytes: 0,
        request_bytes: 10,
        request_time: Duration::ZERO,
        request_id: None,
        alternative_upstream: None,
        upstreams: &upstreams,
        rate_limited: b'n',
    };
    log.write(table, route, None, &record);
}

#[test]
fn route_pieces_are_rendered_at_publish_and_on_the_fly_alike() {
    let format = "$namespace/$ingress_name/$service_name:$service_port $proxy_upstream_name $location_path $status";
    let (table, id) = make_table(format);
    let log = log(AccessLogFormat::Nginx);
    // Not prepared (a request that began on an older table): on the fly.
    write(&log, &table, Some(id));
    log.prepare(&table);
    let prepared = log.prepared.load();
    let pieces = &prepared.as_ref().unwrap().routes[id.0];
    assert_eq!(pieces.len(), 6);
    assert_eq!(&*pieces[4], b"ns-svc-80");
    write(&log, &table, Some(id));
    // No rule matched: ingress-nginx's default upstream.
    write(&log, &table, None);
    assert_eq!(
        written(&log),
        "ns/ing/svc:80 ns-svc-80 /a 200\nns/ing/svc:80 ns-svc-80 /a 200\n-/-/-:- upstream-default-backend - 200\n"
    );
    // Another table with the same format: its own pieces, not stale ones.
    let (other, _) = make_table(format);
    write(&log, &other, Some(id));
    assert_eq!(written(&log), "ns/ing/svc:80 ns-svc-80 /a 200\n");
}

#[test]
fn json_mode_ignores_the_configmap_format() {
    let (table, id) = make_table("$status");
    let log = log(AccessLogFormat::Json);
    log.prepare(&table);
    write(&log, &table, Some(id));
    let line = written(&log);
    let parsed: serde_json::Value = serde_json::from_str(line.trim_end()).expect(&line);
    assert_eq!(parsed["proxy_upstream_name"], "ns-svc-80");
    assert_eq!(parsed["namespace"], "ns");
}

#[test]
fn skip_urls_follow_nginx_map_matching() {
    let config = AccessLogConfig {
        skip: Blocklist::parse("/healthz, ~^/metrics, ~*/PING$").unwrap(),
        ..AccessLogConfig::default()
    };
    assert!(skipped(&config, b"/healthz"));
    assert!(skipped(&config, b"/HealthZ"), "plain entries ignore case");
    assert!(!skipped(&config, b"/healthz?x=1"), "the whole $request_uri");
    assert!(skipped(&config, b"/metrics/x"));
    assert!(skipped(&config, b"/a/ping"));
    assert!(!skipped(&config, b"/a/pingx"));
    assert!(!skipped(&AccessLogConfig::default(), b"/healthz"));
}

#[test]
fn repeated_headers_are_joined_as_nginx_joins_them() {
    let mut headers = HeaderMap::new();
    headers.append("cookie", HeaderValue::from_static("a=1"));
    headers.append("cookie", HeaderValue::from_static("b=2"));
    headers.append("x-f", HeaderValue::from_static("1"));
    headers.append("x-f", HeaderValue::from_static("2"));
    let names = [
        http::header::COOKIE,
        http::HeaderName::from_static("x-f"),
        http::HeaderName::from_static("x-none"),
    ];
    let captured = capture(&names, &headers);
    assert_eq!(captured[0].as_ref().unwrap(), "a=1; b=2");
    assert_eq!(captured[1].as_ref().unwrap(), "1, 2");
    assert!(captured[2].is_none());
}
