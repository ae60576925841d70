//! Request paths and hosts as a client sends them: normalisation must never
//! panic, must produce a normal path, and lookups must stay consistent.
#![no_main]

use gateway::host::{HostPattern, normalize_request_host};
use gateway::path::{PathKind, PathRule, normalize_path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (host, path) = data.split_at(split);
    if let Ok(host) = std::str::from_utf8(host) {
        let _ = normalize_request_host(host);
        let _ = HostPattern::parse(host);
    }
    if let Ok(normal) = normalize_path(path) {
        assert!(normal.starts_with(b"/"));
        assert!(!normal.windows(2).any(|w| w == b"//"));
        if !normal.contains(&b'%') {
            let again = normalize_path(&normal).expect("a normal path normalises");
            assert_eq!(&*again, &*normal);
        }
    }
    if let Ok(path) = std::str::from_utf8(path) {
        let _ = PathRule::new(PathKind::Prefix, path);
        let _ = PathRule::new(PathKind::Exact, path);
    }
});
