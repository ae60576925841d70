//! `custom-http-errors`: the upstream status codes whose answers are
//! replaced by the default backend's (ingress-nginx's
//! `proxy_intercept_errors` with an `error_page` per code). The proxy's
//! side is the proxy's error-page phase.

use std::fmt;

/// A sorted, deduplicated list of status codes from 300 to 599 (the codes
/// nginx's `error_page` accepts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomErrors {
    codes: Box<[u16]>,
}

/// The most codes one list may name.
const MAX_CODES: usize = 300;

impl CustomErrors {
    /// Parses a comma-separated list such as `404,503`; spaces around the
    /// codes are allowed, an empty list is `None`.
    pub fn parse(value: &str) -> Result<Option<Self>, String> {
        let mut codes = Vec::new();
        for code in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let parsed = code
                .parse::<u16>()
                .ok()
                .filter(|c| (300..=599).contains(c) && code.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("{code:?} is not a status code from 300 to 599"))?;
            codes.push(parsed);
        }
        if codes.len() > MAX_CODES {
            return Err(format!("names more than {MAX_CODES} codes"));
        }
        codes.sort_unstable();
        codes.dedup();
        Ok((!codes.is_empty()).then(|| Self {
            codes: codes.into_boxed_slice(),
        }))
    }

    /// Whether an upstream answer with `status` is replaced.
    pub fn contains(&self, status: u16) -> bool {
        self.codes.binary_search(&status).is_ok()
    }
}

impl fmt::Display for CustomErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, code) in self.codes.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{code}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_of_codes() {
        let list = CustomErrors::parse("503, 404,404").unwrap().unwrap();
        assert_eq!(list.to_string(), "404,503");
        assert!(list.contains(503) && list.contains(404) && !list.contains(500));
        assert_eq!(CustomErrors::parse("").unwrap(), None);
        assert_eq!(CustomErrors::parse(" , ").unwrap(), None);
        assert!(CustomErrors::parse("300,599").unwrap().is_some());
    }

    #[test]
    fn refuses_what_is_not_an_error_code() {
        for bad in ["299", "600", "abc", "50x", "+503", "404;503", "-1"] {
            assert!(CustomErrors::parse(bad).is_err(), "{bad}");
        }
        let many = vec!["500"; 301].join(",");
        assert!(CustomErrors::parse(&many).is_err());
    }
}
