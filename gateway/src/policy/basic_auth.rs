//! `auth-type: basic`: the `Authorization: Basic` credentials of a request
//! checked against an [`Htpasswd`], with nginx's 401 and `WWW-Authenticate`
//! challenge when they are missing or wrong.
//!
//! Password hashes are slow on purpose (bcrypt at cost 10 takes tens of
//! milliseconds), and an API client sends the same credentials on every
//! request, so successful checks are remembered ([`VERIFIED_CACHE_ENTRIES`]
//! of them, as salted SHA-256 digests, never the passwords): a repeat
//! costs one SHA-256. nginx has no such cache and pays the hash on every
//! request. Failures are never remembered.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::StatusCode;
use http::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;

use super::htpasswd::Htpasswd;
use crate::refusal::Refusal;

/// ingress-nginx's realm when the Ingress has no `auth-realm`.
pub const DEFAULT_REALM: &str = "Authentication Required";

/// The longest `Authorization` header value read; a longer one is refused
/// without decoding (credentials are a few dozen bytes).
pub const MAX_AUTHORIZATION_BYTES: usize = 4096;

/// How many successful credential checks are remembered per [`BasicAuth`].
pub const VERIFIED_CACHE_ENTRIES: usize = 1024;

/// Base64 as browsers and curl send it, padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Basic authentication for one route: the realm of the challenge and the
/// users allowed in.
#[derive(Debug)]
pub struct BasicAuth {
    realm: String,
    challenge: HeaderValue,
    users: Arc<Htpasswd>,
    verified: VerifiedCache,
}

impl BasicAuth {
    /// Checks requests against `users`, challenging with `realm` (pass
    /// [`DEFAULT_REALM`] when the Ingress sets no `auth-realm`). Quotes,
    /// backslashes and control characters in the realm are escaped or
    /// replaced, so that the challenge header stays one valid header.
    pub fn new(realm: impl Into<String>, users: Arc<Htpasswd>) -> Self {
        let realm = realm.into();
        let challenge = challenge_header(&realm);
        Self {
            realm,
            challenge,
            users,
            verified: VerifiedCache::new(),
        }
    }

    /// The realm, as configured.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Lets the request through when its `Authorization` header carries
    /// Basic credentials of a known user with the right password; otherwise
    /// the 401 response to send, with the `WWW-Authenticate` challenge
    /// (boxed: a response head is large, and the `Ok` path is the hot one).
    /// A cache miss costs one password hash computation (see the module
    /// documentation).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Box<Refusal>> {
        match self.check_cached(headers) {
            Some(decided) => decided,
            None => self.check_hashing(headers),
        }
    }

    /// The decision when it needs no password hash: missing or malformed
    /// credentials (refused), or credentials that verified before
    /// (admitted). `None` when [`BasicAuth::check_hashing`] must decide,
    /// which the caller may run off the request threads.
    pub fn check_cached(&self, headers: &HeaderMap) -> Option<Result<(), Box<Refusal>>> {
        let Some((user, password)) = basic_credentials(headers) else {
            return Some(Err(self.unauthorized()));
        };
        let key = self.verified.key(&user, &password);
        self.verified.contains(&key).then_some(Ok(()))
    }

    /// [`BasicAuth::check`] computing the password hash: milliseconds of
    /// CPU for bcrypt or SHA-crypt.
    pub fn check_hashing(&self, headers: &HeaderMap) -> Result<(), Box<Refusal>> {
        let Some((user, password)) = basic_credentials(headers) else {
            return Err(self.unauthorized());
        };
        let key = self.verified.key(&user, &password);
        if self.users.verify(&user, &password) {
            self.verified.insert(key);
            Ok(())
        } else {
            tracing::debug!(user = %user.escape_debug(), "basic auth: wrong user or password");
            Err(self.unauthorized())
        }
    }

    fn unauthorized(&self) -> Box<Refusal> {
        let mut response = Refusal::error_page(StatusCode::UNAUTHORIZED);
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, self.challenge.clone());
        Box::new(response)
    }
}

/// How long a request waits for a free hashing slot before it is refused
/// with 503 (see [`check_offloaded`]).
pub const HASH_WAIT: Duration = Duration::from_secs(2);

/// The process-wide bound on password hashes computed at once: one per
/// core (at least 2), so that a flood of wrong passwords occupies at most
/// that many blocking threads and cores.
fn hashing_slots() -> &'static Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Semaphore::new(cores.clamp(2, 64)))
    })
}

/// [`BasicAuth::check`] for an async caller: the cached decisions at once;
/// a password hash (milliseconds of CPU) on Tokio's blocking pool, once
/// one of the process's hashing slots is free. A request that finds none
/// within [`HASH_WAIT`] gets 503 with `Retry-After: 1`, and nothing is
/// hashed for it.
pub(crate) async fn check_offloaded(
    basic: &Arc<BasicAuth>,
    headers: &HeaderMap,
) -> Result<(), Box<Refusal>> {
    check_with_slots(basic, headers, hashing_slots(), HASH_WAIT).await
}

