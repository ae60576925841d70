//! The user files of `auth-type: basic`: an htpasswd text (the `auth` key of
//! an `auth-file` Secret) or an `auth-map` Secret (keys are users, values are
//! hashes), parsed once into [`Htpasswd`] and checked per request.
//!
//! The formats are the ones nginx's `auth_basic_user_file` accepts in the
//! ingress-nginx image: bcrypt (`$2a$`, `$2b$`, `$2y$`, `$2x$`), Apache
//! `$apr1$`, MD5-crypt `$1$`, SHA-crypt `$5$` / `$6$` (with `rounds=`),
//! `{SHA}`, `{SSHA}` and `{PLAIN}`. Traditional DES crypt (13 characters, no
//! prefix) is refused with an error: no maintained crate implements it and it
//! is broken anyway. As in nginx, a hash without a known prefix is never taken
//! as a plain-text password.
//!
//! A bad line is reported with its line number and skipped; parsing never
//! fails as a whole and never panics. A Secret is not trusted either: a
//! bcrypt cost above [`MAX_BCRYPT_COST`] or SHA-crypt rounds above
//! [`MAX_SHA_CRYPT_ROUNDS`] are refused when parsed, so that one Ingress
//! cannot make every request burn seconds of CPU.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest as _, Md5};
use sha_crypt::{PasswordVerifier as _, ShaCrypt};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// The highest bcrypt cost accepted: one verification at cost 14 takes about
/// a second of CPU; `htpasswd -B` defaults to 5, most tools to 10-12.
pub const MAX_BCRYPT_COST: u32 = 14;

/// The highest SHA-crypt `rounds=` accepted (the default is 5000); a million
/// rounds cost about as much as bcrypt at cost 13.
pub const MAX_SHA_CRYPT_ROUNDS: u32 = 1_000_000;

/// The lowest SHA-crypt `rounds=` (glibc raises anything lower to this).
const MIN_SHA_CRYPT_ROUNDS: u32 = 1_000;

/// The alphabet of crypt's base64 (`./0-9A-Za-z`), used by MD5-crypt and
/// SHA-crypt salts and digests.
const CRYPT_ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Users and their password hashes, ready to verify Basic credentials.
///
/// `Debug` shows the number of users only: hashes stay out of logs.
#[derive(Clone, Default)]
pub struct Htpasswd {
    users: HashMap<String, PasswordHash>,
    /// The costliest hash of the file: an unknown user's password is
    /// checked against it (and refused whatever the result), so that an
    /// unknown user takes as long as a known one.
    costliest: Option<PasswordHash>,
}

impl fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Htpasswd")
            .field("users", &self.users.len())
            .finish()
    }
}

/// Where a rejected entry came from, for the diagnostic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryOrigin {
    /// A line of an htpasswd text, counted from 1.
    Line(usize),
    /// A key of an `auth-map` Secret.
    Key(String),
}

impl fmt::Display for EntryOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line(line) => write!(f, "line {line}"),
            Self::Key(key) => write!(f, "key {key:?}"),
        }
    }
}

/// One entry that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {kind}")]
pub struct HtpasswdError {
    /// The line or Secret key of the entry.
    pub origin: EntryOrigin,
    /// What is wrong with it.
    pub kind: HtpasswdErrorKind,
}

/// What is wrong with an htpasswd entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HtpasswdErrorKind {
    /// The line has no `:` between user and hash.
    #[error("no ':' between user name and password hash")]
    MissingColon,
    /// The user name is empty.
    #[error("empty user name")]
    EmptyUser,
    /// The hash is empty.
    #[error("empty password hash")]
    EmptyHash,
    /// The user already had an entry; the first one is kept, as nginx does.
    #[error("user {0:?} appears again; the first entry is kept")]
    DuplicateUser(String),
    /// A bcrypt cost above [`MAX_BCRYPT_COST`].
    #[error("bcrypt cost {0} is above the limit of {MAX_BCRYPT_COST}")]
    BcryptCostTooHigh(u32),
    /// SHA-crypt rounds outside 1000..=[`MAX_SHA_CRYPT_ROUNDS`].
    #[error("SHA-crypt rounds={0} is outside 1000..={MAX_SHA_CRYPT_ROUNDS}")]
    RoundsOutOfRange(u64),
    /// A traditional DES crypt hash.
    #[error(
        "traditional DES crypt hashes are not supported; re-create the entry with `htpasswd -B` (bcrypt)"
    )]
    DesUnsupported,
    /// A hash scheme this gateway does not verify (yescrypt, scrypt, ...).
    #[error("unsupported password hash scheme {0:?}")]
    UnsupportedScheme(String),
    /// A known scheme whose hash is malformed.
    #[error("malformed {scheme} hash: {reason}")]
    Malformed {
        /// The scheme, as its prefix (`$apr1$`, `{SHA}`, ...).
        scheme: &'static str,
        /// What is malformed.
        reason: &'static str,
    },
}

