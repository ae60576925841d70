use serde_json::{Value, json};

use super::*;
use crate::objects::Object;

fn snapshot(objects: Vec<Value>) -> Snapshot {
    let mut s = Snapshot::default();
    s.apply(
        Object::from_value(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}),
        )
        .unwrap()
        .unwrap(),
    );
    for o in objects {
        s.apply(Object::from_value(o).unwrap().unwrap());
    }
    s
}

fn ingress(name: &str, annotations: Value, spec: Value) -> Value {
    let mut spec = spec;
    spec["ingressClassName"] = json!("nginx");
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": name, "namespace": "app", "annotations": annotations},
           "spec": spec})
}

fn rule(host: Option<&str>, paths: Value) -> Value {
    let mut r = json!({"http": {"paths": paths}});
    if let Some(host) = host {
        r["host"] = json!(host);
    }
    r
}

fn path(p: &str, kind: &str, svc: &str) -> Value {
    json!({"path": p, "pathType": kind, "backend": {"service": {"name": svc, "port": {"number": 80}}}})
}

fn options() -> ConvertOptions {
    ConvertOptions {
        compile: CompileOptions::default(),
        gateway: NsName::new("infra", "gw"),
        gateway_class: "edge".to_owned(),
        controller_name: "edge-gateway.io/gateway-controller".to_owned(),
    }
}

fn routes(c: &Conversion) -> Vec<&Value> {
    c.objects
        .iter()
        .filter(|o| o["kind"] == "HTTPRoute")
        .collect()
}

#[test]
fn unconvertible_annotations_keep_the_ingress_with_reasons() {
    let s = snapshot(vec![
        ingress(
            "a",
            json!({"nginx.ingress.kubernetes.io/enable-cors": "true",
                            "edge-gateway.io/load-balance": "p2c"}),
            json!({"rules": [rule(Some("a.test"), json!([path("/", "Prefix", "svc")]))]}),
        ),
        ingress(
            "b",
            json!({"nginx.ingress.kubernetes.io/force-ssl-redirect": "true"}),
            json!({"rules": [rule(Some("b.test"), json!([path("/", "Prefix", "svc")]))]}),
        ),
        ingress(
            "c",
            json!({"nginx.ingress.kubernetes.io/use-regex": "true"}),
            json!({"rules": [rule(Some("c.test"), json!([path("/v[0-9]", "ImplementationSpecific", "svc")]))]}),
        ),
    ]);
    let c = convert(&s, &options());
    let reasons = |name: &str| c.kept[&NsName::new("app", name)].join("; ");
    assert!(reasons("a").contains("enable-cors"), "{}", reasons("a"));
    assert!(
        reasons("a").contains("edge-gateway.io/load-balance"),
        "{}",
        reasons("a")
    );
    assert!(
        reasons("b").contains("force-ssl-redirect"),
        "{}",
        reasons("b")
    );
    assert!(reasons("c").contains("use-regex"), "{}", reasons("c"));
    assert!(c.converted.is_empty());
    assert!(routes(&c).is_empty());
    assert_eq!(c.objects.len(), 2, "the class and the Gateway only");
}

