//! `auth-tls-secret`: the CA (`ca.crt`) and revocation lists (`ca.crl`) a
//! host checks client certificates against, read from a Secret in the
//! Ingress's own namespace and kept across compiles while the Secret and
//! the settings stay the same (so that open connections keep their
//! verdicts and a rotation is one new rule, not one per compile).
//!
//! As ingress-nginx decides it (`createServers`), the client-certificate
//! rule belongs to the host: the oldest Ingress with a rule for the host
//! and `auth-tls-secret` gives it. Where ingress-nginx serves a host whose
//! Secret has no `ca.crt` without client authentication, here the Ingress
//! is denied (503), and a host whose deciding Ingress's Secret is unusable
//! answers 503 altogether.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use gateway::table::ServerId;
use gateway::tls::{ClientAuth, HostClientAuth};

use super::admission::secret_entries;
use super::{Compiler, Current};
use crate::annotations::{self, client_auth::ClientAuthSpec};
use crate::diagnostics::{Diagnostic, Reason};
use crate::objects::{Kind, NsName, ObjectKey};
use crate::snapshot::Snapshot;

/// Client-certificate rules by Ingress, reused across compiles.
#[derive(Debug, Default)]
pub struct ClientAuthCache {
    entries: HashMap<NsName, Entry>,
}

#[derive(Debug)]
struct Entry {
    spec: ClientAuthSpec,
    fingerprint: u64,
    result: Result<Arc<ClientAuth>, String>,
    used: bool,
}

impl ClientAuthCache {
    /// The rule of Ingress `ingress` for `spec`, or why it is unusable.
    pub(crate) fn get(
        &mut self,
        snapshot: &Snapshot,
        ingress: &NsName,
        spec: &ClientAuthSpec,
    ) -> Result<Arc<ClientAuth>, String> {
        let namespace = spec
            .secret
            .namespace
            .as_deref()
            .unwrap_or(&ingress.namespace);
        let id = NsName::new(namespace.to_owned(), spec.secret.name.clone());
        if namespace != ingress.namespace {
            return Err(format!(
                "auth-tls-secret {id} is in another namespace, which is refused"
            ));
        }
        let Some(secret) = snapshot.secret(&id) else {
            return Err(format!("auth-tls-secret {id} not found"));
        };
        let entries = secret_entries(secret);
        let Some(ca) = entries.get("ca.crt") else {
            return Err(format!("auth-tls-secret {id} has no ca.crt"));
        };
        let crl = entries.get("ca.crl");
        let fingerprint = fingerprint(ca, crl.map(Vec::as_slice));
        if let Some(entry) = self.entries.get_mut(ingress)
            && entry.fingerprint == fingerprint
            && entry.spec == *spec
        {
            entry.used = true;
            return entry.result.clone();
        }
        let result = ClientAuth::new(ca, crl.map(Vec::as_slice), spec.settings.clone())
            .map(|auth| Arc::new(auth.with_source(&id.namespace, &id.name)))
            .map_err(|e| format!("auth-tls-secret {id}: {e}"));
        self.entries.insert(
            ingress.clone(),
            Entry {
                spec: spec.clone(),
                fingerprint,
                result: result.clone(),
                used: true,
            },
        );
        result
    }

    /// Forgets the rules of Ingresses the last compile did not build.
    pub(crate) fn sweep(&mut self) {
        self.entries.retain(|_, e| std::mem::take(&mut e.used));
    }
}

fn fingerprint(ca: &[u8], crl: Option<&[u8]>) -> u64 {
    // Fixed seed: the same data must give the same fingerprint every compile.
    let mut hasher = foldhash::fast::FixedState::with_seed(0xca).build_hasher();
    hasher.write_usize(ca.len());
    hasher.write(ca);
    if let Some(crl) = crl {
        hasher.write_u8(1);
        hasher.write(crl);
    }
    hasher.finish()
}

// === impl Compiler ===