/// One parsed password hash.
#[derive(Clone)]
enum PasswordHash {
    /// A whole bcrypt string, checked by the `bcrypt` crate.
    Bcrypt(String),
    /// MD5-crypt with the `$apr1$` or `$1$` magic: salt and the 22-character
    /// encoded digest.
    Md5Crypt {
        magic: &'static str,
        salt: String,
        digest: [u8; 22],
    },
    /// A whole `$5$` / `$6$` string, checked by the `sha-crypt` crate.
    ShaCrypt(String),
    /// `{SHA}`: SHA-1 of the password.
    Sha1([u8; 20]),
    /// `{SSHA}`: SHA-1 of the password and salt, then the salt.
    SaltedSha1 { digest: [u8; 20], salt: Vec<u8> },
    /// `{PLAIN}`: the SHA-256 of the password, so that the comparison has a
    /// fixed length.
    Plain([u8; 32]),
}

impl Htpasswd {
    /// Parses an htpasswd text: `user:hash` lines (anything after a second
    /// `:` is a comment, as nginx reads it), `#` comment lines, blank lines,
    /// CRLF line ends. Bad entries are skipped and returned as errors.
    pub fn parse(text: &str) -> (Htpasswd, Vec<HtpasswdError>) {
        let mut users = Htpasswd::default();
        let mut errors = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let origin = EntryOrigin::Line(index + 1);
            let Some((user, rest)) = line.split_once(':') else {
                errors.push(HtpasswdError {
                    origin,
                    kind: HtpasswdErrorKind::MissingColon,
                });
                continue;
            };
            let hash = rest.split_once(':').map_or(rest, |(hash, _comment)| hash);
            if let Err(kind) = users.add(user, hash) {
                errors.push(HtpasswdError { origin, kind });
            }
        }
        (users, errors)
    }

    /// Builds the users of an `auth-secret-type: auth-map` Secret, whose
    /// keys are user names and values are hashes (surrounding white space,
    /// such as a trailing newline, is ignored).
    pub fn from_auth_map(
        map: impl IntoIterator<Item = (String, String)>,
    ) -> (Htpasswd, Vec<HtpasswdError>) {
        let mut users = Htpasswd::default();
        let mut errors = Vec::new();
        for (user, hash) in map {
            if let Err(kind) = users.add(&user, hash.trim()) {
                errors.push(HtpasswdError {
                    origin: EntryOrigin::Key(user),
                    kind,
                });
            }
        }
        (users, errors)
    }

    /// Whether `password` is the password of `user`. Unknown users and
    /// wrong passwords are both `false`. The cost is one hash computation,
    /// bounded by the limits checked at parse time (bcrypt at cost 10 takes
    /// tens of milliseconds: callers on an async runtime may want to cache
    /// successes, as [`super::basic_auth::BasicAuth`] does).
    pub fn verify(&self, user: &str, password: &str) -> bool {
        match self.users.get(user) {
            Some(hash) => hash.verify(password.as_bytes()),
            None => {
                // The same work as for the costliest known user, whose
                // verdict does not count: no timing tells users apart.
                if let Some(hash) = &self.costliest {
                    std::hint::black_box(hash.verify(password.as_bytes()));
                }
                false
            }
        }
    }

    /// The hash an unknown user's password is checked against, as its
    /// scheme's prefix (`$2y$`, `{SHA}`, ...).
    pub fn decoy_scheme(&self) -> Option<&'static str> {
        self.costliest.as_ref().map(PasswordHash::scheme)
    }

    /// The number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users (every request will be refused).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    fn add(&mut self, user: &str, hash: &str) -> Result<(), HtpasswdErrorKind> {
        if user.is_empty() {
            return Err(HtpasswdErrorKind::EmptyUser);
        }
        let hash = PasswordHash::parse(hash)?;
        match self.users.entry(user.to_owned()) {
            Entry::Occupied(_) => Err(HtpasswdErrorKind::DuplicateUser(user.to_owned())),
            Entry::Vacant(slot) => {
                if self
                    .costliest
                    .as_ref()
                    .is_none_or(|known| hash.work() > known.work())
                {
                    self.costliest = Some(hash.clone());
                }
                slot.insert(hash);
                Ok(())
            }
        }
    }
}

