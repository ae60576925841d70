//! Builds an Ingress's admission checks ([`Admission`]) from its parsed
//! annotations and the Secret basic authentication reads, and keeps them
//! across compiles.
//!
//! Keeping them matters: an `Admission` holds state that a reload must not
//! reset: the rate-limit buckets and connection counts, the passwords
//! that already verified (a bcrypt costs milliseconds), the external auth
//! cache and its connections. So one is reused for as long as its
//! Ingress's admission annotations and the users Secret stay the same.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use gateway::policy::admission::Admission;
use gateway::policy::basic_auth::BasicAuth;
use gateway::policy::cors::Cors;
use gateway::policy::external_auth::ExternalAuth;
use gateway::policy::global_limit::{GlobalLimit, GlobalStore};
use gateway::policy::htpasswd::Htpasswd;
use gateway::policy::limits::RateLimiter;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;

use super::{Compiler, Current};
use crate::annotations::admission::{AdmissionSpec, BasicAuthSpec};
use crate::config_map::GlobalStoreSettings;
use crate::diagnostics::Reason;
use crate::objects::NsName;
use crate::snapshot::Snapshot;

impl Compiler<'_> {
    /// Builds (or reuses) the Ingress's admission checks; an unusable
    /// access or auth annotation, or a protective one this gateway does
    /// not build, denies its routes instead (503), and an unusable global
    /// auth the routes it covers.
    pub(super) fn admission(&mut self, current: &mut Current<'_>, id: &NsName) {
        let spec = &current.annotations.admission;
        for warning in &spec.warnings {
            self.diagnose(current, Reason::WafNotApplied, warning.clone());
        }
        if let Some(error) = &spec.denied {
            let message = format!(
                "{}: {:?} {}; the Ingress's routes answer 503",
                error.key, error.value, error.message
            );
            current.denied = true;
            self.diagnose(current, Reason::LocationDenied, message);
            return;
        }
        if let Some(error) = &spec.global_auth_denied {
            let message = format!(
                "{}: {:?} {}; the Ingress's routes under global auth answer 503",
                error.key, error.value, error.message
            );
            current.auth_denied = true;
            self.diagnose(current, Reason::LocationDenied, message);
        }
        if spec.is_empty() {
            return;
        }
        let namespace = counter_namespace(current.ingress, id);
        let built = self
            .cache
            .admissions
            .get(self.snapshot, id, spec, &namespace);
        for warning in built.warnings {
            self.diagnose(current, Reason::InvalidAnnotation, warning);
        }
        match built.admission {
            Ok(admission) => {
                current.admission = (!admission.is_empty()).then_some(admission);
                current.exempt_admission = built.exempt;
            }
            Err(message) => {
                current.denied = true;
                let message = format!("{message}; the Ingress's routes answer 503");
                self.diagnose(current, Reason::LocationDenied, message);
            }
        }
    }

    /// Whether a route of Ingress path `path` skips authentication
    /// (`no-auth-locations`: the path starts with a listed one, as
    /// ingress-nginx's `isLocationInLocationList` compares).
    pub(super) fn no_auth(&self, path: &str) -> bool {
        self.no_auth_locations
            .iter()
            .any(|l| path.starts_with(l.as_str()))
    }
}

/// Admission checks by Ingress, reused across compiles (see the module
/// documentation).
#[derive(Debug, Default)]
pub struct AdmissionCache {
    entries: HashMap<NsName, Entry>,
    /// The global limits' store, shared by every Ingress, kept while the
    /// ConfigMap's settings stay the same (its connections, its remembered
    /// refusals and local counters survive compiles).
    store: Option<(GlobalStoreSettings, Arc<GlobalStore>)>,
}

#[derive(Debug)]
struct Entry {
    spec: AdmissionSpec,
    /// The global limit's counter namespace (the Ingress's UID).
    namespace: String,
    /// The fingerprint of the users Secret's data, when basic auth reads one.
    users: Option<u64>,
    admission: Arc<Admission>,
    exempt: Option<Arc<Admission>>,
    used: bool,
}

