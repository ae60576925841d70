//! A list of values in nginx `map` syntax, as the ConfigMap's
//! `block-user-agents`, `block-referers` and `skip-access-log-urls` take
//! it: a plain string matches the whole value, case-insensitively;
//! `~regex` is a case-sensitive search and `~*regex` a case-insensitive
//! one. Patterns are compiled once, when the ConfigMap is read; the syntax
//! is Rust's `regex` (no look-around or backreferences). A leaf: imports
//! nothing of the crate.

use regex::bytes::{Regex, RegexBuilder};

/// Compiled size limit of one pattern.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// One list of values (blocked header values, skipped URIs).
#[derive(Clone, Debug)]
pub struct Blocklist {
    /// The entries as written, for comparison and display.
    source: String,
    /// Plain entries, lower-cased.
    exact: Vec<Box<[u8]>>,
    /// `~` and `~*` entries.
    patterns: Vec<Regex>,
}

impl PartialEq for Blocklist {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Blocklist {}

impl Blocklist {
    /// Parses a comma-separated list (ingress-nginx splits on `,` and trims
    /// each entry); `None` when it has no entry.
    pub fn parse(value: &str) -> Result<Option<Blocklist>, String> {
        let mut list = Blocklist {
            source: value.to_owned(),
            exact: Vec::new(),
            patterns: Vec::new(),
        };
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (pattern, insensitive) = match entry.strip_prefix("~*") {
                Some(p) => (p, true),
                None => match entry.strip_prefix('~') {
                    Some(p) => (p, false),
                    None => {
                        list.exact
                            .push(entry.to_ascii_lowercase().into_bytes().into());
                        continue;
                    }
                },
            };
            let regex = RegexBuilder::new(pattern)
                .case_insensitive(insensitive)
                .size_limit(PATTERN_SIZE_LIMIT)
                .build()
                .map_err(|e| format!("{entry:?} is not a valid regular expression: {e}"))?;
            list.patterns.push(regex);
        }
        if list.exact.is_empty() && list.patterns.is_empty() {
            return Ok(None);
        }
        Ok(Some(list))
    }

    /// Whether `value` is blocked.
    pub fn matches(&self, value: &[u8]) -> bool {
        self.exact.iter().any(|e| e.eq_ignore_ascii_case(value))
            || self.patterns.iter().any(|p| p.is_match(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(value: &str) -> Blocklist {
        Blocklist::parse(value).unwrap().unwrap()
    }

    #[test]
    fn plain_entries_match_the_whole_value_in_any_case() {
        let l = list(" curl/8.0 , Bad Bot");
        assert!(l.matches(b"curl/8.0"));
        assert!(l.matches(b"CURL/8.0"));
        assert!(l.matches(b"bad bot"));
        assert!(!l.matches(b"curl/8.0.1"));
        assert!(!l.matches(b"xcurl/8.0"));
    }

    #[test]
    fn regex_entries_search_with_their_case_rule() {
        let l = list("~^Wget,~*python-requests");
        assert!(l.matches(b"Wget/1.21"));
        assert!(!l.matches(b"wget/1.21"), "~ is case-sensitive");
        assert!(!l.matches(b"x Wget"), "anchors apply");
        assert!(l.matches(b"my PYTHON-Requests/2.31"));
    }

    #[test]
    fn empty_and_invalid_lists() {
        assert_eq!(Blocklist::parse("").unwrap(), None);
        assert_eq!(Blocklist::parse(" , ,").unwrap(), None);
        let error = Blocklist::parse("ok,~(unclosed").unwrap_err();
        assert!(error.contains("~(unclosed"), "{error}");
    }
}
