//! Annotations and ConfigMap data as anyone allowed to write an Ingress or
//! the controller ConfigMap could write them: the parsers and `compile()`
//! must never panic, whatever the keys and values, and refusal must follow
//! the registry.
//!
//! Input: one `key=value` per line (`\n` and `\r` in a value written as the
//! two characters `\n`, `\r`). A key without `/` is read under the
//! `nginx.ingress.kubernetes.io/` prefix as an annotation and as is as a
//! ConfigMap key; a key with `/` is used as is for both. The ConfigMap is
//! also read as the TCP and UDP services ConfigMaps.
#![no_main]

use std::collections::BTreeMap;

use controller::annotations::{self, PREFIX, Support};
use controller::{CompileOptions, NsName, Object, Snapshot, compile, config_map};
use gateway::policy::Policy;
use gateway::settings::ProxySettings;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut annotation_map = BTreeMap::new();
    let mut config = BTreeMap::new();
    for line in text.lines() {
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        let value = value.replace("\\n", "\n").replace("\\r", "\r");
        let annotation = if key.contains('/') {
            key.to_owned()
        } else {
            format!("{PREFIX}{key}")
        };
        annotation_map.insert(annotation, value.clone());
        config.insert(key.strip_prefix(PREFIX).unwrap_or(key).to_owned(), value);
    }

    let read = config_map::read(&config);
    for error in &read.errors {
        assert!(config.contains_key(&error.key), "{error:?}");
    }
    for parsed in [
        annotations::parse(
            Some(&annotation_map),
            &ProxySettings::default(),
            &Policy::default(),
            false,
        ),
        annotations::parse(
            Some(&annotation_map),
            &read.config.proxy,
            &read.config.policy,
            true,
        )
        .with_admission_defaults(&read.config.admission),
    ] {
        let refused: Vec<&String> = annotation_map
            .keys()
            .filter(|key| {
                key.strip_prefix(PREFIX)
                    .and_then(annotations::known)
                    .is_some_and(|k| matches!(k.support, Support::Refused(_)))
            })
            .collect();
        assert_eq!(parsed.refused.iter().collect::<Vec<_>>(), refused);
    }

    // The same through compile(): one Ingress carrying the annotations,
    // the ConfigMap carrying the data.
    let objects = [
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "fuzz", "namespace": "ns", "annotations": annotation_map},
            "spec": {"rules": [{"host": "a.example", "http": {"paths": [
                {"path": "/api/(v1)/(.*)", "pathType": "ImplementationSpecific",
                 "backend": {"service": {"name": "svc", "port": {"number": 80}}}},
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "svc", "port": {"number": 80}}}},
            ]}}]},
        }),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "controller", "namespace": "ingress-nginx"},
            "data": config,
        }),
    ];
    let mut snapshot = Snapshot::default();
    for value in objects {
        if let Ok(Some(object)) = Object::from_value(value) {
            snapshot.apply(object);
        }
    }
    let mut options = CompileOptions::default();
    options.class.watch_without_class = true;
    options.configmap = Some(NsName::new("ingress-nginx", "controller"));
    // The same data as TCP and UDP services ConfigMaps (port -> service).
    options.tcp_services = options.configmap.clone();
    options.udp_services = options.configmap.clone();
    options.ssl_passthrough = true;
    let compiled = compile(&snapshot, &options);
    for service in compiled.table.streams() {
        assert!(compiled.table.stream(service.protocol, service.port).is_some());
    }
    for path in [&b"/"[..], b"/api/v1/x", b"/api/v2"] {
        let _ = compiled.table.lookup(Some("a.example"), path);
    }
});
