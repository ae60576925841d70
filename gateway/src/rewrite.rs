//! ingress-nginx's regex mode and `rewrite-target`.
//!
//! When any Ingress of a host sets `use-regex: "true"` or a
//! `rewrite-target`, every path of that host becomes a regular expression
//! matched case-insensitively from the start of the path (`~* "^<path>"`),
//! tried longest path first; the first match wins, not the best one
//! (`docs/user-guide/ingress-path-matching.md`).
//!
//! `rewrite-target` replaces the whole path when the rule's expression
//! matches (nginx `rewrite "(?i)<path>" <target> break;`), with `$1`..`$9`
//! taken from the expression's groups. Expressions use Rust's regex syntax
//! (PCRE's without look-around and back-references), are size-limited and
//! run in linear time, so no path can stall the gateway.
//!
//! Like nginx's (PCRE without its UTF mode), expressions work on bytes
//! with ASCII classes: `\w`, `\d`, `\s`, `.` and case folding do not take
//! Unicode. Besides matching what nginx matches, this keeps them small:
//! Rust's default Unicode `\w` compiles to some 300 KB and 9 ms per
//! pattern, ASCII to some 5 KB and 0.3 ms (an Ingress of 800 such paths
//! took 953 MB and 33 s to compile with Unicode classes).

use std::sync::Arc;

use regex::bytes::{Regex, RegexBuilder};
use regex_automata::meta;
use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};

use crate::ids::RouteId;
use crate::literal_prefix::{self, LiteralPrefix};

/// Compiled size limit of one path expression (its automaton).
pub const SIZE_LIMIT: usize = 64 << 10;

/// The lazy DFA cache of one path expression, per thread matching it.
const DFA_CACHE: usize = 256 << 10;

/// Why a regex path or rewrite target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegexError {
    /// The expression does not compile (or is too large).
    #[error("invalid regular expression: {0}")]
    Invalid(String),
    /// A `$variable` other than `$1`..`$9` in a rewrite target.
    #[error("{0} is not supported in rewrite-target; only $1 to $9 are")]
    Variable(String),
    /// A target that does not start with `/` or an absolute http(s) URL.
    #[error("rewrite-target must be a path starting with '/'")]
    NotAPath,
}

/// The syntax of regex paths: ASCII, bytes, case-insensitive (nginx's `~*`).
fn path_syntax() -> syntax::Config {
    syntax::Config::new()
        .unicode(false)
        .utf8(false)
        .case_insensitive(true)
}

/// How regex paths are compiled: without capture groups and without the
/// one-pass DFA, which only serves capture groups (only which path
/// matches is asked; the one-pass DFA took 17 MiB of 1,000 paths), within
/// `size_limit`.
fn path_config(size_limit: usize) -> meta::Config {
    meta::Config::new()
        .which_captures(WhichCaptures::None)
        .nfa_size_limit(Some(size_limit))
        .onepass(false)
        .hybrid_cache_capacity(DFA_CACHE)
}

/// `^(?:<path>)`: a regex path anchored at the start of the request path.
fn anchored(path: &str) -> String {
    format!("^(?:{path})")
}

/// A rule path in regex mode: only whether it matches is asked, so it is
/// compiled without capture groups.
#[derive(Clone, Debug)]
pub struct RegexPath {
    regex: meta::Regex,
    source: Arc<str>,
}

impl RegexPath {
    /// Compiles `^<path>`, case-insensitively, as ingress-nginx's `~*`.
    pub fn new(path: &str) -> Result<Self, RegexError> {
        let regex = meta::Builder::new()
            .syntax(path_syntax())
            .configure(path_config(SIZE_LIMIT))
            .build(&anchored(path))
            .map_err(|e| RegexError::Invalid(e.to_string()))?;
        Ok(Self {
            regex,
            source: path.into(),
        })
    }

    /// The heap the compiled expression holds (not its per-thread search
    /// caches, each at most a lazy DFA of 256 KiB).
    pub fn memory_usage(&self) -> usize {
        self.regex.memory_usage()
    }

    fn is_match(&self, path: &[u8]) -> bool {
        self.regex.is_match(path)
    }
}