async fn check_with_slots(
    basic: &Arc<BasicAuth>,
    headers: &HeaderMap,
    slots: &Arc<Semaphore>,
    wait: Duration,
) -> Result<(), Box<Refusal>> {
    if let Some(decided) = basic.check_cached(headers) {
        return decided;
    }
    let Ok(Ok(slot)) = tokio::time::timeout(wait, slots.clone().acquire_owned()).await else {
        tracing::warn!(
            ?wait,
            "basic auth: every password hashing slot stayed busy; answering 503"
        );
        let mut busy = Refusal::error_page(StatusCode::SERVICE_UNAVAILABLE);
        busy.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        return Err(Box::new(busy));
    };
    let mut credentials = HeaderMap::new();
    if let Some(value) = headers.get(AUTHORIZATION) {
        credentials.insert(AUTHORIZATION, value.clone());
    }
    let basic = basic.clone();
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        basic.check_hashing(&credentials)
    })
    .await
    .unwrap_or_else(|_| {
        Err(Box::new(Refusal::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
        )))
    })
}

/// Removes the client's `Authorization` header from a request about to go
/// upstream: ingress-nginx does so (`proxy_set_header Authorization ""`) on
/// routes with basic authentication, so that backends never see the
/// gateway's credentials.
pub fn strip_authorization(headers: &mut HeaderMap) {
    headers.remove(AUTHORIZATION);
}

/// The user and password of a request's `Authorization: Basic` header
/// (scheme case-insensitive, value at most [`MAX_AUTHORIZATION_BYTES`],
/// base64 of UTF-8 `user:password`); `None` when absent or malformed.
/// Also nginx's `$remote_user` for the external authentication templates.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return None;
    }
    let value = value.trim_ascii();
    let split = value.iter().position(|b| *b == b' ' || *b == b'\t')?;
    let (scheme, token) = value.split_at(split);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = BASE64.decode(token.trim_ascii()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// `Basic realm="<realm>"` with the realm as a valid quoted-string: `"`
/// and `\` escaped, control characters (which no header may carry)
/// replaced by spaces.
fn challenge_header(realm: &str) -> HeaderValue {
    let mut value = String::with_capacity(realm.len() + 16);
    value.push_str("Basic realm=\"");
    for c in realm.chars() {
        match c {
            '"' | '\\' => {
                value.push('\\');
                value.push(c);
            }
            c if c.is_control() => value.push(' '),
            c => value.push(c),
        }
    }
    value.push('"');
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"Authentication Required\""))
}

/// Digests of credentials that verified, salted per instance so that the
/// digests are useless outside this process. Bounded: when full it starts
/// over, which costs one slow hash per active user.
#[derive(Debug)]
struct VerifiedCache {
    salt: [u8; 16],
    digests: Mutex<HashSet<[u8; 32]>>,
}

impl VerifiedCache {
    fn new() -> Self {
        Self {
            salt: fastrand::u128(..).to_le_bytes(),
            digests: Mutex::new(HashSet::new()),
        }
    }

    fn key(&self, user: &str, password: &str) -> [u8; 32] {
        Sha256::new()
            .chain_update(self.salt)
            .chain_update((user.len() as u64).to_le_bytes())
            .chain_update(user.as_bytes())
            .chain_update(password.as_bytes())
            .finalize()
            .into()
    }

    fn contains(&self, key: &[u8; 32]) -> bool {
        self.lock().contains(key)
    }

