//! The ConfigMap's `block-user-agents` and `block-referers`: requests whose
//! `User-Agent` or `Referer` matches an entry are refused with 403 before
//! routing, as the `map` + `if (...) { return 403; }` ingress-nginx puts in
//! every server. Entries follow nginx's `map` (see [`crate::blocklist`]).

use std::net::IpAddr;

use http::HeaderMap;
use http::header::{HeaderName, REFERER, USER_AGENT};

use super::Globals;
use super::access::any_contains;
pub use crate::blocklist::Blocklist;

/// Whether the ConfigMap refuses this request outright: its client is in
/// `block-cidrs`, or its `User-Agent` or `Referer` is blocked.
pub fn refused(globals: &Globals, client: IpAddr, headers: &HeaderMap) -> bool {
    any_contains(&globals.block, client)
        || blocked(
            globals.block_user_agents.as_ref(),
            globals.block_referers.as_ref(),
            headers,
        )
}

/// Whether the request's `User-Agent` or `Referer` is blocked. A missing
/// header matches nothing (nginx's map gives the default, 0).
pub fn blocked(
    user_agents: Option<&Blocklist>,
    referers: Option<&Blocklist>,
    headers: &HeaderMap,
) -> bool {
    let hit = |list: Option<&Blocklist>, name: &HeaderName| {
        list.is_some_and(|list| {
            headers
                .get(name)
                .is_some_and(|v| !v.is_empty() && list.matches(v.as_bytes()))
        })
    };
    hit(user_agents, &USER_AGENT) || hit(referers, &REFERER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn list(value: &str) -> Blocklist {
        Blocklist::parse(value).unwrap().unwrap()
    }

    #[test]
    fn blocked_checks_both_headers() {
        let ua = list("~*bot");
        let referers = list("https://spam.example/");
        let mut h = HeaderMap::new();
        assert!(!blocked(Some(&ua), Some(&referers), &h));
        h.insert(USER_AGENT, HeaderValue::from_static("Mozilla/5.0"));
        assert!(!blocked(Some(&ua), Some(&referers), &h));
        h.insert(REFERER, HeaderValue::from_static("https://SPAM.example/"));
        assert!(blocked(Some(&ua), Some(&referers), &h));
        assert!(!blocked(Some(&ua), None, &h));
        h.insert(USER_AGENT, HeaderValue::from_static("GoodBot/1"));
        assert!(blocked(Some(&ua), None, &h));
        assert!(!blocked(None, None, &h));
    }
}