/// Compiled size limit of one pass of a [`RegexUnion`].
pub const UNION_SIZE_LIMIT: usize = 1 << 20;

/// The regex paths of one host compiled together, so that finding the
/// first one that matches (in ingress-nginx's order) is one run of one
/// automaton instead of one run per path: all paths are anchored at the
/// start, so the leftmost-first match of the union is the match of the
/// first path (lowest index) that matches.
///
/// A union too large for one pass ([`UNION_SIZE_LIMIT`]) is split into
/// consecutive passes tried in order, which keeps the order.
#[derive(Debug)]
pub struct RegexUnion {
    sources: Box<[Arc<str>]>,
    passes: Box<[Pass]>,
}

/// Consecutive paths of a union compiled together.
#[derive(Debug)]
struct Pass {
    /// The index of its first path.
    first: usize,
    /// What all its paths require first, compared before `regex` runs on
    /// the rest of the path (see [`crate::literal_prefix`]).
    prefix: LiteralPrefix,
    regex: meta::Regex,
}

impl RegexUnion {
    /// Compiles `paths` (in matching order) into as few passes as fit the
    /// size limit. Fails only if a path alone does not compile.
    pub fn new(paths: &[&str]) -> Result<Self, RegexError> {
        let mut passes = Vec::new();
        Self::compile_passes(paths, 0, &mut passes)?;
        Ok(Self {
            sources: paths.iter().map(|p| Arc::from(*p)).collect(),
            passes: passes.into_boxed_slice(),
        })
    }

    /// Compiles `paths` (starting at index `first`) as one pass, or, if
    /// that is over the limit, each half on its own.
    fn compile_passes(
        paths: &[&str],
        first: usize,
        passes: &mut Vec<Pass>,
    ) -> Result<(), RegexError> {
        if paths.is_empty() {
            return Ok(());
        }
        let patterns: Vec<String> = paths.iter().map(|p| anchored(p)).collect();
        let limit = if paths.len() == 1 {
            SIZE_LIMIT
        } else {
            UNION_SIZE_LIMIT
        };
        // Which path matched is reported through each pattern's implicit
        // group: without it a meta regex answers only `is_match`.
        let config = path_config(limit).which_captures(WhichCaptures::Implicit);
        let builder = meta::Builder::new()
            .syntax(path_syntax())
            .configure(config)
            .clone();
        // Parsed once here; a path that does not parse is left to the
        // builder, whose error names the problem as for a single path.
        let built = match syntax::parse_many_with(&patterns, &path_syntax()) {
            Ok(parsed) => match literal_prefix::split(&parsed) {
                Some((prefix, rests)) => builder.build_many_from_hir(&rests).map(|r| (prefix, r)),
                None => builder
                    .build_many_from_hir(&parsed)
                    .map(|r| (LiteralPrefix::default(), r)),
            },
            Err(_) => builder
                .build_many(&patterns)
                .map(|r| (LiteralPrefix::default(), r)),
        };
        match built {
            Ok((prefix, regex)) => {
                passes.push(Pass {
                    first,
                    prefix,
                    regex,
                });
                Ok(())
            }
            Err(e) if paths.len() == 1 => Err(RegexError::Invalid(e.to_string())),
            Err(_) => {
                let half = paths.len() / 2;
                Self::compile_passes(&paths[..half], first, passes)?;
                Self::compile_passes(&paths[half..], first + half, passes)
            }
        }
    }

    /// The paths it was compiled from, in matching order.
    pub fn sources(&self) -> impl ExactSizeIterator<Item = &str> {
        self.sources.iter().map(|s| &**s)
    }

    /// The number of passes a lookup may make.
    #[cfg(test)]
    fn passes(&self) -> usize {
        self.passes.len()
    }

    /// The index of the first path that matches `path`, if any.
    fn first_match(&self, path: &[u8]) -> Option<usize> {
        self.passes.iter().find_map(|pass| {
            let rest = pass.prefix.strip(path)?;
            let input = Input::new(rest).anchored(Anchored::Yes);
            Some(pass.first + pass.regex.search_half(&input)?.pattern().as_usize())
        })
    }
}

