//! One file per command. A command resolves its settings (through [`crate::settings`]), calls
//! the pipeline or the core, and prints results through the [`Printer`]. Commands are leaves: no
//! command imports another. `anyhow` lives here and in `main` only.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::output::Printer;
use crate::progress::Progress;
use crate::settings::Env;

mod common;
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

/// The run stopped on a signal after ending its work cleanly: exits 128 + the signal.
#[derive(Debug, thiserror::Error)]
#[error("stopped by {}", if *.0 == SIGINT { "Ctrl-C (SIGINT)" } else { "SIGTERM" })]
pub struct Interrupted(pub i32);

/// Results could only be written to a local store: exits 1 (DECISIONS.md).
#[derive(Debug, thiserror::Error)]
#[error("the tracking server did not take every run; they were saved to {0}")]
pub struct OnlySpooled(pub String);

pub const SIGINT: i32 = 2;
pub const SIGTERM: i32 = 15;

/// Which stop signal arrived, if any. Set by the handlers [`Context::catch_signals`] installs;
/// long commands check it between iterations and fits and stop cleanly.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    any: Arc<AtomicBool>,
    int: Arc<AtomicBool>,
    term: Arc<AtomicBool>,
}

impl Stop {
    pub fn signal(&self) -> Option<i32> {
        if self.int.load(Ordering::SeqCst) {
            Some(SIGINT)
        } else if self.term.load(Ordering::SeqCst) {
            Some(SIGTERM)
        } else {
            None
        }
    }

    pub fn requested(&self) -> bool {
        self.any.load(Ordering::SeqCst)
    }
}

/// What every command gets besides its own arguments.
pub struct Context {
    pub global: GlobalArgs,
    pub env: Env,
    pub progress: Progress,
    pub out: Printer,
    pub stop: Stop,
}

impl Context {
    pub fn new(global: GlobalArgs, env: Env) -> Self {
        let progress = Progress::from_terminal(!global.no_progress && !global.quiet);
        let out = Printer::stdout(global.quiet, global.json);
        Self {
            global,
            env,
            progress,
            out,
            stop: Stop::default(),
        }
    }

    /// Prints a command's resolved settings for `--show-settings`; `true` when it did (the
    /// command then stops).
    pub fn show_settings<T: serde::Serialize>(&self, settings: &T) -> anyhow::Result<bool> {
        if !self.global.show_settings {
            return Ok(false);
        }
        self.out.json(settings)?;
        Ok(true)
    }

    /// On the first SIGINT or SIGTERM, records it so the command can stop cleanly; on a second
    /// one, exits at once with 128 + the signal.
    pub fn catch_signals(&self) -> anyhow::Result<()> {
        use signal_hook::flag;
        for (sig, own) in [(SIGINT, &self.stop.int), (SIGTERM, &self.stop.term)] {
            // Registered first, so it sees the flag as it was before this signal.
            flag::register_conditional_shutdown(sig, 128 + sig, self.stop.any.clone())?;
            flag::register(sig, self.stop.any.clone())?;
            flag::register(sig, own.clone())?;
        }
        Ok(())
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli, env: Env) -> anyhow::Result<ExitCode> {
    // First thing: OpenBLAS's load-time workers busy-wait on a core while data is read.
    crate::model::als::linalg::blas_single_threaded();
    // A file-size limit (`ulimit -f`) kills a process silently with SIGXFSZ; with a handler the
    // write fails with "File too large" instead, and the error names the file.
    let _ = signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        Arc::new(AtomicBool::new(false)),
    );
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
        let hint = if let Some(h) = cause.downcast_ref::<Hinted>() {
            Some(h.hint.clone())
        } else if let Some(e) = cause.downcast_ref::<crate::data::etl::EtlError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<crate::data::read::ReadError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<crate::data::store::StoreError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<crate::data::cache::CacheError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<crate::data::testfile::TestFileError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<crate::pipeline::train::TrainError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<crate::pipeline::experiment::ExperimentError>()
        {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<crate::model::artifact::ArtifactError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<crate::model::family::FamilyError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<crate::eda::EdaError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<crate::serve::ServeError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<crate::spec::SpecError>() {
            e.hint()
        } else if let Some(e) = cause.downcast_ref::<crate::settings::SettingsError>() {
            e.hint()
        } else {
            None
        };
        if hint.is_some() {
            return hint;
        }
    }
    None
}

/// 128 + the signal after a clean stop; 2 for recflow's own failures; 1 for everything the
/// user can fix.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if let Some(i) = err.chain().find_map(|c| c.downcast_ref::<Interrupted>()) {
        return (128 + i.0) as u8;
    }
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
