//! The Ingress client API against the fake Kubernetes API server
//! (tests/fake-apiserver): what reaches the server, what it holds after.

use std::time::Duration;

use controller::client::{ClientConfig, ClientError, IngressClient, MANAGED_BY_LABEL};
use fake_apiserver::FakeApiServer;
use serde_json::{Value, json};

/// The fake server, with namespaces `user-1` and `user-2`, and a client on it.
struct Setup {
    server: FakeApiServer,
    client: IngressClient,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    setup_with(ClientConfig::default()).await
}

async fn setup_with(config: ClientConfig) -> Setup {
    let server = FakeApiServer::start().await;
    for ns in ["user-1", "user-2"] {
        server
            .apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let kube = controller::cluster::connect(Some(&kubeconfig))
        .await
        .unwrap();
    Setup {
        server,
        client: IngressClient::new(kube, config),
        _dir: dir,
    }
}

impl Setup {
    fn ingress(&self, ns: &str, name: &str) -> Option<Value> {
        self.server.get("ingresses", ns, name)
    }

    fn ingresses(&self) -> Vec<Value> {
        self.server.list("ingresses", "")
    }

    /// An Ingress the client did not create (as the model-serving chart
    /// makes it: managed by Helm).
    fn foreign(&self, ns: &str, name: &str) {
        self.server
            .apply(json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "labels": {MANAGED_BY_LABEL: "Helm"},
                },
                "spec": {
                    "ingressClassName": "nginx",
                    "rules": [{"host": "localhost", "http": {"paths": [{
                        "path": "/api/v1/predict/1",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": name, "port": {"number": 80}}},
                    }]}}],
                },
            }))
            .unwrap();
    }
}

fn first_path(ingress: &Value) -> &Value {
    &ingress["spec"]["rules"][0]["http"]["paths"][0]
}

