//! The environment, parsed once: built-in defaults < `.env` < environment variables, into typed
//! fields from one list of variable names ([`VARS`]).
//!
//! Only this module reads the process environment; commands get an [`Env`] and the core gets
//! plain values from the resolved settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::defaults;
use crate::names::Named;

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

pub const RAW_REVIEWS_PATH: &str = "RAW_REVIEWS_PATH";
pub const RAW_REVIEWS_URL: &str = "RAW_REVIEWS_URL";
pub const MIN_INTERACTIONS: &str = "MIN_INTERACTIONS";
pub const LOG_LEVEL: &str = "LOG_LEVEL";
pub const ENVIRONMENT: &str = "ENVIRONMENT";
pub const MLFLOW_TRACKING_URI: &str = "MLFLOW_TRACKING_URI";
pub const MLFLOW_TRACKING_USERNAME: &str = "MLFLOW_TRACKING_USERNAME";
pub const MLFLOW_TRACKING_PASSWORD: &str = "MLFLOW_TRACKING_PASSWORD";
pub const MLFLOW_TRACKING_TOKEN: &str = "MLFLOW_TRACKING_TOKEN";
pub const MLFLOW_TRACKING_INSECURE_TLS: &str = "MLFLOW_TRACKING_INSECURE_TLS";
pub const MLFLOW_TRACKING_SERVER_CERT_PATH: &str = "MLFLOW_TRACKING_SERVER_CERT_PATH";
pub const RECFLOW_ADMIN_TOKEN: &str = "RECFLOW_ADMIN_TOKEN";

/// Every variable recflow reads, in the order `recflow config` prints them.
pub const VARS: &[Var] = &[
    Var {
        name: RAW_REVIEWS_PATH,
        default: Some(defaults::INPUT),
        secret: false,
        help: "raw reviews file the ETL reads by default",
    },
    Var {
        name: RAW_REVIEWS_URL,
        default: Some(defaults::INPUT_URL),
        secret: false,
        help: "where RAW_REVIEWS_PATH is downloaded from by `recflow download` or `etl --download`",
    },
    Var {
        name: MIN_INTERACTIONS,
        default: Some("5"),
        secret: false,
        help: "k-core threshold of the ETL",
    },
    Var {
        name: LOG_LEVEL,
        default: Some(defaults::LOG_LEVEL),
        secret: false,
        help: "ERROR, WARN, INFO, DEBUG or TRACE",
    },
    Var {
        name: ENVIRONMENT,
        default: Some(defaults::ENVIRONMENT),
        secret: false,
        help: "free-form deployment label, logged with runs",
    },
    Var {
        name: MLFLOW_TRACKING_URI,
        default: Some(defaults::TRACKING_URI),
        secret: false,
        help: "file store path or MLflow server URL",
    },
    Var {
        name: MLFLOW_TRACKING_USERNAME,
        default: None,
        // A user name is half a credential: masked like the password.
        secret: true,
        help: "Basic auth user for an MLflow server",
    },
    Var {
        name: MLFLOW_TRACKING_PASSWORD,
        default: None,
        secret: true,
        help: "Basic auth password for an MLflow server",
    },
    Var {
        name: MLFLOW_TRACKING_TOKEN,
        default: None,
        secret: true,
        help: "Bearer token for an MLflow server",
    },
    Var {
        name: MLFLOW_TRACKING_INSECURE_TLS,
        default: Some("false"),
        secret: false,
        help: "skip TLS certificate checks (testing only)",
    },
    Var {
        name: MLFLOW_TRACKING_SERVER_CERT_PATH,
        default: None,
        secret: false,
        help: "CA bundle for the MLflow server's certificate",
    },
    Var {
        name: RECFLOW_ADMIN_TOKEN,
        default: None,
        secret: true,
        help: "bearer token guarding the server's admin endpoints",
    },
];

const _: () = assert!(
    defaults::MIN_INTERACTIONS == 5,
    "keep VARS' MIN_INTERACTIONS default in step"
);

crate::named_enum! {
    /// How much recflow logs on stderr.
    pub enum LogLevel: "log level" {
        Error = "error",
        Warn = "warn",
        Info = "info",
        Debug = "debug",
        Trace = "trace",
    }
}

impl LogLevel {
    /// Parses `LOG_LEVEL` values case-insensitively (`INFO`, `warning`).
    pub fn parse_env(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        let s = if s == "warning" {
            "warn".to_string()
        } else {
            s
        };
        Self::from_name(&s).ok()
    }
}

/// A resolved value and its source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

/// A variable whose value cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{name} ({from}) is `{value}`: {expected}")]
pub struct EnvError {
    pub name: &'static str,
    pub value: String,
    /// Where the value came from.
    pub from: Source,
    pub expected: &'static str,
}

/// A secret: kept in memory, never printed (`Debug` and `Serialize` show `****`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("****")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("****")
    }
}

/// The environment, typed. Values that cannot be parsed are kept as errors and reported by the
/// command that needs them (so a bad `MIN_INTERACTIONS` does not stop `recflow runs list`).
#[derive(Debug, Clone)]
pub struct Env {
    raw: BTreeMap<&'static str, (Option<String>, Source)>,
    dotenv_path: Option<PathBuf>,
    pub raw_reviews_path: Sourced<PathBuf>,
    pub raw_reviews_url: Sourced<String>,
    pub min_interactions: Result<Sourced<usize>, EnvError>,
    pub log_level: Result<Sourced<LogLevel>, EnvError>,
    pub environment: Sourced<String>,
    pub tracking_uri: Sourced<String>,
    pub tracking_username: Option<String>,
    pub tracking_password: Option<Secret>,
    pub tracking_token: Option<Secret>,
    pub tracking_insecure_tls: bool,
    pub tracking_cert_path: Option<PathBuf>,
    pub admin_token: Option<Secret>,
    /// The OS user (`USER`, else `LOGNAME`), for `mlflow.user`.
    pub user: Option<String>,
}

