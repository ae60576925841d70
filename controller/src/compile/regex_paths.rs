//! Regex-mode paths: which hosts are in ingress-nginx's regex mode, the
//! compiled expressions (kept across compiles), their limits, and
//! compiling them off the reconcile thread.
//!
//! One tenant's Ingress must neither take the gateway's memory nor hold up
//! another tenant's change, so:
//! - an expression is compiled once and reused by every later compile
//!   while some Ingress still needs it ([`RegexCache`]); a change
//!   elsewhere compiles nothing again;
//! - each expression is size-limited (`gateway::rewrite::SIZE_LIMIT`), an
//!   Ingress in regex mode may have at most [`RegexLimits::per_ingress`]
//!   regex paths whose compiled expressions hold at most
//!   [`RegexLimits::memory_per_ingress`], and a host at most
//!   [`RegexLimits::per_host`]; an Ingress over a limit is not served
//!   (diagnostic) and its neighbours are. Only Ingresses that ask for
//!   regex mode (`use-regex`, `rewrite-target`) are ever refused for it,
//!   newest first, never one whose paths another made regexes;
//! - once serving, new expressions are compiled on a thread of their own
//!   (`RegexCache::compile_in_background`): a compile that needs one not
//!   ready yet keeps the Ingress's previous version (or leaves a new
//!   Ingress out) and goes on, so other changes are published at once; the
//!   reconciler compiles again when the expressions are ready. Before the
//!   first table is published they are compiled inline, so readiness means
//!   every Ingress is served.

use std::collections::BTreeSet;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use foldhash::{HashMap, HashSet};
use gateway::host::HostPattern;
use gateway::rewrite::{RegexPath, RegexUnion, Rewrite};
use gateway::table::{RouteTableBuilder, ServerId};
use k8s_openapi::api::networking::v1::Ingress;

use super::{Prepared, paths};
use crate::annotations::IngressAnnotations;
use crate::diagnostics::Reason;
use crate::objects::NsName;
pub use crate::options::RegexLimits;

/// What is compiled: a regex-mode path, a path's `rewrite-target`, or the
/// paths of a regex-mode host together (in matching order).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Path(String),
    Rewrite(String, String),
    Union(Vec<String>),
}

/// A compiled expression, or why it does not compile.
#[derive(Clone, Debug)]
enum Built {
    Path(Result<RegexPath, String>),
    Rewrite(Result<Arc<Rewrite>, String>),
    Union(Result<Arc<RegexUnion>, String>),
}

impl Built {
    fn of(key: &Key) -> Self {
        // A compile that panics is a refused expression, not a dead thread.
        let built = std::panic::catch_unwind(|| match key {
            Key::Path(path) => Built::Path(RegexPath::new(path).map_err(|e| e.to_string())),
            Key::Rewrite(path, target) => Built::Rewrite(
                Rewrite::new(path, target)
                    .map(Arc::new)
                    .map_err(|e| e.to_string()),
            ),
            Key::Union(paths) => {
                let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
                Built::Union(
                    RegexUnion::new(&paths)
                        .map(Arc::new)
                        .map_err(|e| e.to_string()),
                )
            }
        });
        built.unwrap_or_else(|_| {
            let failed = "the expression could not be compiled".to_owned();
            match key {
                Key::Path(_) => Built::Path(Err(failed)),
                Key::Rewrite(..) => Built::Rewrite(Err(failed)),
                Key::Union(_) => Built::Union(Err(failed)),
            }
        })
    }

    fn memory(&self) -> usize {
        match self {
            Built::Path(Ok(path)) => path.memory_usage(),
            _ => 0,
        }
    }
}

/// The thread compiling new expressions, and what it finished.
#[derive(Debug)]
struct Worker {
    jobs: Sender<Key>,
    done: Arc<Mutex<Vec<(Key, Built)>>>,
    queued: HashSet<Key>,
}

/// Compiled expressions by source, kept across compiles (see the module
/// documentation).
#[derive(Debug, Default)]
pub struct RegexCache {
    ready: HashMap<Key, (Built, bool)>,
    worker: Option<Worker>,
}

impl RegexCache {
    /// From now on, expressions not compiled yet are compiled on a thread
    /// of their own; a compile needing one goes on without it.
    pub fn compile_in_background(&mut self) -> std::io::Result<()> {
        if self.worker.is_some() {
            return Ok(());
        }
        let (jobs, received) = mpsc::channel::<Key>();
        let done: Arc<Mutex<Vec<(Key, Built)>>> = Arc::default();
        let results = done.clone();
        std::thread::Builder::new()
            .name("regex-compile".to_owned())
            .spawn(move || {
                while let Ok(key) = received.recv() {
                    let built = Built::of(&key);
                    lock(&results).push((key, built));
                }
            })?;
        self.worker = Some(Worker {
            jobs,
            done,
            queued: HashSet::default(),
        });
        Ok(())
    }