impl PasswordHash {
    /// Roughly how long one verification takes, in microseconds (bcrypt
    /// about 64 µs per 2^cost, SHA-crypt about 0.6 µs a round, MD5-crypt
    /// 0.3 ms), to pick the costliest hash of a file.
    fn work(&self) -> u64 {
        match self {
            Self::Bcrypt(hash) => hash
                .get(4..6)
                .and_then(|cost| cost.parse::<u32>().ok())
                .map_or(1, |cost| 64u64 << cost.min(31)),
            Self::Md5Crypt { .. } => 300,
            Self::ShaCrypt(hash) => {
                let rounds: u64 = hash
                    .split('$')
                    .nth(2)
                    .and_then(|field| field.strip_prefix("rounds="))
                    .and_then(|rounds| rounds.parse().ok())
                    .unwrap_or(5000);
                rounds * 6 / 10
            }
            Self::Sha1(_) | Self::SaltedSha1 { .. } | Self::Plain(_) => 1,
        }
    }

    /// The scheme's prefix, for messages and tests.
    fn scheme(&self) -> &'static str {
        match self {
            Self::Bcrypt(_) => "$2y$",
            Self::Md5Crypt { magic, .. } => magic,
            Self::ShaCrypt(hash) if hash.starts_with("$5$") => "$5$",
            Self::ShaCrypt(_) => "$6$",
            Self::Sha1(_) => "{SHA}",
            Self::SaltedSha1 { .. } => "{SSHA}",
            Self::Plain(_) => "{PLAIN}",
        }
    }

    fn parse(hash: &str) -> Result<Self, HtpasswdErrorKind> {
        let hash = hash.trim();
        if hash.is_empty() {
            return Err(HtpasswdErrorKind::EmptyHash);
        }
        if let Some(rest) = hash.strip_prefix("$apr1$") {
            return parse_md5_crypt("$apr1$", rest);
        }
        if let Some(rest) = hash.strip_prefix("$1$") {
            return parse_md5_crypt("$1$", rest);
        }
        if ["$2a$", "$2b$", "$2y$", "$2x$"]
            .iter()
            .any(|prefix| hash.starts_with(prefix))
        {
            return parse_bcrypt(hash);
        }
        if hash.starts_with("$5$") || hash.starts_with("$6$") {
            return parse_sha_crypt(hash);
        }
        if let Some(rest) = hash.strip_prefix("{SHA}") {
            let digest = decode_sha1(rest, "{SHA}")?;
            return Ok(Self::Sha1(digest));
        }
        if let Some(rest) = hash.strip_prefix("{SSHA}") {
            return parse_ssha(rest);
        }
        if let Some(rest) = hash.strip_prefix("{PLAIN}") {
            return Ok(Self::Plain(Sha256::digest(rest.as_bytes()).into()));
        }
        if hash.len() == 13 && hash.bytes().all(|b| CRYPT_ALPHABET.contains(&b)) {
            return Err(HtpasswdErrorKind::DesUnsupported);
        }
        let scheme = if hash.starts_with('$') {
            hash.split('$').nth(1).map_or("$", |id| id)
        } else if hash.starts_with('{') {
            hash.split_inclusive('}').next().unwrap_or(hash)
        } else {
            "(none: not a hash)"
        };
        Err(HtpasswdErrorKind::UnsupportedScheme(
            scheme.chars().take(16).collect(),
        ))
    }

    fn verify(&self, password: &[u8]) -> bool {
        match self {
            Self::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Self::Md5Crypt {
                magic,
                salt,
                digest,
            } => md5_crypt(password, magic.as_bytes(), salt.as_bytes())
                .ct_eq(digest)
                .into(),
            Self::ShaCrypt(hash) => ShaCrypt::default()
                .verify_password(password, hash.as_str())
                .is_ok(),
            Self::Sha1(digest) => {
                let actual: [u8; 20] = Sha1::digest(password).into();
                actual.ct_eq(digest).into()
            }
            Self::SaltedSha1 { digest, salt } => {
                let actual: [u8; 20] = Sha1::new()
                    .chain_update(password)
                    .chain_update(salt)
                    .finalize()
                    .into();
                actual.ct_eq(digest).into()
            }
            Self::Plain(digest) => {
                let actual: [u8; 32] = Sha256::digest(password).into();
                actual.ct_eq(digest).into()
            }
        }
    }
}

