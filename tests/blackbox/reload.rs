//! Changes to the manifests folder apply live: added, changed and deleted
//! Ingresses and endpoints, with no failed request in between.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use testkit::{EchoBackend, IngressBuilder, eventually, get, try_request};

use crate::{Setup, answered_by, service_for};

/// The deadline the issue sets for a change to be served.
const APPLIED: Duration = Duration::from_secs(2);

fn model_ingress(id: u32, path: &str) -> String {
    IngressBuilder::new("models", &format!("model-serving-{id}"))
        .class("nginx")
        .host("localhost")
        .path(path, "Prefix", &format!("model-serving-{id}"), 80)
        .build()
}

async fn status_is(s: &Setup, path: &str, want: u16) {
    let addr = s.http();
    let path = path.to_owned();
    eventually(APPLIED, move || {
        let path = path.clone();
        async move {
            let status = get(addr, "localhost", &path).await.status;
            if status == want {
                Ok(())
            } else {
                Err(format!("{path}: {status}, want {want}"))
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_changing_and_deleting_a_model_ingress_applies_live() {
    let one = EchoBackend::start([127, 0, 30, 1]).await;
    let two = EchoBackend::start([127, 0, 30, 2]).await;
    let mut docs = service_for("models", "model-serving-1", &[&one]);
    docs.push(model_ingress(1, "/api/v1/predict/1"));
    let s = Setup::start(&docs).await;
    status_is(&s, "/api/v1/predict/1/health", 200).await;
    status_is(&s, "/api/v1/predict/2/health", 404).await;

    let mut model_two = service_for("models", "model-serving-2", &[&two]);
    model_two.push(model_ingress(2, "/api/v1/predict/2"));
    s.dir.write("model-2.yaml", &testkit::join_docs(&model_two));
    status_is(&s, "/api/v1/predict/2/health", 200).await;
    assert_eq!(
        answered_by(&get(s.http(), "localhost", "/api/v1/predict/2/x").await),
        two.addr().to_string()
    );

    model_two.pop();
    model_two.push(model_ingress(2, "/api/v2/predict/2"));
    s.dir.write("model-2.yaml", &testkit::join_docs(&model_two));
    status_is(&s, "/api/v2/predict/2/health", 200).await;
    status_is(&s, "/api/v1/predict/2/health", 404).await;

    s.dir.remove("model-2.yaml");
    status_is(&s, "/api/v2/predict/2/health", 404).await;
    status_is(&s, "/api/v1/predict/1/health", 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_changes_move_traffic() {
    let a = EchoBackend::start([127, 0, 31, 1]).await;
    let b = EchoBackend::start_at(std::net::SocketAddr::new(
        [127, 0, 31, 2].into(),
        a.addr().port(),
    ))
    .await;
    let mut docs = service_for("models", "model-serving-1", &[&a]);
    docs.push(model_ingress(1, "/api/v1/predict/1"));
    let s = Setup::start(&docs).await;
    assert_eq!(
        answered_by(&get(s.http(), "localhost", "/api/v1/predict/1").await),
        a.addr().to_string()
    );

    let mut moved = service_for("models", "model-serving-1", &[&b]);
    moved.push(model_ingress(1, "/api/v1/predict/1"));
    s.dir.write("objects.yaml", &testkit::join_docs(&moved));
    let addr = s.http();
    let want = b.addr().to_string();
    eventually(APPLIED, move || {
        let want = want.clone();
        async move {
            let who = answered_by(&get(addr, "localhost", "/api/v1/predict/1").await);
            if who == want {
                Ok(())
            } else {
                Err(format!("still answered by {who}"))
            }
        }
    })
    .await;
    a.reset();
    for _ in 0..10 {
        get(s.http(), "localhost", "/api/v1/predict/1").await;
    }
    assert_eq!(a.hits(), 0, "the removed endpoint still gets traffic");
}

#[tokio::test]
async fn an_invalid_yaml_file_is_skipped_and_the_rest_serves() {
    let backend = EchoBackend::start([127, 0, 32, 1]).await;
    let dir = testkit::ManifestDir::new();
    dir.write("class.yaml", &testkit::ingress_class());
    dir.write(
        "broken.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: [unclosed\n",
    );
    let mut docs = service_for("models", "model-serving-1", &[&backend]);
    docs.push(model_ingress(1, "/api/v1/predict/1"));
    dir.write("good.yaml", &testkit::join_docs(&docs));
    let gateway = testkit::Gateway::start(crate::BIN, dir.path(), &[]).await;
    gateway.wait_ready().await;
    assert_eq!(
        get(gateway.http_addr(), "localhost", "/api/v1/predict/1")
            .await
            .status,
        200
    );
    gateway
        .wait_for_log("broken.yaml", Duration::from_secs(5))
        .await;
}

/// Rewrites an unrelated Ingress over and over while requests flow: no
/// request may fail, none may be refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_survive_twenty_reloads() {
    let backend = EchoBackend::start([127, 0, 33, 1]).await;
    let other = EchoBackend::start([127, 0, 33, 2]).await;
    let mut docs = service_for("models", "model-serving-1", &[&backend]);
    docs.extend(service_for("models", "model-serving-2", &[&other]));
    docs.push(model_ingress(1, "/api/v1/predict/1"));
    let s = Setup::start(&docs).await;

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, failures, done, addr) = (stop.clone(), failures.clone(), done.clone(), s.http());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match try_request(
                    addr,
                    "GET",
                    "localhost",
                    "/api/v1/predict/1/health",
                    &[],
                    Vec::new(),
                )
                .await
                {
                    Ok(r) if r.status == 200 => {}
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for i in 0..20 {
        let path = format!("/api/v1/predict/2/v{i}");
        s.dir.write("other.yaml", &model_ingress(2, &path));
        status_is(&s, &format!("{path}/health"), 200).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    assert!(
        done.load(Ordering::Relaxed) > 100,
        "too few requests to mean anything"
    );
    assert_eq!(failures.load(Ordering::Relaxed), 0);
}

/// A ConfigMap volume's layout: the files are symlinks through `..data`,
/// itself a symlink to a timestamped folder, and an update renames a new
/// `..data` into place. The folder's watch must see it, as polling did.
#[cfg(unix)]
#[tokio::test]
async fn a_configmap_volume_update_through_its_data_symlink_applies() {
    use std::os::unix::fs::symlink;

    let backend = EchoBackend::start([127, 0, 34, 1]).await;
    let dir = testkit::ManifestDir::new();
    let version = |dir: &testkit::ManifestDir, name: &str, path: &str| {
        let folder = dir.file(name);
        std::fs::create_dir(&folder).unwrap();
        let mut docs = service_for("models", "model-serving-1", &[&backend]);
        docs.push(model_ingress(1, path));
        docs.push(testkit::ingress_class());
        std::fs::write(folder.join("models.yaml"), testkit::join_docs(&docs)).unwrap();
    };
    version(&dir, "..v1", "/api/v1/predict/1");
    symlink("..v1", dir.file("..data")).unwrap();
    symlink("..data/models.yaml", dir.file("models.yaml")).unwrap();
    let gateway = testkit::Gateway::start(crate::BIN, dir.path(), &[]).await;
    gateway.wait_ready().await;
    let s = Setup { gateway, dir };
    status_is(&s, "/api/v1/predict/1/health", 200).await;

    version(&s.dir, "..v2", "/api/v2/predict/1");
    symlink("..v2", s.dir.file("..data_tmp")).unwrap();
    std::fs::rename(s.dir.file("..data_tmp"), s.dir.file("..data")).unwrap();
    status_is(&s, "/api/v2/predict/1/health", 200).await;
    status_is(&s, "/api/v1/predict/1/health", 404).await;
}