#[tokio::test]
async fn create_returns_the_url_and_writes_the_ingress() {
    let s = setup().await;
    let url = s
        .client
        .create_ingress(
            "user-1",
            "model-serving-1",
            "model-serving-1",
            80,
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(url, "http://localhost:30080/api/v1/predict/1");

    let ingress = s.ingress("user-1", "model-serving-1").unwrap();
    assert_eq!(
        ingress["metadata"]["labels"][MANAGED_BY_LABEL],
        "edge-gateway-client"
    );
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert_eq!(ingress["spec"]["rules"][0]["host"], "localhost");
    let path = first_path(&ingress);
    assert_eq!(path["path"], "/api/v1/predict/1");
    assert_eq!(path["pathType"], "Prefix");
    assert_eq!(path["backend"]["service"]["name"], "model-serving-1");
    assert_eq!(path["backend"]["service"]["port"]["number"], 80);
}

#[tokio::test]
async fn create_twice_updates_the_one_ingress() {
    let s = setup().await;
    s.client
        .create_ingress(
            "user-1",
            "model-serving-3",
            "model-serving-3",
            80,
            None,
            None,
        )
        .await
        .unwrap();
    let first = s.ingress("user-1", "model-serving-3").unwrap();
    let url = s
        .client
        .create_ingress(
            "user-1",
            "model-serving-3",
            "model-serving-3b",
            8080,
            Some("models.example.com"),
            Some("/v2/models/3"),
        )
        .await
        .unwrap();
    assert_eq!(url, "http://models.example.com:30080/v2/models/3");
    assert_eq!(s.ingresses().len(), 1, "a second Ingress was created");
    let second = s.ingress("user-1", "model-serving-3").unwrap();
    assert_eq!(second["metadata"]["uid"], first["metadata"]["uid"]);
    assert_ne!(
        second["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    assert_eq!(second["spec"]["rules"][0]["host"], "models.example.com");
    let path = first_path(&second);
    assert_eq!(path["path"], "/v2/models/3");
    assert_eq!(path["backend"]["service"]["name"], "model-serving-3b");
    assert_eq!(path["backend"]["service"]["port"]["number"], 8080);

    // The same call again changes nothing but succeeds.
    s.client
        .create_ingress(
            "user-1",
            "model-serving-3",
            "model-serving-3b",
            8080,
            Some("models.example.com"),
            Some("/v2/models/3"),
        )
        .await
        .unwrap();
    assert_eq!(s.ingresses().len(), 1);
}

#[tokio::test]
async fn an_update_keeps_labels_and_annotations_others_added() {
    let s = setup().await;
    s.client
        .create_ingress("user-1", "m", "svc", 80, None, None)
        .await
        .unwrap();
    let mut edited = s.ingress("user-1", "m").unwrap();
    edited["metadata"]["labels"]["team"] = json!("a");
    edited["metadata"]["annotations"] =
        json!({"nginx.ingress.kubernetes.io/proxy-read-timeout": "300"});
    edited["apiVersion"] = json!("networking.k8s.io/v1");
    edited["kind"] = json!("Ingress");
    s.server.apply(edited).unwrap();

    s.client
        .create_ingress("user-1", "m", "svc", 81, None, None)
        .await
        .unwrap();
    let ingress = s.ingress("user-1", "m").unwrap();
    assert_eq!(ingress["metadata"]["labels"]["team"], "a");
    assert_eq!(
        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"],
        "300"
    );
    assert_eq!(
        first_path(&ingress)["backend"]["service"]["port"]["number"],
        81
    );
}

#[tokio::test]
async fn delete_removes_it_and_a_second_delete_succeeds() {
    let s = setup().await;
    s.client
        .create_ingress(
            "user-1",
            "model-serving-3",
            "model-serving-3",
            80,
            None,
            None,
        )
        .await
        .unwrap();
    s.client
        .delete_ingress("user-1", "model-serving-3")
        .await
        .unwrap();
    assert!(s.ingress("user-1", "model-serving-3").is_none());
    s.client
        .delete_ingress("user-1", "model-serving-3")
        .await
        .unwrap();
    // In a namespace that does not exist either.
    s.client.delete_ingress("nowhere", "x").await.unwrap();
}

#[tokio::test]
async fn list_shows_only_managed_ingresses() {
    let s = setup().await;
    s.client
        .create_ingress(
            "user-2",
            "model-serving-2",
            "model-serving-2",
            80,
            None,
            None,
        )
        .await
        .unwrap();
    s.client
        .create_ingress(
            "user-1",
            "model-serving-3",
            "model-serving-3",
            8080,
            None,
            None,
        )
        .await
        .unwrap();
    s.foreign("user-1", "model-serving-1");

    let all = s.client.list_ingresses(None).await.unwrap();
    let names: Vec<_> = all
        .iter()
        .map(|i| format!("{}/{}", i.namespace, i.name))
        .collect();
    assert_eq!(names, ["user-1/model-serving-3", "user-2/model-serving-2"]);
    assert_eq!(all[0].url, "http://localhost:30080/api/v1/predict/3");
    assert_eq!(all[0].service, "model-serving-3");
    assert_eq!(all[0].service_port, Some(8080));
    assert_eq!(all[0].path, "/api/v1/predict/3");
    assert_eq!(all[0].host, "localhost");

    let one = s.client.list_ingresses(Some("user-2")).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].url, "http://localhost:30080/api/v1/predict/2");
    // The list was label-selected on the server.
    let selected = s.server.requests().iter().any(|r| {
        r.path.ends_with("/ingresses")
            && r.query_param("labelSelector").as_deref()
                == Some("app.kubernetes.io/managed-by=edge-gateway-client")
    });
    assert!(selected, "{:?}", s.server.requests());
}

#[tokio::test]
async fn an_ingress_the_client_did_not_create_is_left_alone() {
    let s = setup().await;
    s.foreign("user-1", "model-serving-1");
    let before = s.ingress("user-1", "model-serving-1").unwrap();

    let error = s
        .client
        .create_ingress("user-1", "model-serving-1", "other", 80, None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::NotManaged { namespace, name }
            if namespace == "user-1" && name == "model-serving-1"),
        "{error:?}"
    );
    let error = s
        .client
        .delete_ingress("user-1", "model-serving-1")
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::NotManaged { .. }), "{error:?}");

    let after = s.ingress("user-1", "model-serving-1").unwrap();
    assert_eq!(after, before, "the foreign Ingress was changed");
}

#[tokio::test]
async fn invalid_input_never_reaches_the_server() {
    let s = setup().await;
    s.server.clear_requests();
    let c = &s.client;
    let cases = [
        (
            c.create_ingress("User_1", "m", "svc", 80, None, None)
                .await
                .map(drop),
            "namespace",
        ),
        (
            c.create_ingress("user-1", "Model_1", "svc", 80, None, None)
                .await
                .map(drop),
            "name",
        ),
        (
            c.create_ingress("user-1", &"a".repeat(254), "svc", 80, None, None)
                .await
                .map(drop),
            "name",
        ),
        (
            c.create_ingress("user-1", "m", "1svc", 80, None, None)
                .await
                .map(drop),
            "service",
        ),
        (
            c.create_ingress("user-1", "m", "svc", 0, None, None)
                .await
                .map(drop),
            "service_port",
        ),
        (
            c.create_ingress("user-1", "m", "svc", 80, Some("10.0.0.1"), None)
                .await
                .map(drop),
            "host",
        ),
        (
            c.create_ingress("user-1", "m", "svc", 80, Some("*.example.com"), None)
                .await
                .map(drop),
            "host",
        ),
        (
            c.create_ingress("user-1", "m", "svc", 80, None, Some("api/v1"))
                .await
                .map(drop),
            "path",
        ),
        (
            c.create_ingress("user-1", "m", "svc", 80, None, Some("/a//b"))
                .await
                .map(drop),
            "path",
        ),
        (
            c.create_ingress("user-1", "m", "svc", 80, None, Some("/a/.."))
                .await
                .map(drop),
            "path",
        ),
        (
            c.create_ingress("user-1", "m", "svc", 80, None, Some("/a%2Fb"))
                .await
                .map(drop),
            "path",
        ),
        (c.delete_ingress("user-1", "a..b").await.map(drop), "name"),
        (c.delete_ingress("-ns", "a").await.map(drop), "namespace"),
        (c.list_ingresses(Some("USER")).await.map(drop), "namespace"),
    ];
    for (i, (result, want)) in cases.into_iter().enumerate() {
        match result {
            Err(ClientError::Invalid { field, reason }) => {
                assert_eq!(field, want, "case {i}: {reason}");
            }
            other => panic!("case {i}: want Invalid {{ field: {want} }}, got {other:?}"),
        }
    }
    assert!(
        s.server.requests().is_empty(),
        "requests reached the server: {:?}",
        s.server.requests()
    );
    assert!(s.ingresses().is_empty());
}

