//! The `demo-model --config FILE` format: named profiles and the replicas
//! to start, each on its own address with one of the profiles.
//!
//! ```json
//! {
//!   "seed": 42,
//!   "profiles": {
//!     "normal": {"ttft_ms": {"lognormal": {"median": 167, "p99": 180}}, "output_tokens": 1},
//!     "stuck": {"ttft_ms": 167, "output_tokens": 1,
//!               "stuck": {"after_ms": 15000, "for_ms": 30000, "latency_ms": 2000}}
//!   },
//!   "replicas": [
//!     {"listen": "127.0.0.11:8080", "model": "1", "profile": "normal"},
//!     {"listen": "127.0.0.12:8080", "model": "1", "profile": "stuck", "seed": 7}
//!   ]
//! }
//! ```
//!
//! A replica without `profile` gets the default one ([`Profile::default`]);
//! without `model`, model "1"; without `seed`, the file's `seed` plus its
//! index in the list, so every replica draws its own reproducible sequence.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;

use serde::Deserialize;

use super::profile::Profile;

/// The most replicas one file may start.
pub const MAX_REPLICAS: usize = 1024;

/// A parsed and checked `--config` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeConfig {
    /// The base of the replicas' seeds.
    #[serde(default)]
    pub seed: u64,
    /// Profiles by name.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    /// The replicas to start.
    pub replicas: Vec<ReplicaSpec>,
}

/// One replica in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaSpec {
    /// The address to serve on.
    pub listen: SocketAddr,
    /// The model id echoed in answers.
    #[serde(default = "default_model")]
    pub model: String,
    /// The name of a profile in `profiles`; the default profile if absent.
    pub profile: Option<String>,
    /// This replica's seed, instead of the file's seed plus its index.
    pub seed: Option<u64>,
}

fn default_model() -> String {
    "1".to_owned()
}

/// One replica, resolved: what [`crate::ModelServer::bind_fake`] takes.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeReplica {
    /// The address to serve on.
    pub listen: SocketAddr,
    /// The model id.
    pub model: String,
    /// The name of its profile (`default` if none was named).
    pub profile_name: String,
    /// Its profile.
    pub profile: Profile,
    /// Its random seed.
    pub seed: u64,
}

/// A config file that cannot be used, with the reason.
#[derive(Debug, PartialEq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl FakeConfig {
    /// Parses and checks a config file's text, and resolves every replica.
    pub fn replicas_from_json(text: &str) -> Result<Vec<FakeReplica>, ConfigError> {
        let config: FakeConfig =
            serde_json::from_str(text).map_err(|e| ConfigError(format!("invalid config: {e}")))?;
        config.resolve()
    }

    /// Checks every profile and replica and gives each replica its
    /// profile and seed.
    pub fn resolve(self) -> Result<Vec<FakeReplica>, ConfigError> {
        if self.replicas.is_empty() || self.replicas.len() > MAX_REPLICAS {
            let message = format!("\"replicas\" must list 1 to {MAX_REPLICAS} replicas");
            return Err(ConfigError(message));
        }
        for (name, profile) in &self.profiles {
            profile
                .check()
                .map_err(|e| ConfigError(format!("profile {name:?}: {e}")))?;
        }
        let mut seen = HashSet::new();
        let mut replicas = Vec::with_capacity(self.replicas.len());
        for (index, spec) in self.replicas.into_iter().enumerate() {
            if !seen.insert(spec.listen) {
                let message = format!("two replicas listen on {}", spec.listen);
                return Err(ConfigError(message));
            }
            let (profile_name, profile) = match spec.profile {
                None => ("default".to_owned(), Profile::default()),
                Some(name) => match self.profiles.get(&name) {
                    Some(profile) => (name, profile.clone()),
                    None => {
                        let message = format!("replica {}: no profile {name:?}", spec.listen);
                        return Err(ConfigError(message));
                    }
                },
            };
            replicas.push(FakeReplica {
                listen: spec.listen,
                model: spec.model,
                profile_name,
                profile,
                seed: spec.seed.unwrap_or(self.seed.wrapping_add(index as u64)),
            });
        }
        Ok(replicas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Dist;

    #[test]
    fn resolves_profiles_models_and_seeds() {
        let replicas = FakeConfig::replicas_from_json(
            r#"{"seed": 10,
                "profiles": {"slow": {"slow_factor": 5, "slots": 4}},
                "replicas": [
                  {"listen": "127.0.0.11:8080"},
                  {"listen": "127.0.0.12:8080", "model": "7", "profile": "slow"},
                  {"listen": "127.0.0.13:8080", "profile": "slow", "seed": 3}
                ]}"#,
        )
        .unwrap();
        assert_eq!(replicas.len(), 3);
        assert_eq!(replicas[0].profile, Profile::default());
        assert_eq!(replicas[0].profile_name, "default");
        assert_eq!((replicas[0].model.as_str(), replicas[0].seed), ("1", 10));
        assert_eq!((replicas[1].model.as_str(), replicas[1].seed), ("7", 11));
        assert_eq!(replicas[1].profile.slow_factor, 5.0);
        assert_eq!(replicas[1].profile.ttft_ms, Dist::Fixed(50.0));
        assert_eq!(replicas[2].seed, 3);
    }

    #[test]
    fn refuses_bad_files() {
        for (bad, why) in [
            (r#"{"replicas": []}"#, "must list"),
            (
                r#"{"replicas": [{"listen": "127.0.0.1:1", "profile": "x"}]}"#,
                "no profile",
            ),
            (
                r#"{"replicas": [{"listen": "127.0.0.1:1"}, {"listen": "127.0.0.1:1"}]}"#,
                "two replicas",
            ),
            (
                r#"{"profiles": {"p": {"slots": 0}}, "replicas": [{"listen": "127.0.0.1:1"}]}"#,
                "profile \"p\": slots",
            ),
            (r#"{"replicas": [{"listen": "nowhere"}]}"#, "invalid config"),
            (
                r#"{"replicas": [{"listen": "127.0.0.1:1"}], "extra": 1}"#,
                "unknown field",
            ),
        ] {
            let error = FakeConfig::replicas_from_json(bad).unwrap_err().to_string();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