/// A built admission, with what is worth a diagnostic.
#[derive(Debug)]
pub(crate) struct Built {
    /// The checks; `Err` says why the Ingress's routes are denied (503).
    pub(crate) admission: Result<Arc<Admission>, String>,
    /// The checks of its routes under `no-auth-locations`: the same
    /// without authentication (`None` when nothing is left), sharing the
    /// limiter's state.
    pub(crate) exempt: Option<Arc<Admission>>,
    /// Problems that did not deny the routes (users entries skipped).
    pub(crate) warnings: Vec<String>,
}

impl Built {
    fn denied(message: String, warnings: Vec<String>) -> Self {
        Self {
            admission: Err(message),
            exempt: None,
            warnings,
        }
    }
}

impl AdmissionCache {
    /// The checks of Ingress `ingress` for `spec` (not empty, not denied).
    pub(crate) fn get(
        &mut self,
        snapshot: &Snapshot,
        ingress: &NsName,
        spec: &AdmissionSpec,
        namespace: &str,
    ) -> Built {
        let users = match &spec.basic {
            None => None,
            Some(basic) => match users_secret(snapshot, ingress, basic) {
                Ok((id, secret)) => Some((id, secret, secret_fingerprint(secret))),
                Err(message) => return Built::denied(message, Vec::new()),
            },
        };
        let fingerprint = users.as_ref().map(|(_, _, f)| *f);
        if let Some(entry) = self.entries.get_mut(ingress)
            && entry.spec == *spec
            && entry.namespace == namespace
            && entry.users == fingerprint
        {
            entry.used = true;
            return Built {
                admission: Ok(entry.admission.clone()),
                exempt: entry.exempt.clone(),
                warnings: Vec::new(),
            };
        }
        let mut warnings = Vec::new();
        let basic_auth = match (&spec.basic, &users) {
            (Some(basic), Some((id, secret, _))) => {
                match basic_auth(basic, id, secret, &mut warnings) {
                    Ok(auth) => Some(Arc::new(auth)),
                    Err(message) => return Built::denied(message, warnings),
                }
            }
            _ => None,
        };
        let limiter = spec
            .limits
            .is_active()
            .then(|| RateLimiter::new(spec.limits.clone()));
        let global = spec.global.as_ref().and_then(|g| {
            Some(Arc::new(GlobalLimit {
                namespace: namespace.to_owned(),
                limit: g.limit,
                window_seconds: g.window_seconds,
                key: g.key.clone(),
                ignored: g.ignored.clone(),
                store: self.store(g.store.as_ref()?),
            }))
        });
        let admission = Arc::new(Admission {
            cors: spec.cors.as_deref().cloned().map(Cors::new),
            global: global.clone(),
            limiter: limiter.clone(),
            access: spec.access.clone(),
            basic_auth,
            external_auth: spec
                .external
                .as_deref()
                .cloned()
                .map(ExternalAuth::new)
                .map(Arc::new),
            satisfy_any: spec.satisfy_any,
        });
        let exempt = Admission {
            cors: spec.cors.as_deref().cloned().map(Cors::new),
            global,
            limiter,
            access: spec.access.clone(),
            basic_auth: None,
            external_auth: None,
            satisfy_any: spec.satisfy_any,
        };
        let exempt = (!exempt.is_empty()).then(|| Arc::new(exempt));
        self.entries.insert(
            ingress.clone(),
            Entry {
                spec: spec.clone(),
                namespace: namespace.to_owned(),
                users: fingerprint,
                admission: admission.clone(),
                exempt: exempt.clone(),
                used: true,
            },
        );
        Built {
            admission: Ok(admission),
            exempt,
            warnings,
        }
    }