/// The regex-mode paths of one server, in ingress-nginx's order.
#[derive(Debug, Default)]
pub(crate) struct RegexIndex {
    rules: Vec<(RegexPath, RouteId)>,
    /// The same paths compiled together, once the control plane has them.
    union: Option<Arc<RegexUnion>>,
}

impl RegexIndex {
    pub(crate) fn push(&mut self, rule: RegexPath, route: RouteId) {
        // Longest path first; equal lengths keep their order (a stable sort).
        let at = self
            .rules
            .partition_point(|(r, _)| r.source.len() >= rule.source.len());
        self.rules.insert(at, (rule, route));
        self.union = None;
    }

    /// The paths in matching order, to compile a [`RegexUnion`] from.
    pub(crate) fn sources(&self) -> impl ExactSizeIterator<Item = &str> {
        self.rules.iter().map(|(r, _)| &*r.source)
    }

    /// Matches with `union` from now on, if it was compiled from these very
    /// paths in this order; returns whether it was taken.
    pub(crate) fn set_union(&mut self, union: Arc<RegexUnion>) -> bool {
        let same = union.sources().eq(self.sources());
        if same {
            self.union = Some(union);
        }
        same
    }

    /// The first rule matching the path (normalised, as nginx's `$uri`).
    pub(crate) fn lookup(&self, path: &[u8]) -> Option<RouteId> {
        match &self.union {
            Some(union) => {
                let index = union.first_match(path)?;
                self.rules.get(index).map(|(_, id)| *id)
            }
            None => self
                .rules
                .iter()
                .find(|(r, _)| r.is_match(path))
                .map(|(_, id)| *id),
        }
    }
}

/// A route's `rewrite-target`, applied as nginx's `rewrite ... break;`
/// followed by `proxy_pass` without a URI:
///
/// - the expression runs on the decoded, normalised path (nginx's `$uri`)
///   and `$1`..`$9` copy its groups as they are there, decoded;
/// - the new path is then escaped as nginx escapes a changed URI for the
///   upstream (`NGX_ESCAPE_URI`: `%`, `?`, `#`, space, controls, non-ASCII
///   and `"<>\\^\`{|}` become `%XX`), so `/api/%252e%252e/x` rewritten by
///   `/$1` goes up as `/%252e%252e/x`, and `/api/x%3Fa=1` as `/x%3Fa=1`
///   rather than turning its `?` into a query;
/// - groups in the target's own query (after its `?`) are escaped with
///   `NGX_ESCAPE_ARGS` when the request path held `%` or `+`, else copied;
/// - the request's query follows (`&` after the target's, `?` without),
///   unless the target ends with `?`.
#[derive(Clone, Debug)]
pub struct Rewrite {
    regex: Regex,
    path: Vec<Part>,
    query: Option<Vec<Part>>,
    /// False when the target ends with `?` (the request's query is dropped).
    keep_query: bool,
}

/// A piece of a rewrite target.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Group(usize),
}