#[test]
fn canaries_fold_into_weights_and_header_rules() {
    let s = snapshot(vec![
        ingress(
            "main",
            json!({}),
            json!({"rules": [rule(Some("m.test"), json!([path("/", "Prefix", "v1")]))]}),
        ),
        ingress(
            "canary",
            json!({"nginx.ingress.kubernetes.io/canary": "true",
                                 "nginx.ingress.kubernetes.io/canary-by-header": "x-canary",
                                 "nginx.ingress.kubernetes.io/canary-by-header-pattern": "^b",
                                 "nginx.ingress.kubernetes.io/canary-weight": "25"}),
            json!({"rules": [rule(Some("m.test"), json!([path("/", "Prefix", "v2")]))]}),
        ),
    ]);
    let c = convert(&s, &options());
    assert!(c.kept.is_empty(), "{:?}", c.kept);
    let routes = routes(&c);
    assert_eq!(routes.len(), 1);
    let rules = routes[0]["spec"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(
        rules[0]["matches"][0]["headers"],
        json!([{"type": "RegularExpression", "name": "x-canary", "value": ".*(?:^b).*"}])
    );
    assert_eq!(rules[0]["backendRefs"], json!([{"name": "v2", "port": 80}]));
    assert_eq!(
        rules[1]["backendRefs"],
        json!([{"name": "v1", "port": 80, "weight": 75}, {"name": "v2", "port": 80, "weight": 25}])
    );
    assert_eq!(routes[0]["spec"]["parentRefs"][0]["sectionName"], "http");
    assert!(c.converted[&NsName::new("app", "canary")][0].contains("folded"));
}

#[test]
fn a_canary_that_stays_keeps_its_main() {
    let s = snapshot(vec![
        ingress(
            "main",
            json!({}),
            json!({"rules": [rule(Some("m.test"), json!([path("/", "Prefix", "v1")]))]}),
        ),
        ingress(
            "canary",
            json!({"nginx.ingress.kubernetes.io/canary": "true",
                                 "nginx.ingress.kubernetes.io/canary-by-cookie": "beta"}),
            json!({"rules": [rule(Some("m.test"), json!([path("/", "Prefix", "v2")]))]}),
        ),
    ]);
    let c = convert(&s, &options());
    assert!(c.kept[&NsName::new("app", "canary")][0].contains("canary-by-cookie"));
    assert!(c.kept[&NsName::new("app", "main")][0].contains("app/canary"));
}

#[test]
fn tls_hosts_get_https_listeners_redirects_and_grants() {
    let s = snapshot(vec![
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
               "metadata": {"name": "cert", "namespace": "app"},
               "data": {"tls.crt": "", "tls.key": ""}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "app"},
               "spec": {"ports": [{"name": "web", "port": 8080}]}}),
        ingress(
            "t",
            json!({}),
            json!({
            "tls": [{"hosts": ["t.test"], "secretName": "cert"}],
            "rules": [rule(Some("t.test"), json!([
                path("/", "Prefix", "svc"),
                {"path": "/named", "pathType": "Exact",
                 "backend": {"service": {"name": "svc", "port": {"name": "web"}}}}]))]}),
        ),
    ]);
    let c = convert(&s, &options());
    let gateway = c.objects.iter().find(|o| o["kind"] == "Gateway").unwrap();
    assert_eq!(gateway["spec"]["listeners"][1]["hostname"], "t.test");
    assert_eq!(
        gateway["spec"]["listeners"][1]["tls"]["certificateRefs"],
        json!([{"name": "cert", "namespace": "app"}])
    );
    let grant = c
        .objects
        .iter()
        .find(|o| o["kind"] == "ReferenceGrant")
        .unwrap();
    assert_eq!(grant["metadata"]["namespace"], "app");
    let routes = routes(&c);
    let https = routes
        .iter()
        .find(|r| r["metadata"]["name"] == "t")
        .unwrap();
    assert_eq!(
        https["spec"]["rules"][1]["backendRefs"],
        json!([{"name": "svc", "port": 8080}])
    );
    assert_eq!(
        https["spec"]["rules"][0]["filters"][0]["responseHeaderModifier"]["set"][0]["name"],
        "Strict-Transport-Security"
    );
    let http = routes
        .iter()
        .find(|r| r["metadata"]["name"] == "t-http")
        .unwrap();
    let rules = http["spec"]["rules"].as_array().unwrap();
    assert_eq!(
        rules[0]["filters"][0]["requestRedirect"],
        json!({"scheme": "https", "statusCode": 308})
    );
    let acme = rules.last().unwrap();
    assert_eq!(
        acme["matches"][0]["path"]["value"],
        "/.well-known/acme-challenge"
    );
    assert!(acme["backendRefs"].is_array());
    assert!(
        c.converted[&NsName::new("app", "t")]
            .iter()
            .any(|d| d.contains("keeps the '/'"))
    );
}

#[test]
fn mirror_targets_naming_a_service_become_request_mirrors() {
    let service = |ns: &str, name: &str| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
               "spec": {"ports": [{"port": 8080}]}})
    };
    let mirrored = |name: &str, target: &str, extra: Option<(&str, &str)>| {
        let mut annotations = json!({"nginx.ingress.kubernetes.io/mirror-target": target});
        if let Some((key, value)) = extra {
            annotations[format!("nginx.ingress.kubernetes.io/{key}")] = json!(value);
        }
        ingress(
            name,
            annotations,
            json!({"rules": [rule(Some(&format!("{name}.test")), json!([path("/", "Prefix", "svc")]))]}),
        )
    };
    let s = snapshot(vec![
        service("app", "shadow"),
        service("obs", "tap"),
        mirrored(
            "same",
            "http://shadow.app.svc.cluster.local:8080$request_uri",
            None,
        ),
        mirrored(
            "cross",
            "http://tap.obs.svc:8080",
            Some(("mirror-host", "x")),
        ),
        mirrored("tls", "https://shadow.app.svc:8080", None),
        mirrored("path", "http://shadow.app.svc:8080/copy$uri", None),
        mirrored("dns", "http://mirror.example.com$request_uri", None),
        mirrored("port", "http://shadow.app.svc:9$request_uri", None),
        mirrored(
            "nobody",
            "http://shadow.app.svc:8080",
            Some(("mirror-request-body", "off")),
        ),
    ]);
    let c = convert(&s, &options());
    for kept in ["tls", "path", "dns", "port", "nobody"] {
        let reasons = c.kept[&NsName::new("app", kept)].join("; ");
        assert!(reasons.contains("mirror"), "{kept}: {reasons}");
    }
    let filters = |name: &str| {
        let route = routes(&c)
            .into_iter()
            .find(|r| r["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no route {name}"));
        route["spec"]["rules"][0]["filters"].clone()
    };
    assert_eq!(
        filters("same"),
        json!([{"type": "RequestMirror", "requestMirror": {"backendRef":
            {"name": "shadow", "namespace": "app", "port": 8080}}}])
    );
    assert_eq!(
        filters("cross")[0]["requestMirror"]["backendRef"]["namespace"],
        "obs"
    );
    assert!(
        c.converted[&NsName::new("app", "cross")]
            .iter()
            .any(|d| d.contains("mirrored copies"))
    );
    let grant = c
        .objects
        .iter()
        .find(|o| o["kind"] == "ReferenceGrant" && o["metadata"]["namespace"] == "obs")
        .expect("a grant for the mirror Service in another namespace");
    assert_eq!(
        grant["spec"]["to"],
        json!([{"group": "", "kind": "Service", "name": "tap"}])
    );
    assert_eq!(grant["spec"]["from"][0]["namespace"], "app");
}
