//! Route lookup with Gateway API routes, beside the same fleet as
//! Ingresses, in one run: what a request pays to find its route when the
//! table holds HTTPRoutes (plain paths, or paths refined by a header
//! match), against Ingress `Prefix` rules of the same shape.
//!
//! The HTTPRoute fleet mirrors a [`Fleet`] of `Prefix` Ingresses: route
//! `model-<i>` on the same host, `PathPrefix /api/v1/predict/m<i>` to the
//! same Service, attached to one HTTP listener. With `header`, each rule
//! also matches `x-tenant: t<i>`, which the requests carry.

use std::hint::black_box;

use controller::gateway_api::GatewayApiOptions;
use controller::snapshot::Snapshot;
use controller::{CompileOptions, Object, compile};
use gateway::RouteTable;
use gateway::host::normalize_request_host;
use gateway::matches::RequestFacts;
use gateway::path::normalize_path;
use gateway::settings::Scheme;
use http::Method;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use crate::figures::{median_time, print};
use crate::fleet::{Fleet, Mix};

/// The fleet's Services and slices, the Gateway, and one HTTPRoute per
/// Ingress of `fleet` (with a header match when `header`).
pub fn snapshot(fleet: &Fleet, header: bool) -> Snapshot {
    let mut snapshot = Snapshot::default();
    let mut apply = |value: serde_json::Value| {
        if let Ok(Some(object)) = Object::from_value(value) {
            snapshot.apply(object);
        }
    };
    apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": "edge"}, "spec": {"controllerName": "edge-gateway.io/gateway-controller"}}),
    );
    apply(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "infra"},
        "spec": {"gatewayClassName": "edge", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP",
            "allowedRoutes": {"namespaces": {"from": "All"}}}]}}),
    );
    for i in 0..fleet.ingresses {
        for object in [
            serde_json::to_value(Fleet::service(i)),
            serde_json::to_value(Fleet::endpoint_slice(i, 0)),
        ]
        .into_iter()
        .flatten()
        {
            apply(object);
        }
        let ingress = fleet.ingress(i);
        let namespace = ingress.metadata.namespace.clone().unwrap_or_default();
        let mut matched =
            json!({"path": {"type": "PathPrefix", "value": format!("/api/v1/predict/m{i}")}});
        if header {
            matched["headers"] = json!([{"name": "x-tenant", "value": format!("t{i}")}]);
        }
        apply(
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": format!("model-{i}"), "namespace": namespace},
            "spec": {"parentRefs": [{"name": "gw", "namespace": "infra"}],
                     "hostnames": [fleet.host(i)],
                     "rules": [{"matches": [matched],
                                "backendRefs": [{"name": format!("model-{i}"), "port": 80}]}]}}),
        );
    }
    snapshot
}

/// Compiles with the Gateway API on.
pub fn compile_table(snapshot: &Snapshot) -> RouteTable {
    let options = CompileOptions {
        gateway_api: Some(GatewayApiOptions::default()),
        ..CompileOptions::default()
    };
    compile(snapshot, &options).table
}

/// One request as the proxy routes it: host and path normalised, then
/// [`RouteTable::find_for`] with the request's method and headers.
pub fn route_request(table: &RouteTable, host: &str, path: &[u8], headers: &HeaderMap) -> bool {
    let host = normalize_request_host(host).ok();
    let Ok(path) = normalize_path(path) else {
        return false;
    };
    let facts = RequestFacts {
        scheme: Scheme::Http,
        method: &Method::GET,
        headers,
        query: None,
    };
    table
        .find_for(host.as_deref(), &path, &facts)
        .route
        .is_some()
}

/// Median ns of one lookup over `requests` (each with its headers).
fn lookup_ns(table: &RouteTable, requests: &[(String, Vec<u8>, HeaderMap)], batches: usize) -> f64 {
    let per_batch = 10_000;
    let mut next = 0;
    let batch = median_time(batches, || {
        for _ in 0..per_batch {
            let (host, path, headers) = &requests[next];
            next = (next + 1) % requests.len();
            black_box(route_request(
                table,
                black_box(host),
                black_box(path),
                headers,
            ));
        }
    });
    batch.as_secs_f64() * 1e9 / per_batch as f64
}

/// Prints the lookup medians of Ingresses, plain HTTPRoutes and
/// HTTPRoutes with a header match, 10,000 routes over 1,000 hosts, and
/// their ratios to the Ingresses.
pub fn print_lookup(quick: bool) {
    let batches = if quick { 11 } else { 51 };
    let fleet = Fleet::new(10_000, 1_000, Mix::Prefix);
    let plain: Vec<(String, Vec<u8>, HeaderMap)> = fleet
        .requests(4096)
        .into_iter()
        .map(|(h, p)| (h, p, typical_headers(None)))
        .collect();
    let tenant = |path: &[u8]| {
        let text = String::from_utf8_lossy(path);
        let i = text
            .trim_start_matches("/api/v1/predict/m")
            .split('/')
            .next()
            .unwrap_or("")
            .to_owned();
        format!("t{i}")
    };
    let with_header: Vec<(String, Vec<u8>, HeaderMap)> = fleet
        .requests(4096)
        .into_iter()
        .map(|(h, p)| {
            let t = tenant(&p);
            (h, p, typical_headers(Some(&t)))
        })
        .collect();
    let ingresses = crate::figures::compile_table(&fleet.snapshot());
    let routes = compile_table(&snapshot(&fleet, false));
    let guarded = compile_table(&snapshot(&fleet, true));
    for (table, requests) in [
        (&ingresses, &plain),
        (&routes, &plain),
        (&guarded, &with_header),
    ] {
        assert!(
            requests
                .iter()
                .all(|(h, p, hd)| route_request(table, h, p, hd)),
            "every request must hit a route"
        );
    }
    let base = lookup_ns(&ingresses, &plain, batches);
    let plain_ns = lookup_ns(&routes, &plain, batches);
    let header_ns = lookup_ns(&guarded, &with_header, batches);
    print("lookup_median_ingress_prefix_10000_1000hosts", base, "ns");
    print(
        "lookup_median_httproute_prefix_10000_1000hosts",
        plain_ns,
        "ns",
    );
    print(
        "lookup_median_httproute_header_10000_1000hosts",
        header_ns,
        "ns",
    );
    print("lookup_ratio_httproute_over_ingress", plain_ns / base, "x");
    print(
        "lookup_ratio_httproute_header_over_ingress",
        header_ns / base,
        "x",
    );
}

/// The headers of a typical request, plus `x-tenant` when given.
fn typical_headers(tenant: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("user-agent", "oha/1.4"),
        ("accept", "*/*"),
        ("content-type", "application/json"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if let Some(tenant) = tenant
        && let Ok(value) = HeaderValue::from_str(tenant)
    {
        headers.insert(HeaderName::from_static("x-tenant"), value);
    }
    headers
}
