//! kube-rs against the fake server: typed Api calls, a watcher + reflector
//! through changes, an outage and a compaction, and leader-election style
//! optimistic concurrency on Leases.

use std::time::Duration;

use fake_apiserver::FakeApiServer;
use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Secret};
use k8s_openapi::api::networking::v1::{Ingress, IngressRule, IngressSpec};
use kube::api::{Api, DeleteParams, ListParams, PartialObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use serde_json::json;

/// Deadline for one kube-rs scenario step (watchers back off up to ~1 s
/// between reconnects).
const STEP: Duration = Duration::from_secs(30);

async fn client(server: &FakeApiServer) -> Client {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path).expect("write kubeconfig");
    let kubeconfig = Kubeconfig::read_from(&path).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    assert_eq!(config.default_namespace, "default");
    Client::try_from(config).expect("client")
}

fn ingress(name: &str, host: &str) -> Ingress {
    Ingress {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        spec: Some(IngressSpec {
            ingress_class_name: Some("nginx".to_owned()),
            rules: Some(vec![IngressRule {
                host: Some(host.to_owned()),
                http: None,
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

fn ingress_json(name: &str, host: &str) -> serde_json::Value {
    let mut v = serde_json::to_value(ingress(name, host)).expect("json");
    v["metadata"]["namespace"] = json!("default");
    v
}

#[tokio::test]
async fn typed_api_crud_and_status() {
    let server = FakeApiServer::start().await;
    let client = client(&server).await;
    let api: Api<Ingress> = Api::default_namespaced(client.clone());

    let created = api
        .create(&PostParams::default(), &ingress("web", "a.example"))
        .await
        .expect("create");
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let err = api
        .create(&PostParams::default(), &ingress("web", "a.example"))
        .await
        .expect_err("exists");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.is_already_exists()),
        "{err:?}"
    );

    let all: Api<Ingress> = Api::all(client.clone());
    let list = all.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.resource_version.is_some());
    let paged = all
        .list(&ListParams::default().limit(1))
        .await
        .expect("paged list");
    assert_eq!(paged.items.len(), 1);

    let status = json!({"status": {"loadBalancer": {"ingress": [{"ip": "10.1.2.3"}]}}});
    let patched = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("patch_status");
    let ip = patched
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .and_then(|i| i[0].ip.clone());
    assert_eq!(ip.as_deref(), Some("10.1.2.3"));
    let applied = api
        .patch_status(
            "web",
            &PatchParams::apply("edge-gateway").force(),
            &Patch::Apply(
                &json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}}}),
            ),
        )
        .await
        .expect("server-side apply of status");
    let host = applied
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|lb| lb.ingress)
        .and_then(|i| i[0].hostname.clone());
    assert_eq!(host.as_deref(), Some("lb.example"));
    let fetched = api.get("web").await.expect("get");
    assert_eq!(fetched.spec.and_then(|s| s.rules).map(|r| r.len()), Some(1));

    let deleted = api
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    // Like the real registry: a Status naming the deleted Ingress.
    let status = deleted.right().expect("a Status for a deleted Ingress");
    let details = status.details.expect("details");
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("web", "ingresses")
    );
    assert!(api.get_opt("web").await.expect("get_opt").is_none());
    let err = api
        .delete("web", &DeleteParams::default())
        .await
        .expect_err("gone");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.is_not_found()),
        "{err:?}"
    );
}

/// Polls the watch stream until `cond` holds on the reflector's store.
async fn drive_until<S: Stream + Unpin>(
    stream: &mut S,
    reader: &Store<Ingress>,
    what: &str,
    cond: impl Fn(&Store<Ingress>) -> bool,
) {
    let reached = tokio::time::timeout(STEP, async {
        while !cond(reader) {
            if stream.next().await.is_none() {
                panic!("the watch stream ended");
            }
        }
    })
    .await;
    assert!(reached.is_ok(), "timed out waiting for {what}");
}

fn host_of(reader: &Store<Ingress>, name: &str) -> Option<String> {
    reader
        .get(&ObjectRef::new(name).within("default"))
        .and_then(|i| i.spec.clone())
        .and_then(|s| s.rules)
        .and_then(|r| r[0].host.clone())
}

