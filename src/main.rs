//! The `recflow` binary: parse, run, print the error chain, exit with 0, 1 (user), 2 (usage or
//! internal), or 128 + the signal after a clean stop. A closed stdout exits 0.
#![allow(clippy::print_stderr)]

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use recflow::cli::Cli;
use recflow::commands::{exit_code_for, hint_for};
use recflow::output::is_broken_pipe;
use recflow::settings::{Env, LogLevel};

fn init_logging(cli: &Cli, env: &Env) {
    let level = cli
        .global
        .log_level
        .or_else(|| env.log_level.as_ref().ok().map(|l| l.value))
        .unwrap_or(LogLevel::Info);
    let level = if cli.global.quiet && level != LogLevel::Error {
        LogLevel::Warn
    } else {
        level
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "warn,recflow={level}"
        )))
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .try_init();
}

fn print_error(err: &anyhow::Error) {
    let mut out = std::io::stderr().lock();
    let mut chain = err.chain();
    if let Some(top) = chain.next() {
        let _ = writeln!(out, "error: {top}");
    }
    for cause in chain {
        let _ = writeln!(out, "  caused by: {cause}");
    }
    if let Some(h) = hint_for(err) {
        let _ = writeln!(out, "hint: {h}");
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let env = match Env::load(&cwd) {
        Ok(env) => env,
        Err(e) => {
            eprintln!("error: cannot read `.env` in {}: {e}", cwd.display());
            return ExitCode::from(1);
        }
    };
    init_logging(&cli, &env);
    if let Err(e) = &env.log_level {
        eprintln!("warning: {e}; logging at info");
    }
    // A panic is a bug: report it as an internal error with exit code 2.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        recflow::commands::run(cli, env)
    }));
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(err)) => {
            // A closed stdout (`recflow ... | head`) is not an error.
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            print_error(&err);
            ExitCode::from(exit_code_for(&err))
        }
        Err(_) => {
            eprintln!("error: internal error (a bug in recflow); please report it with the command you ran");
            ExitCode::from(2)
        }
    }
}
