//! A synthetic cluster for the benchmarks: `ingresses` Ingresses spread
//! round robin over `hosts` hosts, each with its own Service and one
//! EndpointSlice of three ready endpoints, as the model-serving chart
//! deploys a model (Ingress `model-<i>` routes `/api/v1/predict/m<i>`).
//!
//! Every request [`Fleet::requests`] makes is `GET /api/v1/predict/m<i>/infer`
//! on the host of Ingress `i`, so it hits that Ingress whatever its path
//! kind: an Exact rule for that very path, a Prefix rule for
//! `/api/v1/predict/m<i>`, or, on a host in regex mode (ingress-nginx's
//! `use-regex`), `/api/v1/predict/m<i>/(infer|stream)`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use controller::Object;
use controller::snapshot::Snapshot;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressClass, IngressClassSpec,
    IngressRule, IngressServiceBackend, IngressSpec, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// How the paths of a fleet are matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// Every path is a `Prefix` rule.
    Prefix,
    /// Every path is an `Exact` rule.
    Exact,
    /// Every tenth host (host index 9, 19, ...) is in regex mode (its
    /// Ingresses set `use-regex`); on the other hosts even Ingresses have
    /// `Prefix` paths and odd ones `Exact` paths.
    Mixed,
}

impl Mix {
    /// A short name for benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Self::Prefix => "prefix",
            Self::Exact => "exact",
            Self::Mixed => "mixed",
        }
    }
}

/// The shape of a synthetic cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fleet {
    /// Number of Ingresses (one path each), Services and EndpointSlices.
    pub ingresses: usize,
    /// Number of distinct hosts the Ingresses are spread over (at least 1).
    pub hosts: usize,
    /// How paths are matched.
    pub mix: Mix,
}

/// Ingresses per namespace, as a tenant namespace holding a few models.
const PER_NAMESPACE: usize = 10;
/// Ready endpoints behind each Service.
const ENDPOINTS: u32 = 3;

impl Fleet {
    /// A fleet of `ingresses` Ingresses over `hosts` hosts.
    pub fn new(ingresses: usize, hosts: usize, mix: Mix) -> Self {
        Self {
            ingresses,
            hosts: hosts.max(1),
            mix,
        }
    }

    /// A benchmark id such as `mixed/10000x1000` (Ingresses x hosts).
    pub fn id(&self) -> String {
        format!("{}/{}x{}", self.mix.name(), self.ingresses, self.hosts)
    }

    fn host_index(&self, i: usize) -> usize {
        i % self.hosts
    }

    /// The host of Ingress `i`.
    pub fn host(&self, i: usize) -> String {
        format!("h{}.bench.example", self.host_index(i))
    }

    fn regex_host(&self, host: usize) -> bool {
        self.mix == Mix::Mixed && host % 10 == 9
    }

    fn namespace(i: usize) -> String {
        format!("tenant-{}", i / PER_NAMESPACE)
    }

    fn name(i: usize) -> String {
        format!("model-{i}")
    }

