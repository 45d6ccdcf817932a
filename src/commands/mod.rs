//! One file per command. Commands resolve settings (command line > spec > environment > `.env`
//! > defaults), call the library, and print results. `anyhow` lives here and in `main` only.

use std::path::Path;
use std::process::ExitCode;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::progress::Progress;
use crate::settings::EnvConfig;

mod config;
mod download;
mod eda;
mod etl;
mod eval;
mod generate;
mod recommend;
mod run;
mod runs;
mod serve;
mod train;

/// An error with a `hint:` line for the user. Displays as the wrapped error, so the printed chain
/// is unchanged; `main` prints the hint under it.
#[derive(Debug)]
pub struct Hinted {
    inner: anyhow::Error,
    hint: String,
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.inner)
    }
}

impl std::error::Error for Hinted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.chain().nth(1)
    }
}

/// Attaches a hint to an error: `result.hint("run `recflow etl` first")`.
pub trait WithHint<T> {
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> WithHint<T> for Result<T, E> {
    fn hint(self, hint: impl Into<String>) -> anyhow::Result<T> {
        self.map_err(|e| {
            anyhow::Error::new(Hinted {
                inner: e.into(),
                hint: hint.into(),
            })
        })
    }
}

/// A failure that is recflow's fault, not the user's: exits with code 2.
#[derive(Debug, thiserror::Error)]
#[error("internal error: {0}")]
pub struct InternalError(pub String);

/// What every command gets besides its own arguments.
pub struct Context {
    pub global: GlobalArgs,
    pub env: EnvConfig,
    pub progress: Progress,
}

impl Context {
    pub fn new(global: GlobalArgs, env: EnvConfig) -> Self {
        let progress = Progress::from_terminal(!global.no_progress && !global.quiet);
        Self {
            global,
            env,
            progress,
        }
    }

    /// Prints a result line on stdout unless `--quiet` or `--json`.
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.global.quiet && !self.global.json {
            println!("{}", line.as_ref());
        }
    }

    /// Prints a value as pretty JSON on stdout.
    pub fn print_json<T: serde::Serialize>(&self, value: &T) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(value)?);
        Ok(())
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli, env: EnvConfig) -> anyhow::Result<ExitCode> {
    // First thing: OpenBLAS's load-time workers busy-wait on a core while data is read.
    crate::model::als::linalg::blas_single_threaded();
    let ctx = Context::new(cli.global, env);
    match cli.command {
        Command::Etl(args) => etl::run(&ctx, &args),
        Command::Config => config::run(&ctx),
        Command::TrainAls(args) => train::run_train_als(&ctx, &args),
        Command::Train(args) => train::run_train(&ctx, &args),
        Command::Eval(args) => eval::run(&ctx, &args),
        Command::Recommend(args) => recommend::run(&ctx, &args),
        Command::Run(args) => run::run(&ctx, &args),
        Command::Eda(args) => eda::run(&ctx, &args),
        Command::Serve(args) => serve::run_serve(&ctx, &args),
        Command::Deploy(args) => serve::run_deploy(&ctx, &args),
        Command::Experiments { command } => runs::run_experiments(&ctx, &command),
        Command::Runs { command } => runs::run_runs(&ctx, &command),
        Command::Sync(args) => runs::run_sync(&ctx, &args),
        Command::Generate(args) => generate::run(&ctx, &args),
        Command::Download(args) => download::run(&ctx, &args),
    }?;
    Ok(ExitCode::SUCCESS)
}

/// The `hint:` line for an error chain, from the first error that knows one.
pub fn hint_for(err: &anyhow::Error) -> Option<String> {
    for cause in err.chain() {
        if let Some(h) = cause.downcast_ref::<Hinted>() {
            return Some(h.hint.clone());
        }
        if let Some(e) = cause.downcast_ref::<crate::data::etl::EtlError>() {
            if let Some(h) = e.hint() {
                return Some(h);
            }
        }
        if let Some(e) = cause.downcast_ref::<crate::data::read::ReadError>() {
            if let Some(h) = e.hint() {
                return Some(h);
            }
        }
        if let Some(e) = cause.downcast_ref::<crate::data::store::StoreError>() {
            if let Some(h) = e.hint() {
                return Some(h);
            }
        }
        if let Some(e) = cause.downcast_ref::<crate::train::TrainError>() {
            if let Some(h) = e.hint() {
                return Some(h);
            }
        }
        if let Some(e) = cause.downcast_ref::<crate::model::artifact::ArtifactError>() {
            if let Some(h) = e.hint() {
                return Some(h);
            }
        }
        if let Some(e) = cause.downcast_ref::<crate::eda::EdaError>() {
            if let Some(h) = e.hint() {
                return Some(h);
            }
        }
        if let Some(e) = cause.downcast_ref::<crate::serve::ServeError>() {
            if let Some(h) = e.hint() {
                return Some(h);
            }
        }
        if let Some(e) = cause.downcast_ref::<crate::spec::SpecError>() {
            if let Some(h) = e.hint() {
                return Some(h);
            }
        }
    }
    None
}

/// 2 for recflow's own failures, 1 for everything the user can fix.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if err
        .chain()
        .any(|c| c.downcast_ref::<InternalError>().is_some())
    {
        2
    } else {
        1
    }
}

/// Displays a path relative to the working directory when it is inside it.
pub fn show_path(p: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(&cwd).ok().map(|r| r.display().to_string()))
        .unwrap_or_else(|| p.display().to_string())
}