#[tokio::test]
async fn reflector_follows_changes_and_recovers_after_compaction() {
    let server = FakeApiServer::start().await;
    server.apply(ingress_json("a", "a.example")).expect("apply");
    let client = client(&server).await;
    let (reader, writer) = reflector::store::<Ingress>();
    let mut stream = watcher(
        Api::<Ingress>::all(client),
        watcher::Config::default().page_size(1),
    )
    .default_backoff()
    .reflect(writer)
    .boxed();

    drive_until(&mut stream, &reader, "the initial list", |r| {
        host_of(r, "a").is_some()
    })
    .await;
    server.apply(ingress_json("b", "b.example")).expect("apply");
    drive_until(&mut stream, &reader, "b added", |r| {
        host_of(r, "b").is_some()
    })
    .await;
    server
        .apply(ingress_json("b", "b2.example"))
        .expect("apply");
    drive_until(&mut stream, &reader, "b modified", |r| {
        host_of(r, "b").as_deref() == Some("b2.example")
    })
    .await;
    server.delete("ingresses", "default", "a").expect("delete");
    drive_until(&mut stream, &reader, "a deleted", |r| {
        host_of(r, "a").is_none()
    })
    .await;

    // An outage during which things change and the history is compacted:
    // the watcher's resourceVersion is gone (410), so it must relist.
    server.pause().await;
    server.apply(ingress_json("c", "c.example")).expect("apply");
    server.delete("ingresses", "default", "b").expect("delete");
    server.compact();
    let before_resume = server.requests().len();
    server.resume().await.expect("resume");
    drive_until(&mut stream, &reader, "the relist after 410", |r| {
        host_of(r, "c").is_some() && host_of(r, "b").is_none()
    })
    .await;
    let after = &server.requests()[before_resume..];
    assert!(
        after
            .iter()
            .any(|r| !r.is_watch() && r.path == "/apis/networking.k8s.io/v1/ingresses"),
        "the watcher relisted: {after:?}"
    );
    // And keeps watching afterwards.
    server.apply(ingress_json("d", "d.example")).expect("apply");
    drive_until(&mut stream, &reader, "d added", |r| {
        host_of(r, "d").is_some()
    })
    .await;
}

#[tokio::test]
async fn leases_use_optimistic_concurrency() {
    let server = FakeApiServer::start().await;
    let leases: Api<Lease> = Api::namespaced(client(&server).await, "kube-system");
    let lease = Lease {
        metadata: kube::api::ObjectMeta {
            name: Some("edge-gateway-leader".to_owned()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("pod-a".to_owned()),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }),
    };
    let created = leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("create");
    let mut renew = created.clone();
    if let Some(spec) = renew.spec.as_mut() {
        spec.lease_transitions = Some(1);
    }
    let renewed = leases
        .replace("edge-gateway-leader", &PostParams::default(), &renew)
        .await
        .expect("replace");
    assert_ne!(
        renewed.metadata.resource_version,
        created.metadata.resource_version
    );

    let mut steal = created.clone();
    if let Some(spec) = steal.spec.as_mut() {
        spec.holder_identity = Some("pod-b".to_owned());
    }
    let err = leases
        .replace("edge-gateway-leader", &PostParams::default(), &steal)
        .await
        .expect_err("stale");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409 && s.is_conflict()),
        "{err:?}"
    );
    let holder = leases
        .get("edge-gateway-leader")
        .await
        .expect("get")
        .spec
        .and_then(|s| s.holder_identity);
    assert_eq!(holder.as_deref(), Some("pod-a"));
}

#[tokio::test]
async fn recorder_publishes_events() {
    let server = FakeApiServer::start().await;
    let client = client(&server).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let cm = cms
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: kube::api::ObjectMeta {
                    name: Some("cfg".to_owned()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("create");
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "edge-gateway".to_owned(),
            instance: None,
        },
    );
    let reference = ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some("ConfigMap".to_owned()),
        name: cm.metadata.name.clone(),
        namespace: Some("default".to_owned()),
        uid: cm.metadata.uid.clone(),
        ..Default::default()
    };
    let event = KubeEvent {
        type_: EventType::Warning,
        reason: "BadConfig".to_owned(),
        note: Some("something is off".to_owned()),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    recorder.publish(&event, &reference).await.expect("publish");
    recorder
        .publish(&event, &reference)
        .await
        .expect("publish again (series)");
    let events = server.list("events.events.k8s.io", "default");
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["reason"], "BadConfig");
    assert_eq!(events[0]["type"], "Warning");
}

#[tokio::test]
async fn metadata_lists_and_watches() {
    let server = FakeApiServer::start().await;
    let secret = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": "default"}, "data": {"tls.key": "c2VjcmV0"}})
    };
    server.apply(secret("a")).expect("apply");
    let client = client(&server).await;
    let api: Api<Secret> = Api::default_namespaced(client.clone());
    let list = api
        .list_metadata(&ListParams::default())
        .await
        .expect("list_metadata");
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("a"));

    // `Api<PartialObjectMeta<K>>` makes metadata-only requests.
    let meta: Api<PartialObjectMeta<Secret>> = Api::default_namespaced(client);
    let mut stream = watcher(meta, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut next_name = async || {
        let item = tokio::time::timeout(STEP, stream.next())
            .await
            .expect("deadline");
        item.expect("stream open").expect("no error").metadata.name
    };
    assert_eq!(next_name().await.as_deref(), Some("a"));
    server.apply(secret("b")).expect("apply");
    assert_eq!(next_name().await.as_deref(), Some("b"));
    let raw = crate::http::call_raw(
        &server.url(),
        "GET",
        "/api/v1/namespaces/default/secrets/a",
        None,
        Some("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"),
        None,
    )
    .await;
    assert_eq!(raw.body["kind"], "PartialObjectMetadata");
    assert!(
        raw.body.get("data").is_none(),
        "no secret data in metadata views"
    );
}