impl Compiler<'_> {
    /// Builds (or reuses) the Ingress's client-certificate rule; an
    /// unusable one denies its routes, and the hosts it decides.
    pub(super) fn client_auth(&mut self, current: &mut Current<'_>, id: &NsName) {
        let Some(spec) = &current.annotations.client_auth else {
            return;
        };
        let built = match spec {
            Err(error) => Err(format!(
                "{}: {:?} {}",
                error.key, error.value, error.message
            )),
            Ok(spec) => self.cache.client_auths.get(self.snapshot, id, spec),
        };
        match built {
            Ok(auth) => current.client_auth = Some(HostClientAuth::Verify(auth)),
            Err(message) => {
                current.denied = true;
                current.client_auth = Some(HostClientAuth::Denied);
                let message = format!(
                    "{message}; the Ingress's routes answer 503, and so does every host whose client certificates it decides"
                );
                self.diagnose(current, Reason::LocationDenied, message);
            }
        }
    }

    /// Gives a host the Ingress's client-certificate rule, unless an older
    /// Ingress of the host gave one (ingress-nginx: the server's
    /// `CertificateAuth` comes from the first Ingress that has one).
    pub(super) fn host_client_auth(&mut self, current: &Current<'_>, server: ServerId, host: &str) {
        let Some(auth) = &current.client_auth else {
            return;
        };
        let owner = &current.key.id;
        if self.builder.set_client_auth(server, auth.clone()) {
            self.client_auth_owners.insert(server, owner.clone());
            return;
        }
        if self.client_auth_owners.get(&server) == Some(owner) {
            return;
        }
        let shown = if host.is_empty() { "*" } else { host };
        self.diagnose(
            current,
            Reason::InvalidAnnotation,
            format!(
                "{}auth-tls-*: the client certificates of {shown} are decided by an older Ingress of that host; this Ingress's settings do not apply there",
                annotations::PREFIX
            ),
        );
    }

    /// Reports hosts whose client certificates an Ingress decides for the
    /// Ingresses of other namespaces too (server-level, as ingress-nginx).
    pub(super) fn shared_client_auth(&mut self) {
        let owners = std::mem::take(&mut self.client_auth_owners);
        for (server, owner) in &owners {
            let Some((host, namespaces)) = self.host_namespaces.get(server) else {
                continue;
            };
            let mut others: Vec<&str> = namespaces
                .iter()
                .map(String::as_str)
                .filter(|ns| *ns != owner.namespace)
                .collect();
            if others.is_empty() {
                continue;
            }
            others.sort_unstable();
            let shown = if host.is_empty() { "*" } else { host };
            self.diagnostics.push(Diagnostic {
                object: ObjectKey {
                    kind: Kind::Ingress,
                    id: owner.clone(),
                },
                reason: Reason::InvalidAnnotation,
                message: format!(
                    "{}auth-tls-*: this Ingress decides the client certificates of {shown}, which Ingresses of namespace {} also route; their paths are checked too (as ingress-nginx does)",
                    annotations::PREFIX,
                    others.join(", ")
                ),
            });
        }
        self.client_auth_owners = owners;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use gateway::tls::{HostClientAuth, VerifyClient};

    use super::super::{CompileOptions, Compiled, compile};
    use crate::diagnostics::Reason;
    use crate::objects::Object;
    use crate::snapshot::Snapshot;

    const P: &str = "nginx.ingress.kubernetes.io/";

    fn compiled(objects: &[Value]) -> Compiled {
        let mut snapshot = Snapshot::default();
        for o in objects {
            snapshot.apply(Object::from_value(o.clone()).unwrap().unwrap());
        }
        compile(&snapshot, &CompileOptions::default())
    }

    fn ca_secret(ns: &str, name: &str, data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": name, "namespace": ns}, "stringData": data})
    }

    fn ca_pem() -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap()
            .pem()
    }

    fn ingress(name: &str, created: &str, host: &str, path: &str, annotations: Value) -> Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": name, "namespace": "a", "creationTimestamp": created,
                            "annotations": annotations},
               "spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [
                   {"path": path, "pathType": "Prefix",
                    "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}})
    }

    fn objects() -> Vec<Value> {
        vec![
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                   "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "a"},
                   "spec": {"ports": [{"port": 80}]}}),
            ca_secret("a", "ca", json!({"ca.crt": ca_pem()})),
            ca_secret("a", "no-ca", json!({"tls.crt": "x"})),
            ca_secret("a", "bad-ca", json!({"ca.crt": "not a certificate"})),
            ca_secret("b", "ca", json!({"ca.crt": ca_pem()})),
        ]
    }

    fn rule(c: &Compiled, host: &str) -> Option<HostClientAuth> {
        c.table.find(Some(host), b"/").server.client_auth.cloned()
    }

    fn denied(c: &Compiled) -> Vec<String> {
        c.diagnostics
            .iter()
            .filter(|d| d.reason == Reason::LocationDenied)
            .map(|d| d.object.id.name.clone())
            .collect()
    }

    #[test]
    fn the_oldest_usable_ingress_of_a_host_decides_and_broken_ones_deny() {
        let mut objects = objects();
        let tls = |secret: &str, verify: &str| {
            json!({format!("{P}auth-tls-secret"): secret,
                   format!("{P}auth-tls-verify-client"): verify})
        };
        objects.push(ingress(
            "plain",
            "2025-01-01T00:00:00Z",
            "h.test",
            "/plain",
            json!({}),
        ));
        objects.push(ingress(
            "opt",
            "2025-01-02T00:00:00Z",
            "h.test",
            "/opt",
            tls("ca", "optional"),
        ));
        objects.push(ingress(
            "on",
            "2025-01-03T00:00:00Z",
            "h.test",
            "/on",
            tls("ca", "on"),
        ));
        for (name, secret) in [
            ("missing", "nope"),
            ("no-ca", "no-ca"),
            ("bad-ca", "bad-ca"),
            ("foreign", "b/ca"),
        ] {
            objects.push(ingress(
                name,
                "2025-01-04T00:00:00Z",
                &format!("{name}.test"),
                "/",
                tls(secret, "on"),
            ));
        }
        objects.push(ingress(
            "orphan-cn",
            "2025-01-04T00:00:00Z",
            "cn.test",
            "/",
            json!({format!("{P}auth-tls-match-cn"): "CN=x"}),
        ));
        let c = compiled(&objects);
        let Some(HostClientAuth::Verify(auth)) = rule(&c, "h.test") else {
            panic!("h.test checks no client certificate");
        };
        assert_eq!(auth.settings().verify, VerifyClient::Optional);
        assert_eq!(auth.source(), Some(("a", "ca")));
        let overridden = c
            .diagnostics
            .iter()
            .any(|d| d.object.id.name == "on" && d.message.contains("decided by an older Ingress"));
        assert!(overridden, "{:?}", c.diagnostics);
        for host in ["missing.test", "no-ca.test", "bad-ca.test", "foreign.test"] {
            assert!(
                matches!(rule(&c, host), Some(HostClientAuth::Denied)),
                "{host}"
            );
        }
        let mut names = denied(&c);
        names.sort();
        assert_eq!(
            names,
            ["bad-ca", "foreign", "missing", "no-ca", "orphan-cn"]
        );
        // The denied Ingresses' own routes answer 503 too.
        let route = c.table.lookup(Some("missing.test"), b"/").unwrap();
        assert_eq!(route.route.action, gateway::RouteAction::Respond(503));
        assert!(matches!(rule(&c, "cn.test"), Some(HostClientAuth::Denied)));
    }

    #[test]
    fn an_unchanged_secret_keeps_its_rule_across_compiles() {
        let mut objects = objects();
        objects.push(ingress(
            "on",
            "2025-01-01T00:00:00Z",
            "h.test",
            "/",
            json!({format!("{P}auth-tls-secret"): "ca"}),
        ));
        let mut snapshot = Snapshot::default();
        for o in &objects {
            snapshot.apply(Object::from_value(o.clone()).unwrap().unwrap());
        }
        let mut cache = super::super::CompileCache::default();
        let options = CompileOptions::default();
        let first = super::super::compile_with(&snapshot, &options, &mut cache, 0);
        let second = super::super::compile_with(&snapshot, &options, &mut cache, 0);
        let (Some(HostClientAuth::Verify(a)), Some(HostClientAuth::Verify(b))) =
            (rule(&first, "h.test"), rule(&second, "h.test"))
        else {
            panic!("no rule");
        };
        assert!(std::sync::Arc::ptr_eq(&a, &b));
    }
}