    /// Whether expressions are being compiled in the background.
    pub fn pending(&self) -> bool {
        self.worker.as_ref().is_some_and(|w| !w.queued.is_empty())
    }

    /// Whether every expression queued has been compiled and no compile
    /// took them in yet (the reconciler then compiles again).
    pub fn arrived(&self) -> bool {
        self.worker.as_ref().is_some_and(|w| {
            let done = lock(&w.done).len();
            done > 0 && done >= w.queued.len()
        })
    }

    /// Takes in what the background thread finished.
    fn collect(&mut self) {
        let Some(worker) = &mut self.worker else {
            return;
        };
        for (key, built) in std::mem::take(&mut *lock(&worker.done)) {
            worker.queued.remove(&key);
            self.ready.insert(key, (built, false));
        }
    }

    /// The compiled expression, or `None` while it is compiled in the
    /// background (it is queued then).
    fn lookup(&mut self, key: &Key) -> Option<&Built> {
        if !self.ready.contains_key(key) {
            match &mut self.worker {
                Some(worker) => {
                    if worker.queued.insert(key.clone()) && worker.jobs.send(key.clone()).is_err() {
                        // The thread is gone: compile here rather than wait forever.
                        worker.queued.remove(key);
                        self.ready.insert(key.clone(), (Built::of(key), false));
                    } else {
                        return None;
                    }
                }
                None => {
                    self.ready.insert(key.clone(), (Built::of(key), false));
                }
            }
        }
        let (built, used) = self.ready.get_mut(key)?;
        *used = true;
        Some(built)
    }

    /// A regex path for the compile (ready after [`plan`]; compiled here
    /// if not).
    pub(super) fn path(&mut self, path: &str) -> Result<RegexPath, String> {
        let key = Key::Path(path.to_owned());
        match self.lookup(&key) {
            Some(Built::Path(result)) => result.clone(),
            _ => RegexPath::new(path).map_err(|e| e.to_string()),
        }
    }

    /// A path's rewrite for the compile (ready after [`plan`]).
    pub(super) fn rewrite(&mut self, path: &str, target: &str) -> Result<Arc<Rewrite>, String> {
        let key = Key::Rewrite(path.to_owned(), target.to_owned());
        match self.lookup(&key) {
            Some(Built::Rewrite(result)) => result.clone(),
            _ => Rewrite::new(path, target)
                .map(Arc::new)
                .map_err(|e| e.to_string()),
        }
    }

    /// The paths of a regex-mode host compiled together (in matching
    /// order), or `None` while that is compiled in the background (the
    /// host's paths are tried one by one meanwhile) or if it failed.
    pub(super) fn union(&mut self, paths: Vec<String>) -> Option<Arc<RegexUnion>> {
        match self.lookup(&Key::Union(paths)) {
            Some(Built::Union(Ok(union))) => Some(union.clone()),
            _ => None,
        }
    }

    /// Forgets expressions the last compile did not use.
    pub(super) fn sweep(&mut self) {
        self.ready.retain(|_, (_, used)| std::mem::take(used));
    }
}