impl Default for Env {
    fn default() -> Self {
        Self::from_maps(&BTreeMap::new(), &BTreeMap::new(), None)
    }
}

impl Env {
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
        let mut raw = BTreeMap::new();
        for var in VARS {
            let v = if let Some(v) = env.get(var.name).filter(|v| !v.is_empty()) {
                (Some(v.clone()), Source::Env)
            } else if let Some(v) = dotenv.get(var.name).filter(|v| !v.is_empty()) {
                (Some(v.clone()), Source::DotEnv)
            } else {
                (var.default.map(str::to_string), Source::Default)
            };
            raw.insert(var.name, v);
        }
        let get = |name: &'static str| -> (String, Source) {
            let (v, s) = raw.get(name).cloned().unwrap_or((None, Source::Default));
            (v.unwrap_or_default(), s)
        };
        let opt = |name: &'static str| -> Option<String> {
            raw.get(name)
                .and_then(|(v, _)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let text = |name: &'static str| {
            let (value, source) = get(name);
            Sourced { value, source }
        };
        let min_interactions = {
            let (v, source) = get(MIN_INTERACTIONS);
            v.trim()
                .parse::<usize>()
                .map(|value| Sourced { value, source })
                .map_err(|_| EnvError {
                    name: MIN_INTERACTIONS,
                    value: v.clone(),
                    from: source,
                    expected: "expected a whole number such as 5",
                })
        };
        let log_level = {
            let (v, source) = get(LOG_LEVEL);
            LogLevel::parse_env(&v)
                .map(|value| Sourced { value, source })
                .ok_or(EnvError {
                    name: LOG_LEVEL,
                    value: v.clone(),
                    from: source,
                    expected: "expected ERROR, WARN, INFO, DEBUG or TRACE",
                })
        };
        let raw_reviews_path = {
            let s = text(RAW_REVIEWS_PATH);
            Sourced {
                value: PathBuf::from(s.value),
                source: s.source,
            }
        };
        let user = env
            .get("USER")
            .or_else(|| env.get("LOGNAME"))
            .filter(|u| !u.is_empty())
            .cloned()
            .or_else(|| whoami::fallible::username().ok());
        Self {
            raw_reviews_path,
            raw_reviews_url: text(RAW_REVIEWS_URL),
            min_interactions,
            log_level,
            environment: text(ENVIRONMENT),
            tracking_uri: text(MLFLOW_TRACKING_URI),
            tracking_username: opt(MLFLOW_TRACKING_USERNAME),
            tracking_password: opt(MLFLOW_TRACKING_PASSWORD).map(Secret),
            tracking_token: opt(MLFLOW_TRACKING_TOKEN).map(Secret),
            tracking_insecure_tls: opt(MLFLOW_TRACKING_INSECURE_TLS).is_some_and(|v| {
                matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
            }),
            tracking_cert_path: opt(MLFLOW_TRACKING_SERVER_CERT_PATH).map(PathBuf::from),
            admin_token: opt(RECFLOW_ADMIN_TOKEN).map(Secret),
            user,
            raw,
            dotenv_path,
        }
    }

    pub fn dotenv_path(&self) -> Option<&Path> {
        self.dotenv_path.as_deref()
    }

    /// Every variable with its value masked where secret, for `recflow config`.
    pub fn masked(&self) -> Vec<(&'static str, Option<String>, Source, &'static str)> {
        VARS.iter()
            .map(|var| {
                let (value, source) = self
                    .raw
                    .get(var.name)
                    .cloned()
                    .unwrap_or((None, Source::Default));
                let value = value.map(|s| {
                    if var.secret {
                        "****".to_string()
                    } else {
                        crate::tracking::mask_uri(&s)
                    }
                });
                (var.name, value, source, var.help)
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
        let c = Env::from_maps(
            &map(&[("MIN_INTERACTIONS", "3"), ("LOG_LEVEL", "DEBUG")]),
            &map(&[("MIN_INTERACTIONS", "7")]),
            None,
        );
        let m = c.min_interactions.clone().unwrap();
        assert_eq!((m.value, m.source), (7, Source::Env));
        let l = c.log_level.clone().unwrap();
        assert_eq!((l.value, l.source), (LogLevel::Debug, Source::DotEnv));
        assert_eq!(c.environment.value, "local");
        assert_eq!(c.environment.source, Source::Default);
    }

    #[test]
    fn a_bad_value_is_an_error_naming_the_variable_and_its_source() {
        let c = Env::from_maps(
            &BTreeMap::new(),
            &map(&[("MIN_INTERACTIONS", "five")]),
            None,
        );
        let e = c.min_interactions.unwrap_err();
        assert_eq!(
            e.to_string(),
            "MIN_INTERACTIONS (environment) is `five`: expected a whole number such as 5"
        );
    }

    #[test]
    fn secrets_and_uri_passwords_are_masked() {
        let c = Env::from_maps(
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
        assert!(!get("MLFLOW_TRACKING_URI").unwrap().contains("pw"));
        assert_eq!(format!("{:?}", c.tracking_token), "Some(****)");
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