    /// The store for `settings`: the one already built if they did not
    /// change.
    fn store(&mut self, settings: &GlobalStoreSettings) -> Arc<GlobalStore> {
        match &self.store {
            Some((current, store)) if current == settings => store.clone(),
            _ => {
                let store = Arc::new(GlobalStore::new(
                    settings.memcached.clone(),
                    settings.status,
                ));
                self.store = Some((settings.clone(), store.clone()));
                store
            }
        }
    }

    /// Forgets the checks of Ingresses the last compile did not build.
    pub(crate) fn sweep(&mut self) {
        self.entries.retain(|_, e| std::mem::take(&mut e.used));
    }
}

/// The global limit counters' namespace for an Ingress: its UID without
/// dashes, as ingress-nginx; from a manifests folder, where objects may
/// have no UID, a hash of its namespace and name (the same on every
/// replica reading the same folder).
fn counter_namespace(ingress: &Ingress, id: &NsName) -> String {
    match ingress.metadata.uid.as_deref().filter(|u| !u.is_empty()) {
        Some(uid) => uid.replace('-', ""),
        None => [0x91_u64, 0x92]
            .iter()
            .map(|seed| {
                let mut hasher = foldhash::fast::FixedState::with_seed(*seed).build_hasher();
                hasher.write(id.namespace.as_bytes());
                hasher.write_u8(b'/');
                hasher.write(id.name.as_bytes());
                format!("{:016x}", hasher.finish())
            })
            .collect(),
    }
}

/// The users Secret of `auth-secret`: in the Ingress's own namespace only,
/// as ingress-nginx with `allow-cross-namespace-resources: false`.
fn users_secret<'s>(
    snapshot: &'s Snapshot,
    ingress: &NsName,
    basic: &BasicAuthSpec,
) -> Result<(NsName, &'s Secret), String> {
    let namespace = basic
        .secret
        .namespace
        .as_deref()
        .unwrap_or(&ingress.namespace);
    if namespace != ingress.namespace {
        return Err(format!(
            "auth-secret {namespace}/{} is in another namespace, which is refused",
            basic.secret.name
        ));
    }
    let id = NsName::new(namespace.to_owned(), basic.secret.name.clone());
    match snapshot.secret(&id) {
        Some(secret) => Ok((id, secret)),
        None => Err(format!("auth-secret {id} not found")),
    }
}

/// The Secret's keys and values, from `data` and `stringData`.
pub(crate) fn secret_entries(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut entries: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        entries.insert(k.clone(), v.clone().into_bytes());
    }
    entries
}

fn secret_fingerprint(secret: &Secret) -> u64 {
    // Fixed seed: the same data must give the same fingerprint every compile.
    let mut hasher = foldhash::fast::FixedState::with_seed(0xa17).build_hasher();
    for (key, value) in secret_entries(secret) {
        hasher.write(key.as_bytes());
        hasher.write_u8(0);
        hasher.write_usize(value.len());
        hasher.write(&value);
    }
    hasher.finish()
}

/// Basic authentication from the users Secret: the key `auth` holding an
/// htpasswd file, or (`auth-map`) one key per user. Entries that do not
/// parse are skipped with a warning; no usable user at all denies.
fn basic_auth(
    spec: &BasicAuthSpec,
    id: &NsName,
    secret: &Secret,
    warnings: &mut Vec<String>,
) -> Result<BasicAuth, String> {
    let entries = secret_entries(secret);
    let (users, errors) = if spec.map {
        Htpasswd::from_auth_map(
            entries
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned())),
        )
    } else {
        let Some(file) = entries.get("auth") else {
            return Err(format!("auth-secret {id} has no key \"auth\""));
        };
        Htpasswd::parse(&String::from_utf8_lossy(file))
    };
    for error in errors {
        warnings.push(format!("auth-secret {id}: {error}; entry skipped"));
    }
    if users.is_empty() {
        return Err(format!("auth-secret {id} holds no usable user"));
    }
    Ok(BasicAuth::new(spec.realm.clone(), Arc::new(users)))
}