fn malformed(scheme: &'static str, reason: &'static str) -> HtpasswdErrorKind {
    HtpasswdErrorKind::Malformed { scheme, reason }
}

/// `$2?$NN$` + 53 characters; the cost is checked against the limit here,
/// the rest by the `bcrypt` crate at verification (it never panics on a
/// 60-byte ASCII string, which is checked here).
fn parse_bcrypt(hash: &str) -> Result<PasswordHash, HtpasswdErrorKind> {
    const SCHEME: &str = "bcrypt";
    if hash.len() != 60 || !hash.is_ascii() || hash.as_bytes()[6] != b'$' {
        return Err(malformed(
            SCHEME,
            "expected 60 characters: $2y$NN$ and 53 more",
        ));
    }
    let cost: u32 = hash[4..6]
        .parse()
        .map_err(|_| malformed(SCHEME, "the cost is not a number"))?;
    if cost < 4 {
        return Err(malformed(SCHEME, "the cost is below 4"));
    }
    if cost > MAX_BCRYPT_COST {
        return Err(HtpasswdErrorKind::BcryptCostTooHigh(cost));
    }
    if !hash[7..].bytes().all(|b| CRYPT_ALPHABET.contains(&b)) {
        return Err(malformed(SCHEME, "invalid character in salt or digest"));
    }
    Ok(PasswordHash::Bcrypt(hash.to_owned()))
}

/// `<salt>$<22 characters>` after the magic; the salt is at most 8
/// characters (longer salts are cut, as every implementation does).
fn parse_md5_crypt(magic: &'static str, rest: &str) -> Result<PasswordHash, HtpasswdErrorKind> {
    let (salt, digest) = rest
        .split_once('$')
        .ok_or_else(|| malformed(magic, "no '$' between salt and digest"))?;
    let digest: [u8; 22] = digest
        .as_bytes()
        .try_into()
        .map_err(|_| malformed(magic, "the digest is not 22 characters"))?;
    if !digest.iter().all(|b| CRYPT_ALPHABET.contains(b)) {
        return Err(malformed(magic, "invalid character in digest"));
    }
    let salt: String = salt.chars().take(8).collect();
    Ok(PasswordHash::Md5Crypt {
        magic,
        salt,
        digest,
    })
}