/// Gives every regex-mode host of `builder` with more than one path its
/// paths compiled together (one pass per lookup instead of one per path),
/// from the cache; a host whose union is still compiling in the background
/// tries its paths one by one until the next compile.
pub(super) fn unions(builder: &mut RouteTableBuilder, cache: &mut RegexCache) {
    let hosts: Vec<(ServerId, Vec<String>)> = builder
        .regex_servers()
        .filter(|(_, paths)| paths.len() > 1)
        .map(|(server, paths)| (server, paths.into_iter().map(str::to_owned).collect()))
        .collect();
    for (server, paths) in hosts {
        if let Some(union) = cache.union(paths) {
            builder.set_regex_union(server, union);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What [`plan`] decided.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// The hosts in regex mode (`None`: the default server).
    pub(super) regex_hosts: HashSet<Option<HostPattern>>,
    /// Diagnostics: Ingresses refused for a limit, shared hosts switched
    /// to regex mode.
    pub(super) diagnostics: Vec<(NsName, Reason, String)>,
    /// Ingresses waiting for background compiles, served at their
    /// previous version or not yet.
    pub(super) waiting: Vec<NsName>,
}

/// Settles regex mode for `prepared` (oldest first): refuses Ingresses over
/// a limit, and replaces an Ingress whose expressions are still compiling
/// by its version of the last compile (`last`, re-parsed with `reparse`),
/// or leaves it out; then every expression the compile needs is ready.
pub(super) fn plan<'s>(
    prepared: &mut Vec<Prepared<'s>>,
    limits: &RegexLimits,
    cache: &mut RegexCache,
    last: &HashMap<NsName, Arc<Ingress>>,
    reparse: &dyn Fn(&Ingress) -> IngressAnnotations,
) -> Plan {
    cache.collect();
    let mut plan = Plan::default();
    let mut replaced: HashSet<NsName> = HashSet::default();
    // Each round removes or replaces at least one Ingress, or ends.
    for _ in 0..=prepared.len() * 2 + 1 {
        let parsed = parse_rules(prepared);
        let hosts = regex_hosts(prepared, &parsed);
        if let Some(index) = over_host_limit(prepared, &parsed, &hosts, limits) {
            let p = prepared.remove(index);
            let message = format!(
                "one of its hosts would have more than {} regex paths (edge-gateway.io/max-regex-paths-per-host); the Ingress is not served",
                limits.per_host
            );
            plan.diagnostics
                .push((p.id.clone(), Reason::RegexLimit, message));
            continue;
        }
        let mut changed = None;
        for (index, (p, rules)) in prepared.iter().zip(&parsed).enumerate() {
            let keys = needed(p, rules, &hosts);
            if wants_regex(p) {
                let count = keys.iter().filter(|k| matches!(k, Key::Path(_))).count();
                if count > limits.per_ingress {
                    let message = format!(
                        "{count} regex paths, more than {} (edge-gateway.io/max-regex-paths-per-ingress); the Ingress is not served",
                        limits.per_ingress
                    );
                    changed = Some((index, Some(message)));
                    break;
                }
            }
            let mut memory = 0;
            let mut waiting = false;
            for key in &keys {
                match cache.lookup(key) {
                    Some(built) => memory += built.memory(),
                    None => waiting = true,
                }
            }
            if waiting {
                changed = Some((index, None));
                break;
            }
            if wants_regex(p) && memory > limits.memory_per_ingress {
                let message = format!(
                    "its regex paths take {} KiB compiled, more than {} KiB (edge-gateway.io/max-regex-memory-per-ingress); the Ingress is not served",
                    memory >> 10,
                    limits.memory_per_ingress >> 10
                );
                changed = Some((index, Some(message)));
                break;
            }
        }
        match changed {
            None => {
                plan.regex_hosts = hosts;
                plan.diagnostics
                    .extend(shared_hosts(prepared, &parsed, &plan.regex_hosts));
                return plan;
            }
            Some((index, Some(message))) => {
                let p = prepared.remove(index);
                plan.diagnostics
                    .push((p.id.clone(), Reason::RegexLimit, message));
            }
            Some((index, None)) => {
                let id = prepared[index].id.clone();
                let previous = last
                    .get(&id)
                    .filter(|old| !Arc::ptr_eq(old, &prepared[index].ingress));
                match previous {
                    Some(old) if replaced.insert(id.clone()) => {
                        let p = &mut prepared[index];
                        p.annotations = reparse(old);
                        p.ingress = old.clone();
                    }
                    _ => {
                        prepared.remove(index);
                    }
                }
                plan.waiting.push(id);
            }
        }
    }
    plan.regex_hosts = regex_hosts(prepared, &parse_rules(prepared));
    plan
}

/// Whether an Ingress asks for regex mode on its hosts.
fn wants_regex(p: &Prepared<'_>) -> bool {
    p.annotations.refused.is_empty()
        && p.annotations.canary.is_none()
        && p.annotations.routing.regex_mode()
}

/// The hosts in ingress-nginx's regex mode: those with a rule of an Ingress
/// that sets `use-regex` or `rewrite-target` (`None`: the default server).
fn regex_hosts(prepared: &[Prepared<'_>], parsed: &[Rules<'_>]) -> HashSet<Option<HostPattern>> {
    prepared
        .iter()
        .zip(parsed)
        .filter(|(p, _)| wants_regex(p))
        .flat_map(|(_, rules)| rules.iter().map(|(host, _)| host.clone()))
        .collect()
}

/// An Ingress's rules as [`rules`] gives them.
type Rules<'p> = Vec<(Option<HostPattern>, Vec<&'p str>)>;