impl Rewrite {
    /// The rewrite of a rule `path` to `target`.
    pub fn new(path: &str, target: &str) -> Result<Self, RegexError> {
        if !target.starts_with('/') {
            return Err(RegexError::NotAPath);
        }
        if target
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'#')
        {
            return Err(RegexError::NotAPath);
        }
        let regex = RegexBuilder::new(path)
            .case_insensitive(true)
            .unicode(false)
            .size_limit(SIZE_LIMIT)
            .dfa_size_limit(DFA_CACHE)
            .build()
            .map_err(|e| RegexError::Invalid(e.to_string()))?;
        let (target, keep_query) = match target.strip_suffix('?') {
            Some(stripped) => (stripped, false),
            None => (target, true),
        };
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        Ok(Self {
            regex,
            path: parts(path)?,
            query: query.map(parts).transpose()?,
            keep_query,
        })
    }

    /// The new path and query for a request: `decoded` is its normalised
    /// path (what the rule matched), `raw` its path as sent, `query` its
    /// query. `None` when the expression does not match (the request goes
    /// up unchanged).
    pub fn apply(&self, decoded: &str, raw: &str, query: Option<&str>) -> Option<String> {
        let captures = self.regex.captures(decoded.as_bytes())?;
        let group = |n: usize| captures.get(n).map_or(&b""[..], |m| m.as_bytes());
        let mut path = Vec::with_capacity(decoded.len() + 16);
        for part in &self.path {
            match part {
                Part::Text(text) => path.extend_from_slice(text.as_bytes()),
                Part::Group(n) => path.extend_from_slice(group(*n)),
            }
        }
        let mut out = escape(&path, &URI);
        if let Some(parts) = &self.query {
            let quoted = raw.bytes().any(|b| b == b'%' || b == b'+');
            out.push('?');
            for part in parts {
                match part {
                    Part::Text(text) => out.push_str(text),
                    Part::Group(n) if quoted => out.push_str(&escape(group(*n), &ARGS)),
                    // Copied as matched; a group the byte-wise expression
                    // cut inside a character is escaped rather than mangled.
                    Part::Group(n) => match std::str::from_utf8(group(*n)) {
                        Ok(text) => out.push_str(text),
                        Err(_) => out.push_str(&escape(group(*n), &ARGS)),
                    },
                }
            }
        }
        if let Some(query) = query.filter(|q| self.keep_query && !q.is_empty()) {
            out.push(if self.query.is_some() { '&' } else { '?' });
            out.push_str(query);
        }
        Some(out)
    }
}

/// nginx's `$1`..`$9` in a target; `$$` and other `$names` are refused
/// rather than guessed.
fn parts(target: &str) -> Result<Vec<Part>, RegexError> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut chars = target.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            text.push(c);
            continue;
        }
        match chars.peek().and_then(|d| d.to_digit(10)) {
            Some(digit) => {
                chars.next();
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::Group(digit as usize));
            }
            None => {
                let name: String = chars
                    .clone()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                return Err(RegexError::Variable(format!("${name}")));
            }
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

/// One of nginx's escape tables (`ngx_escape_uri`): a bit per byte, set
/// for the bytes written as `%XX`.
struct EscapeTable([u32; 8]);

/// `NGX_ESCAPE_URI`: space, `"`, `#`, `%`, `<`, `>`, `?`, `\`, `^`, `` ` ``,
/// `{`, `|`, `}`, controls, DEL and every non-ASCII byte.
static URI: EscapeTable = EscapeTable([
    0xffff_ffff,
    0xd000_002d,
    0x5000_0000,
    0xb800_0001,
    0xffff_ffff,
    0xffff_ffff,
    0xffff_ffff,
    0xffff_ffff,
]);

/// `NGX_ESCAPE_ARGS`: as [`URI`], plus `&`, `+` and `;`.
static ARGS: EscapeTable = EscapeTable([
    0xffff_ffff,
    0xd800_086d,
    0x5000_0000,
    0xb800_0001,
    0xffff_ffff,
    0xffff_ffff,
    0xffff_ffff,
    0xffff_ffff,
]);