/// `$5$[rounds=N$]<salt>$<digest>`: the structure and the rounds are checked
/// here, the digest by the `sha-crypt` crate at verification.
fn parse_sha_crypt(hash: &str) -> Result<PasswordHash, HtpasswdErrorKind> {
    let (scheme, digest_len) = if hash.starts_with("$5$") {
        ("$5$", 43)
    } else {
        ("$6$", 86)
    };
    let mut fields = hash[3..].split('$');
    let mut salt = fields.next().unwrap_or_default();
    if let Some(rounds) = salt.strip_prefix("rounds=") {
        let rounds: u64 = rounds
            .parse()
            .map_err(|_| malformed(scheme, "rounds= is not a number"))?;
        if !(u64::from(MIN_SHA_CRYPT_ROUNDS)..=u64::from(MAX_SHA_CRYPT_ROUNDS)).contains(&rounds) {
            return Err(HtpasswdErrorKind::RoundsOutOfRange(rounds));
        }
        salt = fields.next().unwrap_or_default();
    }
    let digest = fields
        .next()
        .ok_or_else(|| malformed(scheme, "no '$' between salt and digest"))?;
    if fields.next().is_some() {
        return Err(malformed(scheme, "too many '$'-separated fields"));
    }
    if salt.is_empty() || salt.len() > 16 || !salt.bytes().all(|b| CRYPT_ALPHABET.contains(&b)) {
        return Err(malformed(
            scheme,
            "the salt is not 1 to 16 characters of ./0-9A-Za-z",
        ));
    }
    if digest.len() != digest_len || !digest.bytes().all(|b| CRYPT_ALPHABET.contains(&b)) {
        return Err(malformed(
            scheme,
            "the digest has the wrong length or characters",
        ));
    }
    Ok(PasswordHash::ShaCrypt(hash.to_owned()))
}

fn decode_sha1(encoded: &str, scheme: &'static str) -> Result<[u8; 20], HtpasswdErrorKind> {
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|_| malformed(scheme, "not base64"))?;
    bytes
        .try_into()
        .map_err(|_| malformed(scheme, "not a 20-byte SHA-1 digest"))
}

fn parse_ssha(encoded: &str) -> Result<PasswordHash, HtpasswdErrorKind> {
    const SCHEME: &str = "{SSHA}";
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|_| malformed(SCHEME, "not base64"))?;
    if bytes.len() <= 20 {
        return Err(malformed(SCHEME, "shorter than a SHA-1 digest and a salt"));
    }
    let (digest, salt) = bytes.split_at(20);
    let mut fixed = [0u8; 20];
    fixed.copy_from_slice(digest);
    Ok(PasswordHash::SaltedSha1 {
        digest: fixed,
        salt: salt.to_vec(),
    })
}

/// MD5-crypt (Poul-Henning Kamp's algorithm, `$1$`), which Apache's `$apr1$`
/// is with another magic string. Returns the 22-character encoded digest.
fn md5_crypt(password: &[u8], magic: &[u8], salt: &[u8]) -> [u8; 22] {
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut context = Md5::new()
        .chain_update(password)
        .chain_update(magic)
        .chain_update(salt);
    for chunk in password.chunks(16) {
        context.update(&alternate[..chunk.len()]);
    }
    let mut length = password.len();
    while length != 0 {
        if length & 1 == 1 {
            context.update([0u8]);
        } else {
            context.update(&password[..1]);
        }
        length >>= 1;
    }
    let mut digest: [u8; 16] = context.finalize().into();
    for round in 0..1000 {
        let mut context = Md5::new();
        if round & 1 == 1 {
            context.update(password);
        } else {
            context.update(digest);
        }
        if round % 3 != 0 {
            context.update(salt);
        }
        if round % 7 != 0 {
            context.update(password);
        }
        if round & 1 == 1 {
            context.update(digest);
        } else {
            context.update(password);
        }
        digest = context.finalize().into();
    }
    let mut out = [0u8; 22];
    let groups = [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)];
    for (index, (a, b, c)) in groups.into_iter().enumerate() {
        let value = u32::from(digest[a]) << 16 | u32::from(digest[b]) << 8 | u32::from(digest[c]);
        encode_crypt64(value, &mut out[index * 4..index * 4 + 4]);
    }
    encode_crypt64(u32::from(digest[11]), &mut out[20..22]);
    out
}

