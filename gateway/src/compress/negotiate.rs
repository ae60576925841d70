//! `Accept-Encoding` with q-values (RFC 9110 §12.5.3): which of `br` and
//! `gzip` a client takes, and how much it prefers each.

use http::HeaderValue;

/// The longest `Accept-Encoding` read; a longer one counts as absent.
const MAX_LEN: usize = 1024;

/// The weights a client gives the two codings, in thousandths (0: refused
/// or not listed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Accepted {
    pub(crate) br: u16,
    pub(crate) gzip: u16,
}

/// Reads every `Accept-Encoding` line: `gzip`, `x-gzip` and `br`, each
/// with its `q` (1 when absent). `*` and `identity` are ignored, as nginx
/// ignores them.
pub(crate) fn accepted<'a>(values: impl Iterator<Item = &'a HeaderValue>) -> Accepted {
    let mut accepted = Accepted::default();
    let mut total = 0;
    for value in values {
        total += value.len();
        if total > MAX_LEN {
            return Accepted::default();
        }
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| {
                    let (name, value) = p.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("q")
                        .then(|| qvalue(value.trim()))
                })
                .unwrap_or(Some(1000));
            let Some(q) = q else { continue };
            if coding.eq_ignore_ascii_case("br") {
                accepted.br = q;
            } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                accepted.gzip = accepted.gzip.max(q);
            }
        }
    }
    accepted
}

/// A `qvalue` in thousandths: `0`, `1`, `0.5`, `1.000`; `None` if invalid.
fn qvalue(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{fraction:0<3}").parse().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: &[&'static str]) -> Accepted {
        let values: Vec<HeaderValue> = values.iter().map(|v| HeaderValue::from_static(v)).collect();
        accepted(values.iter())
    }

    #[test]
    fn codings_and_weights() {
        assert_eq!(
            of(&["gzip, deflate, br"]),
            Accepted {
                br: 1000,
                gzip: 1000
            }
        );
        assert_eq!(
            of(&["br;q=0.5, gzip;q=0.8"]),
            Accepted { br: 500, gzip: 800 }
        );
        assert_eq!(of(&["br;q=0, gzip"]), Accepted { br: 0, gzip: 1000 });
        assert_eq!(of(&["GZIP ; Q=0.25"]), Accepted { br: 0, gzip: 250 });
        assert_eq!(
            of(&["x-gzip", "br;q=1.0"]),
            Accepted {
                br: 1000,
                gzip: 1000
            }
        );
        assert_eq!(of(&["*", "identity"]), Accepted::default());
        assert_eq!(of(&[]), Accepted::default());
        // Invalid weights drop the item.
        assert_eq!(of(&["br;q=2, gzip;q=0.1234"]), Accepted::default());
    }
}