/// The rules of each Ingress, parsed once for a round of [`plan`].
fn parse_rules<'p>(prepared: &'p [Prepared<'_>]) -> Vec<Rules<'p>> {
    prepared.iter().map(|p| rules(p).collect()).collect()
}

/// An Ingress's rules' hosts (parsed; `None`: no host) and their valid
/// paths, as the compile takes them.
fn rules<'p>(
    p: &'p Prepared<'_>,
) -> impl Iterator<Item = (Option<HostPattern>, Vec<&'p str>)> + 'p {
    let rules = p.ingress.spec.iter().flat_map(|s| s.rules.iter().flatten());
    rules.filter_map(|rule| {
        let host = match rule.host.as_deref().filter(|h| !h.is_empty()) {
            None => None,
            Some(h) => Some(HostPattern::parse(h).ok()?),
        };
        let paths = rule
            .http
            .iter()
            .flat_map(|h| &h.paths)
            .filter_map(|path| {
                let raw = path
                    .path
                    .as_deref()
                    .filter(|p| !p.is_empty())
                    .unwrap_or("/");
                paths::path_kind(&path.path_type).ok()?;
                paths::validate(&path.path_type, raw).ok()?;
                Some(raw)
            })
            .collect();
        Some((host, paths))
    })
}

/// The expressions an Ingress's routes need with `hosts` in regex mode.
fn needed(
    p: &Prepared<'_>,
    rules: &Rules<'_>,
    hosts: &HashSet<Option<HostPattern>>,
) -> BTreeSet<Key> {
    let mut keys = BTreeSet::new();
    if !p.annotations.refused.is_empty() || p.annotations.canary.is_some() {
        return keys;
    }
    let target = p.annotations.routing.rewrite_target.as_deref();
    for (host, paths) in rules {
        for &path in paths {
            if hosts.contains(host) {
                keys.insert(Key::Path(path.to_owned()));
            }
            if let Some(target) = target {
                keys.insert(Key::Rewrite(path.to_owned(), target.to_owned()));
            }
        }
    }
    keys
}

/// The newest Ingress asking for regex mode on a host over the per-host
/// limit, if any host is.
fn over_host_limit(
    prepared: &[Prepared<'_>],
    parsed: &[Rules<'_>],
    hosts: &HashSet<Option<HostPattern>>,
    limits: &RegexLimits,
) -> Option<usize> {
    let mut counts: HashMap<&Option<HostPattern>, usize> = HashMap::default();
    let mut newest: HashMap<&Option<HostPattern>, usize> = HashMap::default();
    for (index, (p, rules)) in prepared.iter().zip(parsed).enumerate() {
        if !p.annotations.refused.is_empty() || p.annotations.canary.is_some() {
            continue;
        }
        for (host, paths) in rules {
            let Some(host) = hosts.get(host) else {
                continue;
            };
            *counts.entry(host).or_default() += paths.len();
            if wants_regex(p) {
                newest.insert(host, index);
            }
        }
    }
    counts
        .iter()
        .filter(|(_, count)| **count > limits.per_host)
        .filter_map(|(host, _)| newest.get(host).copied())
        .max()
}

/// A warning on each Ingress that puts a host shared with other
/// namespaces in regex mode: their paths become case-insensitive regular
/// expressions too (ingress-nginx does the same).
fn shared_hosts(
    prepared: &[Prepared<'_>],
    parsed: &[Rules<'_>],
    hosts: &HashSet<Option<HostPattern>>,
) -> Vec<(NsName, Reason, String)> {
    let mut namespaces: HashMap<&Option<HostPattern>, BTreeSet<&str>> = HashMap::default();
    let all = prepared.iter().zip(parsed);
    for (p, rules) in all.clone().filter(|(p, _)| p.annotations.canary.is_none()) {
        for (host, _) in rules {
            if let Some(host) = hosts.get(host) {
                namespaces
                    .entry(host)
                    .or_default()
                    .insert(p.id.namespace.as_str());
            }
        }
    }
    let mut warnings = Vec::new();
    for (p, rules) in all.filter(|(p, _)| wants_regex(p)) {
        let mut seen = HashSet::default();
        for (host, _) in rules {
            let others: Vec<&str> = namespaces
                .get(host)
                .into_iter()
                .flatten()
                .copied()
                .filter(|ns| *ns != p.id.namespace)
                .collect();
            if others.is_empty() || !seen.insert(host.clone()) {
                continue;
            }
            let shown = host
                .as_ref()
                .map_or_else(|| "*".to_owned(), HostPattern::as_string);
            let message = format!(
                "use-regex or rewrite-target puts host {shown} in regex mode, which also makes the paths of the Ingresses of namespace(s) {} there case-insensitive regular expressions matched first-listed-longest-first (as ingress-nginx does)",
                others.join(", ")
            );
            warnings.push((p.id.clone(), Reason::SharedHostRegexMode, message));
        }
    }
    warnings
}
