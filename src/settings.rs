//! Configuration from the environment: built-in defaults < `.env` < environment variables.
//!
//! Command-line values and experiment specs sit above these; each command resolves its own
//! settings once and passes plain values to the core, which never reads the environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Where a configuration value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Default,
    DotEnv,
    Env,
    Cli,
    Spec,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Default => "default",
            Source::DotEnv => ".env",
            Source::Env => "environment",
            Source::Cli => "command line",
            Source::Spec => "spec",
        })
    }
}

/// One configuration variable: its name, default, and whether it is a secret.
pub struct Var {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub secret: bool,
    pub help: &'static str,
}

/// Every variable recflow reads, in the order `recflow config` prints them.
pub const VARS: &[Var] = &[
    Var { name: "RAW_REVIEWS_PATH", default: Some("data/raw/reviews_electronics.json.gz"), secret: false, help: "raw reviews file the ETL reads by default" },
    Var { name: "RAW_REVIEWS_URL", default: Some("https://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_Electronics_5.json.gz"), secret: false, help: "where RAW_REVIEWS_PATH is downloaded from when missing" },
    Var { name: "MIN_INTERACTIONS", default: Some("5"), secret: false, help: "k-core threshold of the ETL" },
    Var { name: "LOG_LEVEL", default: Some("INFO"), secret: false, help: "ERROR, WARN, INFO, DEBUG or TRACE" },
    Var { name: "ENVIRONMENT", default: Some("local"), secret: false, help: "free-form deployment label, logged with runs" },
    Var { name: "MLFLOW_TRACKING_URI", default: Some("file:./mlruns"), secret: false, help: "file store path or MLflow server URL" },
    Var { name: "MLFLOW_TRACKING_USERNAME", default: None, secret: false, help: "Basic auth user for an MLflow server" },
    Var { name: "MLFLOW_TRACKING_PASSWORD", default: None, secret: true, help: "Basic auth password for an MLflow server" },
    Var { name: "MLFLOW_TRACKING_TOKEN", default: None, secret: true, help: "Bearer token for an MLflow server" },
    Var { name: "MLFLOW_TRACKING_INSECURE_TLS", default: Some("false"), secret: false, help: "skip TLS certificate checks (testing only)" },
    Var { name: "MLFLOW_TRACKING_SERVER_CERT_PATH", default: None, secret: false, help: "CA bundle for the MLflow server's certificate" },
    Var { name: "RECFLOW_ADMIN_TOKEN", default: None, secret: true, help: "bearer token guarding the server's admin endpoints" },
];

/// A resolved value and its source.
#[derive(Debug, Clone, Serialize)]
pub struct Value {
    pub value: Option<String>,
    pub source: Source,
}

/// Environment-level configuration (defaults < `.env` < environment).
#[derive(Debug, Clone, Default)]
pub struct EnvConfig {
    values: BTreeMap<&'static str, Value>,
    dotenv_path: Option<PathBuf>,
}

impl EnvConfig {
    /// Reads `.env` in `dir` (if present) and the process environment.
    pub fn load(dir: &Path) -> Result<Self, dotenvy::Error> {
        let path = dir.join(".env");
        let mut dotenv = BTreeMap::new();
        let found = path.is_file();
        if found {
            for item in dotenvy::from_path_iter(&path)? {
                let (k, v) = item?;
                dotenv.insert(k, v);
            }
        }
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Ok(Self::from_maps(&dotenv, &env, found.then_some(path)))
    }

    /// Resolves from explicit maps (for tests and for `load`).
    pub fn from_maps(
        dotenv: &BTreeMap<String, String>,
        env: &BTreeMap<String, String>,
        dotenv_path: Option<PathBuf>,
    ) -> Self {
        let mut values = BTreeMap::new();
        for var in VARS {
            let v = if let Some(v) = env.get(var.name).filter(|v| !v.is_empty()) {
                Value {
                    value: Some(v.clone()),
                    source: Source::Env,
                }
            } else if let Some(v) = dotenv.get(var.name).filter(|v| !v.is_empty()) {
                Value {
                    value: Some(v.clone()),
                    source: Source::DotEnv,
                }
            } else {
                Value {
                    value: var.default.map(str::to_string),
                    source: Source::Default,
                }
            };
            values.insert(var.name, v);
        }
        Self {
            values,
            dotenv_path,
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.value.as_deref())
    }

    pub fn source(&self, name: &str) -> Source {
        self.values.get(name).map_or(Source::Default, |v| v.source)
    }

    pub fn dotenv_path(&self) -> Option<&Path> {
        self.dotenv_path.as_deref()
    }

    /// Every variable with its value masked where secret, for display.
    pub fn masked(&self) -> Vec<(&'static str, Option<String>, Source, &'static str)> {
        VARS.iter()
            .map(|var| {
                let v = self.values.get(var.name);
                let value = v.and_then(|v| v.value.clone()).map(|s| {
                    if var.secret {
                        "****".to_string()
                    } else {
                        crate::tracking::mask_uri(&s)
                    }
                });
                (
                    var.name,
                    value,
                    v.map_or(Source::Default, |v| v.source),
                    var.help,
                )
            })
            .collect()
    }
}

/// Picks the first value present, in precedence order, with its source.
pub fn pick<T>(candidates: impl IntoIterator<Item = (Option<T>, Source)>) -> Option<(T, Source)> {
    candidates.into_iter().find_map(|(v, s)| v.map(|v| (v, s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_beats_dotenv_beats_default() {
        let c = EnvConfig::from_maps(
            &map(&[("MIN_INTERACTIONS", "3"), ("LOG_LEVEL", "DEBUG")]),
            &map(&[("MIN_INTERACTIONS", "7")]),
            None,
        );
        assert_eq!(c.get("MIN_INTERACTIONS"), Some("7"));
        assert_eq!(c.source("MIN_INTERACTIONS"), Source::Env);
        assert_eq!(c.get("LOG_LEVEL"), Some("DEBUG"));
        assert_eq!(c.source("LOG_LEVEL"), Source::DotEnv);
        assert_eq!(c.get("ENVIRONMENT"), Some("local"));
        assert_eq!(c.source("ENVIRONMENT"), Source::Default);
    }

    #[test]
    fn secrets_and_uri_passwords_are_masked() {
        let c = EnvConfig::from_maps(
            &BTreeMap::new(),
            &map(&[
                ("MLFLOW_TRACKING_TOKEN", "abc"),
                ("MLFLOW_TRACKING_URI", "https://u:pw@host:5000/x"),
            ]),
            None,
        );
        let m = c.masked();
        let get = |n: &str| m.iter().find(|r| r.0 == n).and_then(|r| r.1.clone());
        assert_eq!(get("MLFLOW_TRACKING_TOKEN").as_deref(), Some("****"));
        assert_eq!(
            get("MLFLOW_TRACKING_URI").as_deref(),
            Some("https://u:****@host:5000/x")
        );
    }

    #[test]
    fn command_line_wins_over_every_other_source() {
        let v = pick([
            (Some(9), Source::Cli),
            (Some(5), Source::Env),
            (Some(1), Source::Default),
        ]);
        assert_eq!(v, Some((9, Source::Cli)));
        let v = pick([(None, Source::Cli), (Some(5), Source::Env)]);
        assert_eq!(v, Some((5, Source::Env)));
    }
}
