use super::*;
use crate::backend::balance::BackendPolicy;
use crate::backend::{BackendKey, EndpointUpdate};
use crate::host::HostPattern;
use crate::path::{PathKind, PathRule};
use std::net::SocketAddr;

fn route(path: &str, action: RouteAction) -> Route {
    Route {
        source: None,
        host: "".into(),
        path: path.into(),
        path_kind: PathKind::Prefix,
        action,
        settings: Arc::default(),
        policy: Arc::default(),
        admission: None,
        stats: None,
        rewrite: None,
        fallback: None,
        canary: None,
        filters: None,
    }
}

fn key(service: &str) -> BackendKey {
    BackendKey {
        namespace: "default".into(),
        service: service.into(),
        port: "80".into(),
        cluster_ip: false,
    }
}

fn endpoints(last_octet: u8) -> EndpointUpdate {
    EndpointUpdate {
        addrs: vec![SocketAddr::from(([127, 0, 0, last_octet], 80))],
        service_found: true,
    }
}

#[test]
fn host_then_path_then_fallback() {
    let mut b = RouteTableBuilder::default();
    let foo = b.server(Some(&HostPattern::parse("foo.com").unwrap()));
    let wild = b.server(Some(&HostPattern::parse("*.foo.com").unwrap()));
    let default = b.server(None);
    let prefix = |p: &str| PathRule::new(PathKind::Prefix, p).unwrap();
    b.add_route(foo, prefix("/a"), route("/a", RouteAction::Respond(201)))
        .unwrap();
    b.add_route(wild, prefix("/"), route("/", RouteAction::Respond(202)))
        .unwrap();
    b.add_route(
        default,
        prefix("/d"),
        route("/d", RouteAction::Respond(203)),
    )
    .unwrap();
    b.set_fallback(foo, route("/", RouteAction::Respond(204)))
        .unwrap();
    let table = b.build();
    let status = |host: Option<&str>, path: &str| {
        table
            .lookup(host, path.as_bytes())
            .map(|m| m.route.action.clone())
    };
    assert_eq!(
        status(Some("foo.com"), "/a/x"),
        Some(RouteAction::Respond(201))
    );
    assert_eq!(
        status(Some("foo.com"), "/zzz"),
        Some(RouteAction::Respond(204))
    );
    assert_eq!(
        status(Some("x.foo.com"), "/a"),
        Some(RouteAction::Respond(202))
    );
    assert_eq!(
        status(Some("y.x.foo.com"), "/d"),
        Some(RouteAction::Respond(203))
    );
    assert_eq!(status(None, "/d/e"), Some(RouteAction::Respond(203)));
    assert_eq!(status(Some("other"), "/a"), None);
}

#[test]
fn default_route_takes_what_no_path_or_fallback_does() {
    let mut b = RouteTableBuilder::default();
    let foo = b.server(Some(&HostPattern::parse("foo.com").unwrap()));
    let bar = b.server(Some(&HostPattern::parse("bar.com").unwrap()));
    let prefix = |p: &str| PathRule::new(PathKind::Prefix, p).unwrap();
    b.add_route(foo, prefix("/a"), route("/a", RouteAction::Respond(201)))
        .unwrap();
    b.set_fallback(bar, route("/", RouteAction::Respond(204)))
        .unwrap();
    let backend = b.backend(key("default-http-backend"), &endpoints(1));
    let id = b.set_default_route(route("/", RouteAction::Proxy(backend)));
    let table = b.build();
    let found = |host: &str, path: &str| table.lookup(Some(host), path.as_bytes()).unwrap();
    assert_eq!(
        found("foo.com", "/a").route.action,
        RouteAction::Respond(201)
    );
    // A known host's unmatched path, and an unknown host.
    assert_eq!(found("foo.com", "/b").id, id);
    assert_eq!(found("other", "/a").id, id);
    // A host's own fallback (an Ingress defaultBackend) wins.
    assert_eq!(
        found("bar.com", "/x").route.action,
        RouteAction::Respond(204)
    );
    assert!(table.is_default_route(id));
    assert_eq!(table.default_backend(), Some(backend));
    assert_eq!(RouteTable::default().default_backend(), None);
}