    fn insert(&self, key: [u8; 32]) {
        let mut digests = self.lock();
        if digests.len() >= VERIFIED_CACHE_ENTRIES {
            digests.clear();
        }
        digests.insert(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.digests.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::CONTENT_TYPE;
    use http_body_util::BodyExt;

    #[tokio::test(start_paused = true)]
    async fn hashing_waits_for_a_slot_then_answers_503() {
        let basic = Arc::new(auth());
        let slots = Arc::new(Semaphore::new(1));
        let mut headers = HeaderMap::new();
        // alice:s3cret
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic YWxpY2U6czNjcmV0"),
        );
        let held = slots.clone().acquire_owned().await.unwrap();
        let wait = Duration::from_secs(2);
        let refused = check_with_slots(&basic, &headers, &slots, wait)
            .await
            .unwrap_err();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[RETRY_AFTER], "1");
        // A slot freed while waiting is taken.
        let waiting = tokio::spawn({
            let (basic, headers, slots) = (basic.clone(), headers.clone(), slots.clone());
            async move { check_with_slots(&basic, &headers, &slots, wait).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(held);
        assert!(waiting.await.unwrap().is_ok());
        // Remembered now: no slot needed.
        let _all = slots.clone().acquire_owned().await.unwrap();
        assert!(
            check_with_slots(&basic, &headers, &slots, wait)
                .await
                .is_ok()
        );
    }

    fn auth() -> BasicAuth {
        let text = "alice:$apr1$jcY6gfPK$J5uRY34gYjFZTWoZsfy4Y0\n\
                    bob:{SHA}XyRLaTIb/WCdo8CuWc58gPVHl68=\n\
                    émile:{PLAIN}ünï\n";
        let (users, errors) = Htpasswd::parse(text);
        assert!(errors.is_empty(), "{errors:?}");
        BasicAuth::new(DEFAULT_REALM, Arc::new(users))
    }

    fn with_authorization(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
        headers
    }

    fn basic(credentials: &str) -> HeaderMap {
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        with_authorization(format!("Basic {encoded}").as_bytes())
    }

    #[test]
    fn good_credentials_pass() {
        let auth = auth();
        assert!(auth.check(&basic("alice:s3cret")).is_ok());
        assert!(auth.check(&basic("alice:s3cret")).is_ok(), "cached");
        assert!(
            auth.check(&basic("bob:pa:ss")).is_ok(),
            "the password may hold ':'"
        );
        assert!(auth.check(&basic("émile:ünï")).is_ok(), "UTF-8");
        // Scheme case and spacing vary between clients.
        let token = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        for value in [
            format!("basic {token}"),
            format!("BASIC   {token}"),
            format!("Basic {}", token.trim_end_matches('=')),
        ] {
            assert!(
                auth.check(&with_authorization(value.as_bytes())).is_ok(),
                "{value}"
            );
        }
    }

    #[test]
    fn everything_else_is_a_401_challenge() {
        let auth = auth();
        let long = format!("alice:{}", "x".repeat(MAX_AUTHORIZATION_BYTES));
        let cases = [
            HeaderMap::new(),
            basic("alice:wrong"),
            basic("alice:s3cret "),
            basic("mallory:s3cret"),
            basic("alice"),
            basic(":"),
            basic(&long),
            with_authorization(b"Bearer abc"),
            with_authorization(b"Basic"),
            with_authorization(b"Basic !!!notbase64"),
            with_authorization(b"Basic /w=="),
            with_authorization(b"Basicabc"),
        ];
        for headers in cases {
            let response = auth.check(&headers).expect_err("refused");
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{headers:?}");
            assert_eq!(
                response.headers()[WWW_AUTHENTICATE],
                "Basic realm=\"Authentication Required\""
            );
            let rendered = crate::proxy::respond::refusal(*response);
            assert_eq!(rendered.headers()[CONTENT_TYPE], "text/html");
        }
    }

    #[tokio::test]
    async fn the_401_page_is_nginx_shaped() {
        let response = auth().check(&HeaderMap::new()).expect_err("refused");
        let body = crate::proxy::respond::refusal(*response)
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("<title>401 Unauthorized</title>"), "{body}");
    }

    #[test]
    fn realms_cannot_break_the_header() {
        let cases = [
            (
                "Authentication Required",
                r#"Basic realm="Authentication Required""#,
            ),
            (r#"say "hi""#, r#"Basic realm="say \"hi\"""#),
            (r"back\slash", r#"Basic realm="back\\slash""#),
            (
                "line\r\nX-Injected: 1",
                r#"Basic realm="line  X-Injected: 1""#,
            ),
            ("tab\there\u{7f}", r#"Basic realm="tab here ""#),
            ("zoné", "Basic realm=\"zoné\""),
        ];
        for (realm, expected) in cases {
            let auth = BasicAuth::new(realm, Arc::new(Htpasswd::default()));
            assert_eq!(auth.challenge.as_bytes(), expected.as_bytes(), "{realm:?}");
            assert_eq!(auth.realm(), realm);
        }
    }

    #[test]
    fn strip_removes_every_authorization_value() {
        let mut headers = basic("alice:s3cret");
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        headers.insert("x-other", HeaderValue::from_static("kept"));
        strip_authorization(&mut headers);
        assert!(headers.get(AUTHORIZATION).is_none());
        assert_eq!(headers["x-other"], "kept");
    }

    #[test]
    fn the_verified_cache_is_bounded_and_keyed_by_password() {
        let cache = VerifiedCache::new();
        assert_ne!(cache.key("a", "bc"), cache.key("ab", "c"));
        assert_ne!(cache.key("a", "b"), VerifiedCache::new().key("a", "b"));
        for i in 0..VERIFIED_CACHE_ENTRIES + 10 {
            cache.insert(cache.key("u", &i.to_string()));
        }
        assert!(cache.lock().len() <= VERIFIED_CACHE_ENTRIES);
    }
}
