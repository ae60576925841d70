//! The controller ConfigMap (`--configmap`): its settings replace the
//! defaults of every Ingress, and changes apply without a restart.

use std::time::Duration;

use testkit::{EchoBackend, IngressBuilder, eventually, request};

use crate::{Setup, service_for};

/// The controller ConfigMap `ingress-nginx/ingress-nginx-controller` with `data`.
pub(crate) fn config_map(data: &[(&str, &str)]) -> String {
    let data: serde_json::Map<String, serde_json::Value> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).into()))
        .collect();
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"namespace": "ingress-nginx", "name": "ingress-nginx-controller"},
        "data": data,
    })
    .to_string()
}

/// Polls until a 100-byte POST gets `status`.
async fn post_until(s: &Setup, status: u16) {
    eventually(Duration::from_secs(5), || async {
        let got = request(s.http(), "POST", "cm.test", "/", &[], vec![b'x'; 100])
            .await
            .status;
        if got == status {
            Ok(())
        } else {
            Err(format!("got {got}, want {status}"))
        }
    })
    .await;
}

#[tokio::test]
async fn config_map_settings_apply_and_change_without_restart() {
    let backend = EchoBackend::start([127, 0, 82, 1]).await;
    let mut docs = service_for("cm", "svc", &[&backend]);
    docs.push(
        IngressBuilder::new("cm", "app")
            .class("nginx")
            .host("cm.test")
            .path("/", "Prefix", "svc", 80)
            .build(),
    );
    let s = Setup::start_with(
        &docs,
        &["--configmap", "ingress-nginx/ingress-nginx-controller"],
    )
    .await;
    post_until(&s, 200).await;

    s.dir.write(
        "cm.yaml",
        &config_map(&[("proxy-body-size", "10"), ("use-geoip2", "true")]),
    );
    post_until(&s, 413).await;
    s.gateway
        .wait_for_log(
            "not applied by edge-gateway: use-geoip2",
            Duration::from_secs(5),
        )
        .await;

    s.dir
        .write("cm.yaml", &config_map(&[("proxy-body-size", "1m")]));
    post_until(&s, 200).await;

    s.dir.write(
        "cm.yaml",
        &config_map(&[("block-cidrs", "127.0.0.0/8"), ("proxy-body-size", "1m")]),
    );
    post_until(&s, 403).await;
    let hits = backend.hits();
    post_until(&s, 403).await;
    assert_eq!(
        backend.hits(),
        hits,
        "blocked clients never reach a backend"
    );

    s.dir.remove("cm.yaml");
    post_until(&s, 200).await;
}