#[test]
fn conflicts_name_the_holder() {
    let mut b = RouteTableBuilder::default();
    let s = b.server(None);
    let rule = PathRule::new(PathKind::Prefix, "/a").unwrap();
    let first = b
        .add_route(s, rule.clone(), route("/a", RouteAction::Respond(200)))
        .unwrap();
    assert_eq!(
        b.add_route(s, rule, route("/a/", RouteAction::Respond(200))),
        Err(RouteConflict::Taken(first))
    );
}

#[test]
fn backends_are_shared_by_key_and_adopted_across_tables() {
    let mut b = RouteTableBuilder::default();
    let first = b.backend(key("a"), &endpoints(1));
    assert_eq!(b.backend(key("a"), &endpoints(9)), first);
    let old = b.build();
    let live = old.backend(first).unwrap().clone();

    let least = Arc::new(BackendPolicy {
        algorithm: crate::backend::balance::Algorithm::LeastRequest,
        ..BackendPolicy::default()
    });
    let mut b = RouteTableBuilder::default().with_backend_policy(least.clone());
    let other = b.backend(key("b"), &endpoints(3));
    let id = b.backend(key("a"), &endpoints(2));
    let p2c = Arc::new(BackendPolicy {
        algorithm: crate::backend::balance::Algorithm::P2c,
        ..BackendPolicy::default()
    });
    b.set_backend_policy(id, p2c.clone());
    let mut new = b.build();
    assert_eq!(new.backend(other).unwrap().policy(), least);
    new.adopt_backends(&old);
    let adopted = new.backend(id).unwrap();
    assert!(Arc::ptr_eq(adopted, &live));
    assert_eq!(
        live.endpoints().endpoints()[0].addr(),
        SocketAddr::from(([127, 0, 0, 2], 80))
    );
    assert_eq!(live.policy(), p2c, "the new table's policy is taken over");
}

#[test]
fn backends_are_taken_over_while_building_onto_the_live_table() {
    let mut b = RouteTableBuilder::default();
    let a = b.backend(key("a"), &endpoints(1));
    let mut live = b.build();
    live.succeed(&RouteTable::default());
    let live_a = live.backend(a).unwrap().clone();
    let endpoint = live_a.endpoints().endpoints()[0].clone();

    let p2c = Arc::new(BackendPolicy {
        algorithm: crate::backend::balance::Algorithm::P2c,
        ..BackendPolicy::default()
    });
    let mut b = RouteTableBuilder::default().adopting(&live);
    let fresh = b.backend(key("b"), &endpoints(3));
    let same = b.backend(key("a"), &endpoints(1));
    b.set_backend_policy(same, p2c.clone());
    let mut next = b.build();
    let taken = next.backend(same).unwrap().clone();
    assert!(Arc::ptr_eq(&taken, &live_a), "the live backend, not a copy");
    assert!(
        Arc::ptr_eq(&taken.endpoints().endpoints()[0], &endpoint),
        "an endpoint whose address stays keeps its state"
    );
    assert_eq!(taken.policy(), p2c);
    assert_eq!(next.backend(fresh).unwrap().key(), &key("b"));

    // Published onto the table it was built onto: nothing to take over
    // again. Onto another one (not what it was built onto): taken over then.
    next.succeed(&live);
    assert!(Arc::ptr_eq(next.backend(same).unwrap(), &live_a));
    let mut b = RouteTableBuilder::default().adopting(&live);
    let id = b.backend(key("a"), &endpoints(2));
    let mut other = b.build();
    other.succeed(&next);
    assert!(Arc::ptr_eq(other.backend(id).unwrap(), &live_a));
    let mut b = RouteTableBuilder::default();
    let c = b.backend(key("a"), &endpoints(4));
    let mut elsewhere = b.build();
    elsewhere.succeed(&RouteTable::default());
    let elsewhere_a = elsewhere.backend(c).unwrap().clone();
    let mut b = RouteTableBuilder::default().adopting(&live);
    let id = b.backend(key("a"), &endpoints(5));
    let mut stale = b.build();
    stale.succeed(&elsewhere);
    assert!(
        Arc::ptr_eq(stale.backend(id).unwrap(), &elsewhere_a),
        "built onto a table that is no longer live: the live one's backends win"
    );
    assert_eq!(
        elsewhere_a.endpoints().endpoints()[0].addr(),
        SocketAddr::from(([127, 0, 0, 5], 80))
    );
}