#[tokio::test]
async fn bad_configuration_is_refused_before_any_call() {
    let config = ClientConfig {
        base_path: "/api//v1".to_owned(),
        ..ClientConfig::default()
    };
    let s = setup_with(config).await;
    s.server.clear_requests();
    let error = s
        .client
        .create_ingress("user-1", "m", "svc", 80, None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Invalid {
                field: "INGRESS_BASE_PATH",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(s.server.requests().is_empty());
}

#[tokio::test]
async fn tls_configuration_gives_https_urls_and_a_tls_entry() {
    let config = ClientConfig {
        tls_secret: Some("models-tls".to_owned()),
        ..ClientConfig::default()
    };
    let s = setup_with(config).await;
    let url = s
        .client
        .create_ingress(
            "user-1",
            "model-serving-1",
            "model-serving-1",
            80,
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(url, "https://localhost:30443/api/v1/predict/1");
    let ingress = s.ingress("user-1", "model-serving-1").unwrap();
    assert_eq!(
        ingress["spec"]["tls"],
        json!([{"hosts": ["localhost"], "secretName": "models-tls"}])
    );
    let listed = s.client.list_ingresses(None).await.unwrap();
    assert_eq!(listed[0].url, url);
}

#[tokio::test]
async fn a_missing_namespace_is_not_found() {
    let s = setup().await;
    let error = s
        .client
        .create_ingress("nowhere", "m", "svc", 80, None, None)
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::NotFound(_)), "{error:?}");
}

/// kube's client retries 503s (with backoff, for minutes); the client's
/// timeout bounds that and reports the server as unreachable.
#[tokio::test]
async fn an_unavailable_server_is_unreachable_after_the_timeout() {
    let s = setup_with(ClientConfig {
        timeout: Duration::from_secs(1),
        ..ClientConfig::default()
    })
    .await;
    s.server.set_unavailable(true);
    let started = std::time::Instant::now();
    let error = s
        .client
        .create_ingress("user-1", "m", "svc", 80, None, None)
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Unreachable(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_unreachable_server_is_reported_as_such() {
    let s = setup().await;
    s.server.pause().await;
    let started = std::time::Instant::now();
    let error = s
        .client
        .create_ingress("user-1", "m", "svc", 80, None, None)
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Unreachable(_)), "{error:?}");
    assert!(!error.is_invalid());
    assert!(started.elapsed() < Duration::from_secs(10));
    let error = s.client.list_ingresses(None).await.unwrap_err();
    assert!(matches!(error, ClientError::Unreachable(_)), "{error:?}");
}

#[tokio::test]
async fn a_slow_server_times_out_as_unreachable() {
    // A listener that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
    let kube = kube::Client::try_from(config).unwrap();
    let client = IngressClient::new(
        kube,
        ClientConfig {
            timeout: Duration::from_millis(300),
            ..ClientConfig::default()
        },
    );
    let error = client.delete_ingress("user-1", "m").await.unwrap_err();
    assert!(
        matches!(&error, ClientError::Unreachable(m) if m.contains("no answer")),
        "{error:?}"
    );
}

/// Two creates racing for one name: one creates, the other finds it (409
/// AlreadyExists, or a stale resourceVersion) and retries as an update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_name_both_succeed() {
    let s = setup().await;
    for round in 0..10 {
        let name = format!("race-{round}");
        let (a, b) = tokio::join!(
            s.client
                .create_ingress("user-1", &name, "svc-a", 80, None, None),
            s.client
                .create_ingress("user-1", &name, "svc-b", 80, None, None),
        );
        assert!(a.is_ok() && b.is_ok(), "round {round}: {a:?} {b:?}");
    }
    assert_eq!(s.ingresses().len(), 10);
}
