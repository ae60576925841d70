//! Parsers for annotation values, as ingress-nginx reads them.

use std::time::Duration;

/// A timeout in whole seconds, as ingress-nginx's integer annotations.
pub(crate) fn seconds(value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(0) => Err("must be at least 1 second".to_owned()),
        Ok(n) if n <= 24 * 3600 => Ok(Duration::from_secs(n)),
        Ok(_) => Err("must be at most 86400 seconds".to_owned()),
        Err(_) => Err("must be a whole number of seconds".to_owned()),
    }
}

/// nginx's size syntax: a number with an optional `k`, `m` or `g` suffix
/// (either case); `0` means unlimited.
pub(crate) fn body_size(value: &str) -> Result<Option<u64>, String> {
    let (digits, unit) = match value.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&value[..i], c.to_ascii_lowercase()),
        _ => (value, 'b'),
    };
    let multiplier: u64 = match unit {
        'b' => 1,
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        _ => return Err("size unit must be k, m or g".to_owned()),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| "must be a size such as 1m, 512k or 0".to_owned())?;
    let bytes = n
        .checked_mul(multiplier)
        .ok_or_else(|| "size too large".to_owned())?;
    Ok((bytes > 0).then_some(bytes))
}

/// Attempts per request; `0` means no limit (every endpoint may be tried).
pub(crate) fn tries(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(0) => Ok(u32::MAX),
        Ok(n) => Ok(n),
        Err(_) => Err("must be a whole number".to_owned()),
    }
}

/// ingress-nginx's default `auth-tls-verify-depth` and `proxy-ssl-verify-depth`.
pub(crate) const DEFAULT_VERIFY_DEPTH: u32 = 1;

/// A `*-verify-depth`: the most intermediate certificates between a
/// certificate and its CA; ingress-nginx reads 0 as its default.
pub(crate) fn verify_depth(value: &str) -> Result<u32, &'static str> {
    match value.parse::<u32>() {
        Ok(0) => Ok(DEFAULT_VERIFY_DEPTH),
        Ok(depth) => Ok(depth),
        Err(_) => Err("must be a whole number; 1 applies"),
    }
}

/// A boolean as Go's `strconv.ParseBool` reads it, which ingress-nginx uses.
pub(crate) fn boolean(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err("must be true or false".to_owned()),
    }
}

/// A header value without control characters (no header injection).
pub(crate) fn header_value(value: &str) -> Result<http::HeaderValue, String> {
    if value.bytes().any(|b| b.is_ascii_control()) {
        return Err("must not contain control characters".to_owned());
    }
    http::HeaderValue::from_str(value).map_err(|_| "is not a valid header value".to_owned())
}

/// A `host[:port]` for the upstream Host header.
pub(crate) fn host_and_port(value: &str) -> Result<http::HeaderValue, String> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
    if !ok {
        return Err("must be a host name, optionally with :port".to_owned());
    }
    header_value(value)
}

/// A redirect status code.
pub(crate) fn status_code(value: &str) -> Result<u16, String> {
    value
        .parse::<u16>()
        .ok()
        .filter(|c| (300..=399).contains(c))
        .ok_or_else(|| "must be a redirect status between 300 and 399".to_owned())
}

/// A Go duration (`time.ParseDuration`) as ingress-nginx reads some keys:
/// one or more `<number><unit>`, units `ms`, `s`, `m`, `h` (`5s`, `1m30s`).
pub(crate) fn go_duration(value: &str) -> Result<Duration, String> {
    const FORM: &str = "must be a duration such as 5s or 1m30s";
    if value.is_empty() {
        return Err(FORM.to_owned());
    }
    let mut total = Duration::ZERO;
    let mut rest = value;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: u64 = rest[..digits].parse().map_err(|_| FORM.to_owned())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            _ => return Err(FORM.to_owned()),
        };
        total = total.saturating_add(part);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(go_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "5", "s", "5x", "-5s", "1.5s"] {
            assert!(go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn body_sizes_follow_nginx_syntax() {
        assert_eq!(body_size("0"), Ok(None));
        assert_eq!(body_size("100"), Ok(Some(100)));
        assert_eq!(body_size("512k"), Ok(Some(512 << 10)));
        assert_eq!(body_size("1M"), Ok(Some(1 << 20)));
        assert_eq!(body_size("2g"), Ok(Some(2 << 30)));
        for bad in ["", "m", "1.5m", "-1", "1t", "99999999999999999999g", "1 m"] {
            assert!(body_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scalars() {
        assert_eq!(tries("0"), Ok(u32::MAX));
        assert!(tries("-1").is_err());
        assert_eq!(boolean("True"), Ok(true));
        assert!(boolean("yes").is_err());
        assert!(seconds("0").is_err());
        assert!(host_and_port("svc.ns.svc:8080").is_ok());
        assert!(host_and_port("a b").is_err());
        assert!(header_value("/api\r\nx: y").is_err());
        assert_eq!(status_code("308"), Ok(308));
        assert!(status_code("200").is_err());
    }
}