/// `text` with the bytes `table` names written as `%XX` (upper case hex).
fn escape(text: &[u8], table: &EscapeTable) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for &b in text {
        if table.0[usize::from(b >> 5)] & (1 << (b & 0x1f)) != 0 {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(paths: &[&str]) -> RegexIndex {
        let mut index = RegexIndex::default();
        for (i, p) in paths.iter().enumerate() {
            index.push(RegexPath::new(p).unwrap(), RouteId(i));
        }
        index
    }

    /// The index with its paths compiled together.
    fn united(index: &RegexIndex) -> RegexIndex {
        let sources: Vec<&str> = index.sources().collect();
        let mut united = RegexIndex {
            rules: index.rules.clone(),
            union: None,
        };
        assert!(united.set_union(Arc::new(RegexUnion::new(&sources).unwrap())));
        united
    }

    /// The route found, one path at a time and in one pass (both must agree).
    fn find(index: &RegexIndex, path: &str) -> Option<usize> {
        let one_by_one = index.lookup(path.as_bytes()).map(|id| id.0);
        let together = united(index).lookup(path.as_bytes()).map(|id| id.0);
        assert_eq!(one_by_one, together, "{path}");
        one_by_one
    }

    #[test]
    fn a_union_takes_only_its_own_paths_in_their_order() {
        let mut index = index(&["/a/b", "/a"]);
        let other = RegexUnion::new(&["/a", "/a/b"]).unwrap();
        assert!(!index.set_union(Arc::new(other)), "order differs");
        let shorter = RegexUnion::new(&["/a/b"]).unwrap();
        assert!(!index.set_union(Arc::new(shorter)));
        let same = RegexUnion::new(&["/a/b", "/a"]).unwrap();
        assert!(index.set_union(Arc::new(same)));
        index.push(RegexPath::new("/c").unwrap(), RouteId(2));
        assert!(index.union.is_none(), "a new path drops the union");
        assert_eq!(find(&index, "/C/d"), Some(2));
    }

    /// Paths too large to compile together are split into passes tried in
    /// order: still the first match in matching order.
    #[test]
    fn a_union_over_its_size_limit_is_split_into_ordered_passes() {
        let big = |i: usize| format!("/p{i}/\\w{{1,300}}/[a-z]{{1,200}}");
        let paths: Vec<String> = (0..40).map(big).chain(["/p".to_owned()]).collect();
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let union = RegexUnion::new(&refs).unwrap();
        assert!(union.passes() > 1, "{} passes", union.passes());
        assert!(union.passes() < refs.len());
        assert_eq!(union.first_match(b"/p17/abc/def"), Some(17));
        assert_eq!(union.first_match(b"/p39/x_/y"), Some(39));
        assert_eq!(union.first_match(b"/p17/"), Some(40));
        assert_eq!(union.first_match(b"/q"), None);
    }

    /// Pieces of regex paths for the property test below.
    const PIECES: &[&str] = &[
        "/a", "/b", "/ab", "/[ab]+", "/[a-c]*", "/\\d+", "/x?", "(/|$)", "/.*", "$", "/(a|b)",
        "/api", "/A", "(?-i)/B", "(?-i:a)", "\\b", "\\B", "1", "/a1", "x*", "(?m)^",
    ];

    proptest::proptest! {
        /// One pass finds what trying each path in order finds.
        #[test]
        fn a_union_finds_the_first_match_in_order(
            paths in proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(PIECES), 1..5),
                1..12,
            ),
            requests in proptest::collection::vec("(/(a|b|A|B|c|1|ab|x|api|API|Api)*){1,5}", 1..20),
        ) {
            let paths: Vec<String> = paths.iter().map(|p| p.concat()).collect();
            let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
            let index = index(&refs);
            for request in &requests {
                let _ = find(&index, request);
            }
        }
    }

    #[test]
    fn start_anchored_case_insensitive_longest_first() {
        let index = index(&["/id/[0-9]+", "/", "/api/v1"]);
        assert_eq!(
            find(&index, "/id/123a"),
            Some(0),
            "anchored at the start only"
        );
        assert_eq!(find(&index, "/ID/7"), Some(0));
        assert_eq!(find(&index, "/API/V1/x"), Some(2));
        assert_eq!(find(&index, "/other"), Some(1));
        assert_eq!(find(&index, "/x/id/1"), Some(1));
        assert!(RegexPath::new("/a(").is_err());
    }

    /// nginx's PCRE runs without UTF mode: classes and case folding are
    /// ASCII, and a path that is not UTF-8 can match.
    #[test]
    fn classes_are_ascii_and_paths_are_bytes() {
        let index = index(&["/w/\\w+$", "/any/.+"]);
        assert_eq!(find(&index, "/w/abc_9"), Some(0));
        assert_eq!(find(&index, "/w/caf\u{e9}"), None, "\\w is ASCII");
        assert_eq!(index.lookup(b"/any/\xff\xfe").map(|id| id.0), Some(1));
        let big = RegexPath::new("/x/\\w{5000}");
        assert!(big.is_err(), "over the size limit");
        let usual = RegexPath::new("/api/v1/(\\w+)/(\\w+)/(.*)/items/[a-z0-9-]+/(\\d+)").unwrap();
        assert!(
            usual.memory_usage() < SIZE_LIMIT,
            "{}",
            usual.memory_usage()
        );
    }

    #[test]
    fn rewrites_with_captures_like_nginx() {
        let r = Rewrite::new("/something(/|$)(.*)", "/$2").unwrap();
        let plain = |r: &Rewrite, path: &str, query| r.apply(path, path, query);
        assert_eq!(plain(&r, "/something/new", None).as_deref(), Some("/new"));
        assert_eq!(
            plain(&r, "/something", Some("a=1")).as_deref(),
            Some("/?a=1")
        );
        assert_eq!(plain(&r, "/SOMETHING/x/y", None).as_deref(), Some("/x/y"));
        assert_eq!(plain(&r, "/else", None), None);
        let whole = Rewrite::new("/foo", "/").unwrap();
        assert_eq!(
            plain(&whole, "/foo/bar", None).as_deref(),
            Some("/"),
            "the whole path is replaced"
        );
        let digits = Rewrite::new("/v(\\d+)/(.*)", "/api/$1x/$2?from=gw").unwrap();
        assert_eq!(
            plain(&digits, "/v2/items", Some("q=1")).as_deref(),
            Some("/api/2x/items?from=gw&q=1")
        );
        let spaces = Rewrite::new("/s/(.*)", "/$1").unwrap();
        assert_eq!(
            spaces.apply("/s/a b", "/s/a%20b", None).as_deref(),
            Some("/a%20b")
        );
        let dropped = Rewrite::new("/d/(.*)", "/$1?").unwrap();
        assert_eq!(plain(&dropped, "/d/x", Some("q=1")).as_deref(), Some("/x"));
    }

    /// What nginx sends upstream, worked out from `ngx_http_script.c`
    /// (captures copied from `$uri`) and `ngx_http_proxy_module.c` (a
    /// rewritten URI escaped with `NGX_ESCAPE_URI`).
    #[test]
    fn rewritten_targets_are_escaped_as_nginx_escapes_them() {
        let api = Rewrite::new("/api/(.*)", "/$1").unwrap();
        // `%252e` decodes once to `%2e`, which must stay literal.
        assert_eq!(
            api.apply("/api/%2e%2e/admin", "/api/%252e%252e/admin", None)
                .as_deref(),
            Some("/%252e%252e/admin")
        );
        // An encoded `?` is part of the path, not a query.
        assert_eq!(
            api.apply("/api/x?admin=1", "/api/x%3Fadmin=1", Some("q=2"))
                .as_deref(),
            Some("/x%3Fadmin=1?q=2")
        );
        assert_eq!(
            api.apply("/api/a#b\"c<é", "/api/a%23b%22c%3C%C3%A9", None)
                .as_deref(),
            Some("/a%23b%22c%3C%C3%A9")
        );
        // Groups in the target's query: escaped as arguments when the
        // request path was quoted, copied otherwise.
        let args = Rewrite::new("/q/(.*)", "/search?term=$1").unwrap();
        assert_eq!(
            args.apply("/q/a&b c", "/q/a%26b%20c", None).as_deref(),
            Some("/search?term=a%26b%20c")
        );
        assert_eq!(
            args.apply("/q/a,b", "/q/a,b", Some("x=1")).as_deref(),
            Some("/search?term=a,b&x=1")
        );
        for target in ["/x#frag", "/$host"] {
            assert!(Rewrite::new("/a", target).is_err(), "{target}");
        }
    }

    #[test]
    fn refuses_variables_and_non_paths() {
        assert_eq!(parts("/a$1b").unwrap().len(), 3);
        assert_eq!(
            Rewrite::new("/a", "/$host/x").unwrap_err(),
            RegexError::Variable("$host".to_owned())
        );
        assert_eq!(
            Rewrite::new("/a", "http://x").unwrap_err(),
            RegexError::NotAPath
        );
        assert!(Rewrite::new("/a", "/b\nc").is_err());
    }
}
