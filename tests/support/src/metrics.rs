//! Prometheus text exposition: scraping `GET /metrics` and a small parser
//! for the samples, so tests can compare counters before and after traffic.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::client;

/// One sample line of the text exposition: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample name, with any `_bucket`, `_sum` or `_count` suffix.
    pub name: String,
    /// The labels, by name (empty values kept as they were written).
    pub labels: BTreeMap<String, String>,
    /// The value (`+Inf`, `-Inf` and `NaN` included).
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    /// Whether every `(name, value)` of `wanted` is among the labels.
    pub fn has_labels(&self, wanted: &[(&str, &str)]) -> bool {
        wanted
            .iter()
            .all(|(name, value)| self.label(name) == Some(*value))
    }
}

/// `GET /metrics` on `addr` and the parsed samples.
///
/// Panics if the request fails, the status is not 200, or the text does not
/// parse.
pub async fn scrape(addr: SocketAddr) -> Vec<Sample> {
    parse(&scrape_text(addr).await).unwrap_or_else(|error| panic!("/metrics on {addr}: {error}"))
}

/// `GET /metrics` on `addr`, as text.
///
/// Panics if the request fails or the status is not 200.
pub async fn scrape_text(addr: SocketAddr) -> String {
    let response = client::get(addr, &addr.to_string(), "/metrics").await;
    assert_eq!(
        response.status,
        200,
        "GET /metrics on {addr}: {}",
        response.text()
    );
    response.text()
}

/// The samples whose name is `name` and whose labels include `labels`.
pub fn matching<'s>(samples: &'s [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'s Sample> {
    samples
        .iter()
        .filter(|s| s.name == name && s.has_labels(labels))
        .collect()
}

/// The sum of the values of [`matching`] samples (0 when there are none).
pub fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    matching(samples, name, labels)
        .iter()
        .map(|s| s.value)
        .sum()
}

/// Parses the Prometheus text format (version 0.0.4): `#` lines are
/// skipped, every other non-empty line is a sample.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|(index, line)| {
            parse_line(line).map_err(|error| format!("line {}: {error}: {line:?}", index + 1))
        })
        .collect()
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = parse_labels(after_brace, &mut labels)?;
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
    };
    // An optional timestamp may follow; nothing else.
    if fields.nth(1).is_some() {
        return Err("trailing fields".to_owned());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses `a="x",b="y"}` and returns what follows the closing brace.
fn parse_labels<'l>(
    mut rest: &'l str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'l str, String> {
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let name = rest[..eq].trim();
        rest = rest[eq + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated escape".to_owned()),
                },
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".to_owned()),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name:?} repeated"));
        }
        rest = rest[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_labels_and_special_values() {
        let text = "# HELP x_total A counter.\n# TYPE x_total counter\n\
                    x_total{a=\"1\",b=\"q\\\"uo\\\\te\\n\"} 3\n\
                    y 1.5e3 1700000000000\n\
                    h_bucket{le=\"+Inf\",path=\"/a,b}\"} +Inf\n\
                    z{} NaN\n";
        let samples = parse(text).unwrap();
        assert_eq!(samples.len(), 4);
        assert_eq!(samples[0].name, "x_total");
        assert_eq!(samples[0].label("a"), Some("1"));
        assert_eq!(samples[0].label("b"), Some("q\"uo\\te\n"));
        assert_eq!(samples[0].value, 3.0);
        assert_eq!(samples[1].value, 1500.0);
        assert!(samples[1].labels.is_empty());
        assert_eq!(samples[2].label("path"), Some("/a,b}"));
        assert!(samples[2].value.is_infinite());
        assert!(samples[3].value.is_nan());
        assert_eq!(sum(&samples, "x_total", &[("a", "1")]), 3.0);
        assert_eq!(sum(&samples, "x_total", &[("a", "2")]), 0.0);
    }

    #[test]
    fn rejects_malformed_lines() {
        assert!(parse("x{a=1} 1").is_err());
        assert!(parse("x{a=\"1\" 1").is_err());
        assert!(parse("x").is_err());
        assert!(parse("x one").is_err());
        assert!(parse("x{a=\"1\",a=\"2\"} 1").is_err());
    }
}
