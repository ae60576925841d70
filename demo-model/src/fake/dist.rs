//! Distributions of delays and lengths in a fake replica's profile, and
//! their seeded sampling.

use std::fmt;

use fastrand::Rng;
use serde::Deserialize;

/// The standard normal quantile at 0.99: a log-normal's p99 is
/// `median * exp(sigma * Z99)`.
const Z99: f64 = 2.326_347_874_040_841;

/// A distribution of non-negative values (milliseconds or tokens).
///
/// In JSON a plain number is a fixed value; otherwise exactly one of
/// `{"fixed": 5}`, `{"uniform": {"min": 1, "max": 9}}` or
/// `{"lognormal": {"median": 167, "p99": 180}}`.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(try_from = "Repr")]
pub enum Dist {
    /// Always this value.
    Fixed(f64),
    /// Uniform between `min` and `max` (inclusive).
    Uniform {
        /// The smallest value.
        min: f64,
        /// The largest value.
        max: f64,
    },
    /// Log-normal with this median and 99th percentile: a long right tail,
    /// like real service times.
    LogNormal {
        /// The 50th percentile.
        median: f64,
        /// The 99th percentile (at least the median).
        p99: f64,
    },
}

/// The JSON forms of a [`Dist`].
#[derive(Deserialize)]
#[serde(untagged)]
enum Repr {
    Number(f64),
    Tagged(Tagged),
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum Tagged {
    Fixed(f64),
    Uniform { min: f64, max: f64 },
    LogNormal { median: f64, p99: f64 },
}

/// A distribution that cannot be sampled: negative, not finite, or with
/// its bounds in the wrong order.
#[derive(Debug, PartialEq)]
pub struct InvalidDist(String);

impl fmt::Display for InvalidDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidDist {}

impl TryFrom<Repr> for Dist {
    type Error = InvalidDist;

    fn try_from(repr: Repr) -> Result<Self, InvalidDist> {
        let dist = match repr {
            Repr::Number(value) | Repr::Tagged(Tagged::Fixed(value)) => Dist::Fixed(value),
            Repr::Tagged(Tagged::Uniform { min, max }) => Dist::Uniform { min, max },
            Repr::Tagged(Tagged::LogNormal { median, p99 }) => Dist::LogNormal { median, p99 },
        };
        dist.check()?;
        Ok(dist)
    }
}

impl Dist {
    /// Checks that every parameter is finite and non-negative and that the
    /// bounds are in order.
    pub fn check(&self) -> Result<(), InvalidDist> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        match *self {
            Dist::Fixed(v) if ok(v) => Ok(()),
            Dist::Uniform { min, max } if ok(min) && ok(max) && min <= max => Ok(()),
            Dist::LogNormal { median, p99 } if ok(p99) && median > 0.0 && median <= p99 => Ok(()),
            Dist::Fixed(_) => Err(InvalidDist(
                "a fixed value must be a finite number >= 0".to_owned(),
            )),
            Dist::Uniform { .. } => Err(InvalidDist(
                "uniform needs finite 0 <= min <= max".to_owned(),
            )),
            Dist::LogNormal { .. } => Err(InvalidDist(
                "lognormal needs finite 0 < median <= p99".to_owned(),
            )),
        }
    }

    /// The largest value a sample can take, if bounded (a log-normal's
    /// tail is not; its samples are capped by the caller).
    pub(crate) fn upper_bound(&self) -> Option<f64> {
        match *self {
            Dist::Fixed(v) => Some(v),
            Dist::Uniform { max, .. } => Some(max),
            Dist::LogNormal { .. } => None,
        }
    }

    /// One sample, at most `cap`.
    pub fn sample(&self, rng: &mut Rng, cap: f64) -> f64 {
        let value = match *self {
            Dist::Fixed(v) => v,
            Dist::Uniform { min, max } => min + (max - min) * rng.f64(),
            Dist::LogNormal { median, p99 } => {
                let sigma = (p99 / median).ln() / Z99;
                median * (sigma * standard_normal(rng)).exp()
            }
        };
        value.clamp(0.0, cap)
    }
}

/// A standard normal sample (Box-Muller).
fn standard_normal(rng: &mut Rng) -> f64 {
    let u1 = 1.0 - rng.f64(); // in (0, 1]: ln is finite
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Dist, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn reads_every_form() {
        assert_eq!(parse("5").unwrap(), Dist::Fixed(5.0));
        assert_eq!(parse(r#"{"fixed": 2.5}"#).unwrap(), Dist::Fixed(2.5));
        assert_eq!(
            parse(r#"{"uniform": {"min": 1, "max": 9}}"#).unwrap(),
            Dist::Uniform { min: 1.0, max: 9.0 }
        );
        assert_eq!(
            parse(r#"{"lognormal": {"median": 167, "p99": 180}}"#).unwrap(),
            Dist::LogNormal {
                median: 167.0,
                p99: 180.0
            }
        );
    }

    #[test]
    fn refuses_bad_parameters() {
        for bad in [
            "-1",
            r#"{"uniform": {"min": 9, "max": 1}}"#,
            r#"{"lognormal": {"median": 0, "p99": 1}}"#,
            r#"{"lognormal": {"median": 10, "p99": 5}}"#,
            r#"{"normal": {"mean": 1}}"#,
            r#"{"fixed": 1, "uniform": {"min": 1, "max": 2}}"#,
            r#""5""#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn samples_stay_in_bounds() {
        let mut rng = Rng::with_seed(7);
        let uniform = Dist::Uniform {
            min: 10.0,
            max: 20.0,
        };
        for _ in 0..10_000 {
            let v = uniform.sample(&mut rng, f64::MAX);
            assert!((10.0..=20.0).contains(&v), "{v}");
        }
        assert_eq!(Dist::Fixed(50.0).sample(&mut rng, 30.0), 30.0);
        let wide = Dist::LogNormal {
            median: 100.0,
            p99: 10_000.0,
        };
        assert!((0..10_000).all(|_| wide.sample(&mut rng, 500.0) <= 500.0));
    }

    #[test]
    fn lognormal_has_the_asked_median_and_p99() {
        let dist = Dist::LogNormal {
            median: 167.0,
            p99: 180.0,
        };
        let mut rng = Rng::with_seed(42);
        let mut samples: Vec<f64> = (0..100_000)
            .map(|_| dist.sample(&mut rng, f64::MAX))
            .collect();
        samples.sort_by(f64::total_cmp);
        let median = samples[50_000];
        let p99 = samples[99_000];
        assert!((median - 167.0).abs() < 0.5, "median {median}");
        assert!((p99 - 180.0).abs() < 1.0, "p99 {p99}");
    }

    #[test]
    fn the_same_seed_gives_the_same_samples() {
        let dist = Dist::LogNormal {
            median: 50.0,
            p99: 150.0,
        };
        let draw = |seed| {
            let mut rng = Rng::with_seed(seed);
            (0..100)
                .map(|_| dist.sample(&mut rng, f64::MAX))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }
}
