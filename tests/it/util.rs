//! Helpers: a temporary working folder and a way to run the binary in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Dir {
    pub tmp: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn fails_with(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.stderr);
        self
    }

    /// Stdout parsed as JSON (for `--json` commands).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

impl Dir {
    pub fn new() -> Self {
        Self {
            tmp: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, bytes).expect("write fixture");
        p
    }

    pub fn write_gz(&self, name: &str, text: &str) -> PathBuf {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(text.as_bytes()).expect("gzip");
        self.write(name, enc.finish().expect("gzip"))
    }

    /// Generated Amazon-format reviews in `r.json.gz`.
    pub fn generate(&self, users: u32, items: u32, ratings: u32, seed: u32) {
        let n = |v: u32| v.to_string();
        let (users, items, ratings, seed) = (n(users), n(items), n(ratings), n(seed));
        self.run(&[
            "generate",
            "--out",
            "r.json.gz",
            "--users",
            &users,
            "--items",
            &items,
            "--ratings",
            &ratings,
            "--seed",
            &seed,
        ])
        .ok();
    }

    /// Runs `recflow` here with a clean environment (no ambient LOG_LEVEL, MIN_INTERACTIONS...).
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_recflow"));
        cmd.current_dir(self.path()).args(args);
        for var in [
            "RAW_REVIEWS_PATH",
            "RAW_REVIEWS_URL",
            "MIN_INTERACTIONS",
            "LOG_LEVEL",
            "ENVIRONMENT",
            "MLFLOW_TRACKING_URI",
            "MLFLOW_TRACKING_TOKEN",
            "MLFLOW_TRACKING_PASSWORD",
            "MLFLOW_TRACKING_USERNAME",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out: Output = cmd.output().expect("run recflow");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn json(&self, name: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.join(name)).expect("read json");
        serde_json::from_str(&text).expect("parse json")
    }
}

/// The project's venv Python, when `make test` prepared it.
pub fn python() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    p.exists().then_some(p)
}

/// Python is required under `make test` (RECFLOW_REQUIRE_PYTHON=1); elsewhere a test skips loudly.
pub fn python_or_skip(test: &str) -> Option<PathBuf> {
    match python() {
        Some(p) => Some(p),
        None if std::env::var_os("RECFLOW_REQUIRE_PYTHON").is_some() => {
            panic!("{test}: .venv/bin/python is missing; run `make venv`")
        }
        None => {
            eprintln!("SKIPPED {test}: no .venv (run `make test` to set it up)");
            None
        }
    }
}