/// Writes the low `out.len() * 6` bits of `value`, least significant first,
/// in crypt's base64 alphabet.
fn encode_crypt64(mut value: u32, out: &mut [u8]) {
    for byte in out {
        *byte = CRYPT_ALPHABET[(value & 0x3f) as usize];
        value >>= 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Vectors made with Apache's `htpasswd` 2.4, `openssl passwd` and
    /// glibc/libxcrypt `crypt()` (through perl), and python for `{SSHA}`.
    const VECTORS: &[(&str, &str)] = &[
        // htpasswd -nbB -C 4 alice 'wonder land'
        (
            "$2y$04$upzdNKET4E/t1SsDOD0NnuChE46dws6r05rO68mgVXnOu3Iw.Tkh6",
            "wonder land",
        ),
        // libxcrypt crypt("pw", "$2b$05$abcdefghijklmnopqrstuu")
        (
            "$2b$05$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q",
            "pw",
        ),
        // htpasswd -nbm bob s3cret
        ("$apr1$jcY6gfPK$J5uRY34gYjFZTWoZsfy4Y0", "s3cret"),
        // openssl passwd -apr1 -salt xyz12345 apr1pw
        ("$apr1$xyz12345$iHU/eWYjBgaz/.wza9/jr0", "apr1pw"),
        // openssl passwd -apr1 -salt short '' (empty password)
        ("$apr1$short$NOK46k163o8MKZo7IKRUD/", ""),
        // openssl passwd -apr1 -salt a (password longer than 16 bytes)
        (
            "$apr1$a$lTpNEQIZNer0C64SPKOLk/",
            "a very long password that is more than sixteen bytes",
        ),
        // openssl passwd -1 -salt abcdefgh md5crypt
        ("$1$abcdefgh$CLglA/4RVzp9Tqs7DodPc0", "md5crypt"),
        // crypt("ünï", "$1$$"): empty salt, UTF-8 password
        ("$1$$nl0dmAsHF7GFxdNkiLWoH0", "ünï"),
        // openssl passwd -5 -salt saltsalt sha256pw
        (
            "$5$saltsalt$WzUmQii01nfTV1TYCOkBeBwTyxmKMzcJfuoexqMmrA6",
            "sha256pw",
        ),
        // crypt("pw", "$5$rounds=1000$short$")
        (
            "$5$rounds=1000$short$q9NJiKqyWA7PCyuf5Lc1Kfs3tBEmd3YMAJThsP/G7a/",
            "pw",
        ),
        // openssl passwd -6 -salt saltsalt sha512pw
        (
            "$6$saltsalt$4tunjKVuZncbXa0keYjfESkXJUqiWNDNjPLUgx2nQ6AlupqEiGSROLeZQ9GydXZv/JBhOV2OIAPlVA8lJ8vA91",
            "sha512pw",
        ),
        // crypt("pw", "$6$rounds=10000$saltsalt$")
        (
            "$6$rounds=10000$saltsalt$PCkl82bcVNZUyS5el2MR9Coq8KSFAH2TLAV2NKcVGH1Dq51jMRJNvf2NrUOE/Sv9WOINUlZWqywN9lCRzMZF.1",
            "pw",
        ),
        // htpasswd -nbs carol 'sha pass'
        ("{SHA}KvPXpIScDQubdcQXyPXUdUCmoqA=", "sha pass"),
        // {SHA} of the empty password
        ("{SHA}2jmj7l5rSw0yVb/vlWAYkK/YBwk=", ""),
        // base64(sha1("ssha secret" + salt) + salt), salt 01020304 "saltsalt"
        (
            "{SSHA}nVKGFN1PCCYwqr7V4nvJ1C5yg3QBAgMEc2FsdHNhbHQ=",
            "ssha secret",
        ),
        ("{PLAIN}plain text", "plain text"),
    ];

    #[test]
    fn every_format_verifies_its_password_only() {
        for (hash, password) in VECTORS {
            let (users, errors) = Htpasswd::parse(&format!("user:{hash}\n"));
            assert!(errors.is_empty(), "{hash}: {errors:?}");
            assert!(users.verify("user", password), "{hash} with {password:?}");
            assert!(
                !users.verify("user", "wrong"),
                "{hash} with a wrong password"
            );
            assert!(!users.verify("user", &format!("{password}x")), "{hash}");
            assert!(!users.verify("other", password), "{hash}: unknown user");
        }
    }

    #[test]
    fn unknown_users_cost_a_verification_of_the_costliest_hash() {
        let file: String = VECTORS
            .iter()
            .enumerate()
            .map(|(i, (hash, _))| format!("user{i}:{hash}\n"))
            .collect();
        let (users, _) = Htpasswd::parse(&file);
        assert_eq!(
            users.decoy_scheme(),
            Some("$6$"),
            "rounds=10000 is the most work"
        );
        // Another user's password is still refused for an unknown name.
        assert!(VECTORS.iter().all(|(_, pw)| !users.verify("nobody", pw)));
        let (cheap, _) = Htpasswd::parse(
            "a:{PLAIN}x\nb:$2y$04$upzdNKET4E/t1SsDOD0NnuChE46dws6r05rO68mgVXnOu3Iw.Tkh6\n",
        );
        assert_eq!(cheap.decoy_scheme(), Some("$2y$"));
    }

    #[test]
    fn apr1_and_md5_crypt_differ_only_by_magic() {
        let apr1 = md5_crypt(b"secret", b"$apr1$", b"salt");
        let md5 = md5_crypt(b"secret", b"$1$", b"salt");
        assert_ne!(apr1, md5);
    }

    #[test]
    fn file_syntax_like_nginx() {
        let text = "# a comment\r\n\r\n  \nalice:{PLAIN}a\r\nbob:{PLAIN}b:a comment field\n\
                    alice:{PLAIN}second\nno colon here\n:{PLAIN}x\ncarol:\n";
        let (users, errors) = Htpasswd::parse(text);
        assert_eq!(users.len(), 2);
        assert!(users.verify("alice", "a"), "CRLF is tolerated");
        assert!(!users.verify("alice", "second"), "the first entry wins");
        assert!(users.verify("bob", "b"), "a third field is a comment");
        let lines: Vec<_> = errors.iter().map(|e| e.origin.clone()).collect();
        assert_eq!(lines, [6, 7, 8, 9].map(EntryOrigin::Line), "{errors:?}");
        assert_eq!(
            errors[0].kind,
            HtpasswdErrorKind::DuplicateUser("alice".to_owned())
        );
        assert_eq!(errors[1].kind, HtpasswdErrorKind::MissingColon);
        assert_eq!(errors[2].kind, HtpasswdErrorKind::EmptyUser);
        assert_eq!(errors[3].kind, HtpasswdErrorKind::EmptyHash);
        assert_eq!(
            errors[1].to_string(),
            "line 7: no ':' between user name and password hash"
        );
    }

    #[test]
    fn hostile_costs_are_refused_at_parse_time() {
        let bcrypt_15 = "$2y$15$upzdNKET4E/t1SsDOD0NnuChE46dws6r05rO68mgVXnOu3Iw.Tkh6";
        let sha_huge = "$6$rounds=999999999$saltsalt$4tunjKVuZncbXa0keYjfESkXJUqiWNDNjPLUgx2nQ6AlupqEiGSROLeZQ9GydXZv/JBhOV2OIAPlVA8lJ8vA91";
        let sha_tiny = "$5$rounds=10$saltsalt$WzUmQii01nfTV1TYCOkBeBwTyxmKMzcJfuoexqMmrA6";
        let (users, errors) =
            Htpasswd::parse(&format!("a:{bcrypt_15}\nb:{sha_huge}\nc:{sha_tiny}\n"));
        assert!(users.is_empty());
        let kinds: Vec<_> = errors.into_iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                HtpasswdErrorKind::BcryptCostTooHigh(15),
                HtpasswdErrorKind::RoundsOutOfRange(999_999_999),
                HtpasswdErrorKind::RoundsOutOfRange(10),
            ]
        );
    }

    #[test]
    fn unsupported_and_malformed_hashes_are_reported() {
        type Expected = fn(&HtpasswdErrorKind) -> bool;
        let cases: &[(&str, Expected)] = &[
            // htpasswd -nbd erin despw
            ("K34.l8eqEfQk2", |k| *k == HtpasswdErrorKind::DesUnsupported),
            ("plainpw", |k| {
                matches!(k, HtpasswdErrorKind::UnsupportedScheme(_))
            }),
            ("$y$j9T$salt$hash", |k| {
                *k == HtpasswdErrorKind::UnsupportedScheme("y".to_owned())
            }),
            ("{MD5}abc", |k| {
                *k == HtpasswdErrorKind::UnsupportedScheme("{MD5}".to_owned())
            }),
            ("$2y$04$short", |k| {
                matches!(k, HtpasswdErrorKind::Malformed { .. })
            }),
            (
                "$2y$xx$upzdNKET4E/t1SsDOD0NnuChE46dws6r05rO68mgVXnOu3Iw.Tkh6",
                |k| matches!(k, HtpasswdErrorKind::Malformed { .. }),
            ),
            ("$apr1$salt", |k| {
                matches!(k, HtpasswdErrorKind::Malformed { .. })
            }),
            ("$apr1$salt$tooshort", |k| {
                matches!(k, HtpasswdErrorKind::Malformed { .. })
            }),
            ("$5$salt", |k| {
                matches!(k, HtpasswdErrorKind::Malformed { .. })
            }),
            ("$6$rounds=x$salt$abc", |k| {
                matches!(k, HtpasswdErrorKind::Malformed { .. })
            }),
            ("{SHA}not base64!", |k| {
                matches!(k, HtpasswdErrorKind::Malformed { .. })
            }),
            ("{SHA}YWJj", |k| {
                matches!(k, HtpasswdErrorKind::Malformed { .. })
            }),
            ("{SSHA}YWJj", |k| {
                matches!(k, HtpasswdErrorKind::Malformed { .. })
            }),
        ];
        for (hash, expected) in cases {
            let (users, errors) = Htpasswd::parse(&format!("u:{hash}"));
            assert!(users.is_empty(), "{hash}");
            assert_eq!(errors.len(), 1, "{hash}");
            assert!(expected(&errors[0].kind), "{hash}: {:?}", errors[0].kind);
        }
    }

    #[test]
    fn auth_map_entries_are_users() {
        let map = [
            ("alice".to_owned(), "{PLAIN}a\n".to_owned()),
            (
                "bob".to_owned(),
                "$apr1$jcY6gfPK$J5uRY34gYjFZTWoZsfy4Y0".to_owned(),
            ),
            ("eve".to_owned(), "nonsense".to_owned()),
            (String::new(), "{PLAIN}x".to_owned()),
        ];
        let (users, errors) = Htpasswd::from_auth_map(map);
        assert_eq!(users.len(), 2);
        assert!(users.verify("alice", "a"));
        assert!(users.verify("bob", "s3cret"));
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].origin, EntryOrigin::Key("eve".to_owned()));
        assert!(errors[0].to_string().starts_with("key \"eve\": "));
        assert_eq!(errors[1].kind, HtpasswdErrorKind::EmptyUser);
    }

    #[test]
    fn debug_hides_hashes() {
        let (users, _) = Htpasswd::parse("alice:{PLAIN}secret");
        let shown = format!("{users:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in any::<String>()) {
            let (users, errors) = Htpasswd::parse(&text);
            prop_assert!(users.len() + errors.len() <= text.lines().count());
        }

        #[test]
        fn parse_never_panics_on_hash_like_lines(
            lines in proptest::collection::vec(
                "[a-z]{0,3}:(\\$(1|apr1|2y|5|6)\\$|\\{S?SHA\\}|\\{PLAIN\\})?(rounds=[0-9]{0,12}\\$)?[./a-zA-Z0-9$=+:]{0,90}",
                0..8,
            ),
        ) {
            let (users, errors) = Htpasswd::parse(&lines.join("\n"));
            prop_assert!(users.len() + errors.len() <= lines.len());
        }

        #[test]
        fn verify_never_panics_on_cheap_schemes(
            line in "[a-z]{0,2}:(\\$(1|apr1)\\$|\\{S?SHA\\}|\\{PLAIN\\})[./a-zA-Z0-9$=+]{0,40}",
            user in "[a-z]{0,2}",
            password in "\\PC{0,20}",
        ) {
            let (users, _) = Htpasswd::parse(&line);
            let _ = users.verify(&user, &password);
        }
    }
}