    fn meta(i: usize, name: String) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(Self::namespace(i)),
            ..ObjectMeta::default()
        }
    }

    /// The IngressClass `nginx` of ingress-nginx's chart.
    pub fn ingress_class() -> IngressClass {
        IngressClass {
            metadata: ObjectMeta {
                name: Some("nginx".to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(IngressClassSpec {
                controller: Some("k8s.io/ingress-nginx".to_owned()),
                ..IngressClassSpec::default()
            }),
        }
    }

    /// The Service of Ingress `i`: port `http` 80 to target port 8080.
    pub fn service(i: usize) -> Service {
        Service {
            metadata: Self::meta(i, Self::name(i)),
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".to_owned()),
                ports: Some(vec![ServicePort {
                    name: Some("http".to_owned()),
                    port: 80,
                    target_port: Some(IntOrString::Int(8080)),
                    protocol: Some("TCP".to_owned()),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    /// The EndpointSlice of Service `i`. `generation` rotates the last of
    /// its three endpoints (a pod replaced), so two generations differ.
    pub fn endpoint_slice(i: usize, generation: u32) -> EndpointSlice {
        let endpoints = (0..ENDPOINTS)
            .map(|k| {
                let k = if k + 1 == ENDPOINTS {
                    k + generation % 2
                } else {
                    k
                };
                let n = u32::try_from(i).unwrap_or(u32::MAX).wrapping_mul(4) + k;
                let ip = Ipv4Addr::from(0x0a00_0000 | (n & 0x00ff_ffff));
                Endpoint {
                    addresses: vec![ip.to_string()],
                    conditions: Some(EndpointConditions {
                        ready: Some(true),
                        ..EndpointConditions::default()
                    }),
                    ..Endpoint::default()
                }
            })
            .collect();
        let mut meta = Self::meta(i, format!("{}-abcde", Self::name(i)));
        meta.labels = Some(BTreeMap::from([(
            "kubernetes.io/service-name".to_owned(),
            Self::name(i),
        )]));
        EndpointSlice {
            metadata: meta,
            address_type: "IPv4".to_owned(),
            endpoints: Some(endpoints),
            ports: Some(vec![EndpointPort {
                name: Some("http".to_owned()),
                port: Some(8080),
                protocol: Some("TCP".to_owned()),
                ..EndpointPort::default()
            }]),
        }
    }

    /// Ingress `i` after its `generation`-th change: generation 0 is
    /// [`Fleet::ingress`]; later ones add a `permanent-redirect` to
    /// `https://changed.example/<generation>`, a routing change a client
    /// sees without any backend (301 and that `Location`).
    pub fn ingress_at(&self, i: usize, generation: u32) -> Ingress {
        let mut ingress = self.ingress(i);
        if generation > 0 {
            ingress.metadata.annotations.get_or_insert_default().insert(
                "nginx.ingress.kubernetes.io/permanent-redirect".to_owned(),
                format!("https://changed.example/{generation}"),
            );
        }
        ingress
    }

    /// The documents of model `i` (its Service, EndpointSlice and Ingress at
    /// `generation`, see [`Fleet::ingress_at`]), as a manifests file holds them.
    pub fn model_documents(
        &self,
        i: usize,
        generation: u32,
    ) -> serde_json::Result<Vec<serde_json::Value>> {
        Ok(vec![
            with_type(serde_json::to_value(Self::service(i))?, "v1", "Service"),
            with_type(
                serde_json::to_value(Self::endpoint_slice(i, 0))?,
                "discovery.k8s.io/v1",
                "EndpointSlice",
            ),
            with_type(
                serde_json::to_value(self.ingress_at(i, generation))?,
                "networking.k8s.io/v1",
                "Ingress",
            ),
        ])
    }

    /// Ingress `i`: one rule on its host with one path to its Service.
    pub fn ingress(&self, i: usize) -> Ingress {
        let host = self.host_index(i);
        let regex = self.regex_host(host);
        let (path, path_type) = if regex {
            (
                format!("/api/v1/predict/m{i}/(infer|stream)"),
                "ImplementationSpecific",
            )
        } else {
            match (self.mix, i % 2) {
                (Mix::Exact, _) | (Mix::Mixed, 1) => {
                    (format!("/api/v1/predict/m{i}/infer"), "Exact")
                }
                _ => (format!("/api/v1/predict/m{i}"), "Prefix"),
            }
        };
        let mut meta = Self::meta(i, Self::name(i));
        if regex {
            meta.annotations = Some(BTreeMap::from([(
                "nginx.ingress.kubernetes.io/use-regex".to_owned(),
                "true".to_owned(),
            )]));
        }
        Ingress {
            metadata: meta,
            spec: Some(IngressSpec {
                ingress_class_name: Some("nginx".to_owned()),
                rules: Some(vec![IngressRule {
                    host: Some(self.host(i)),
                    http: Some(HTTPIngressRuleValue {
                        paths: vec![HTTPIngressPath {
                            path: Some(path),
                            path_type: path_type.to_owned(),
                            backend: IngressBackend {
                                service: Some(IngressServiceBackend {
                                    name: Self::name(i),
                                    port: Some(ServiceBackendPort {
                                        number: Some(80),
                                        ..ServiceBackendPort::default()
                                    }),
                                }),
                                ..IngressBackend::default()
                            },
                        }],
                    }),
                }]),
                ..IngressSpec::default()
            }),
            ..Ingress::default()
        }
    }

    /// Every object of the fleet: the IngressClass, then each Ingress's
    /// Service, EndpointSlice and Ingress.
    pub fn objects(&self) -> Vec<Object> {
        let mut objects = Vec::with_capacity(1 + 3 * self.ingresses);
        objects.push(Object::from(Self::ingress_class()));
        for i in 0..self.ingresses {
            objects.push(Object::from(Self::service(i)));
            objects.push(Object::from(Self::endpoint_slice(i, 0)));
            objects.push(Object::from(self.ingress(i)));
        }
        objects
    }

    /// A snapshot holding every object of the fleet.
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for object in self.objects() {
            snapshot.apply(object);
        }
        snapshot
    }

    /// The IngressClass as a document.
    pub fn ingress_class_document() -> serde_json::Result<serde_json::Value> {
        Ok(with_type(
            serde_json::to_value(Self::ingress_class())?,
            "networking.k8s.io/v1",
            "IngressClass",
        ))
    }

    /// The fleet as a `kind: List` document for a manifests folder; model
    /// `changed.0` at generation `changed.1` (see [`Fleet::ingress_at`]).
    pub fn manifest_list(
        &self,
        changed: Option<(usize, u32)>,
    ) -> serde_json::Result<serde_json::Value> {
        let mut items = Vec::with_capacity(1 + 3 * self.ingresses);
        items.push(Self::ingress_class_document()?);
        for i in 0..self.ingresses {
            let generation = changed.filter(|(k, _)| *k == i).map_or(0, |(_, g)| g);
            items.extend(self.model_documents(i, generation)?);
        }
        Ok(serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}))
    }

    /// `n` requests `(host, path)` for pseudo-randomly chosen Ingresses
    /// (a fixed sequence, so runs compare).
    pub fn requests(&self, n: usize) -> Vec<(String, Vec<u8>)> {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..n)
            .map(|_| {
                // xorshift64*: cheap, fixed, spread over the whole fleet.
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                let r = state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
                let i = usize::try_from(r).unwrap_or(0) % self.ingresses.max(1);
                (
                    self.host(i),
                    format!("/api/v1/predict/m{i}/infer").into_bytes(),
                )
            })
            .collect()
    }
}

/// Sets a serialised object's `apiVersion` and `kind` (k8s-openapi's
/// `Serialize` writes them already; this keeps the order of the fields
/// stable and the documents self-describing whatever the version).
fn with_type(mut value: serde_json::Value, api_version: &str, kind: &str) -> serde_json::Value {
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".to_owned(), api_version.into());
        map.insert("kind".to_owned(), kind.into());
    }
    value
}
