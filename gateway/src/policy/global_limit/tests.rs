use std::net::{IpAddr, Ipv4Addr};

use http::{HeaderMap, Method, Uri};

use super::*;

fn request<'a>(uri: &'a Uri, headers: &'a HeaderMap, ip: IpAddr) -> AuthRequest<'a> {
    AuthRequest {
        method: &Method::GET,
        scheme: "http",
        host: "h.test",
        uri,
        headers,
        client_ip: ip,
        forwarded_for: None,
        request_id: None,
        underscores: false,
    }
}

/// A store on a port nothing listens on.
fn dead_store() -> Arc<GlobalStore> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Arc::new(GlobalStore::new(
        MemcachedConfig {
            host: "127.0.0.1".into(),
            port,
            timeout: Duration::from_millis(50),
            max_idle: Duration::from_secs(10),
            pool_size: 4,
        },
        StatusCode::TOO_MANY_REQUESTS,
    ))
}

fn limit(store: Arc<GlobalStore>, ignored: &str) -> GlobalLimit {
    GlobalLimit {
        namespace: "uid1".into(),
        limit: 5,
        window_seconds: 60,
        key: KeyTemplate::default(),
        ignored: if ignored.is_empty() {
            Vec::new()
        } else {
            crate::policy::access::parse_cidrs(ignored).unwrap()
        },
        store,
    }
}

#[tokio::test]
async fn a_dead_store_falls_back_to_the_replica_and_is_counted() {
    let limit = limit(dead_store(), "");
    let (uri, headers) = ("/".parse::<Uri>().unwrap(), HeaderMap::new());
    let ip = IpAddr::V4(Ipv4Addr::new(10, 1, 1, 1));
    let errors = STORE_ERRORS.load(Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for _ in 0..8 {
        outcomes.push(limit.check(&request(&uri, &headers, ip), ip).await);
    }
    // The window, counted here: the limit (5) or, extrapolated early in
    // the window, a little less.
    let passed = outcomes.iter().take_while(|o| o.is_ok()).count();
    assert!((2..=5).contains(&passed), "{outcomes:?}");
    assert_eq!(
        outcomes[passed],
        Err(Limited {
            status: StatusCode::TOO_MANY_REQUESTS,
            exceeding: b'y'
        })
    );
    // The refusal is remembered.
    assert_eq!(outcomes[passed + 1].unwrap_err().exceeding, b'c');
    // One failed call, then the store rests.
    assert!(STORE_ERRORS.load(Ordering::Relaxed) > errors);
    assert!(limit.store.resting());
}

#[tokio::test]
async fn ignored_cidrs_are_never_limited() {
    let limit = limit(dead_store(), "10.2.0.0/16");
    let (uri, headers) = ("/".parse::<Uri>().unwrap(), HeaderMap::new());
    let ip = IpAddr::V4(Ipv4Addr::new(10, 2, 3, 4));
    for _ in 0..20 {
        assert!(limit.check(&request(&uri, &headers, ip), ip).await.is_ok());
    }
}

#[test]
fn store_keys_are_escaped_and_bounded() {
    assert_eq!(store_key("ns", "10.0.0.1"), "ns.10.0.0.1");
    assert_eq!(store_key("ns", "a b\r\n"), "ns.a%20b%0D%0A");
    let long = store_key("ns", &"x".repeat(500));
    assert!(long.len() <= MAX_KEY && long.starts_with("ns.h"), "{long}");
}
