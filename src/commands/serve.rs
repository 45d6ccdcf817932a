//! `recflow serve` and `recflow deploy`: run the HTTP server, and swap its model for a run's.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{DeployArgs, ServeArgs};
use crate::commands::common::{open_store, resolve_run};
use crate::commands::{show_path, Context, WithHint};
use crate::serve::{run_server, ServeSettings};
use crate::settings::{defaults, tracking_target};

/// Downloads a run's MLflow model into `artifacts/runs/<run_id>/` and returns the recflow model
/// folder in it. The run is a final child that made the model, or a parent that records its
/// winner's model as an output; runs logged before LoggedModels keep it under `model/data`.
pub fn fetch_run_model(ctx: &Context, run_id: &str, uri: Option<&str>) -> anyhow::Result<PathBuf> {
    let tracker = open_store(&tracking_target(uri, None, &ctx.env))?;
    // A prefix of the id works as in `runs show`; the folder is named by the full id.
    let run_id = resolve_run(tracker.as_ref(), run_id)?.info.run_id;
    let run_id = run_id.as_str();
    let dest = PathBuf::from(defaults::RUN_MODELS_DIR).join(run_id);
    std::fs::create_dir_all(defaults::RUN_MODELS_DIR)
        .hint("choose a working folder where `artifacts/` is writable")?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{run_id}-"))
        .tempdir_in(defaults::RUN_MODELS_DIR)
        .hint("choose a working folder where `artifacts/` is writable")?;
    let models = tracker.run_models(run_id)?;
    let own = models
        .iter()
        .find(|m| m.source_run_id.as_deref() == Some(run_id))
        .or(models.first());
    match own {
        Some(m) => tracker.download_model(m, staging.path())?,
        None => tracker
            .download_artifacts(run_id, Some("model/data"), staging.path())
            .hint(
                "the run has no logged model: deploy the parent run of a `recflow run` or its \
                 winner's final run (the parent's `best_run_id` tag)",
            )?,
    }
    let found = [
        staging.path().join("data"),
        staging.path().join("model/data"),
    ]
    .into_iter()
    .find(|p| p.join("metadata.json").exists())
    .ok_or_else(|| anyhow::anyhow!("the model of run `{run_id}` holds no recflow model folder"))?;
    if dest.exists() {
        std::fs::remove_dir_all(&dest)?;
    }
    std::fs::rename(&found, &dest)?;
    tracing::info!("run {run_id}: model downloaded to {}", show_path(&dest));
    Ok(std::fs::canonicalize(&dest).unwrap_or(dest))
}

pub fn run_serve(ctx: &Context, a: &ServeArgs) -> anyhow::Result<()> {
    let model_dir = match &a.run_id {
        Some(id) => fetch_run_model(ctx, id, a.tracking_uri.as_deref())?,
        None => a.model.clone(),
    };
    let settings = ServeSettings {
        host: a.host.clone(),
        port: a.port,
        model_dir,
        admin_token: ctx.env.admin_token.as_ref().map(|t| t.expose().to_string()),
        request_timeout: Duration::from_secs(a.timeout.max(1)),
        body_limit: a.body_limit,
        threads: a.threads,
        show_images: a.show_images,
        ..ServeSettings::default()
    };
    run_server(settings)?;
    Ok(())
}

pub fn run_deploy(ctx: &Context, a: &DeployArgs) -> anyhow::Result<()> {
    let token = ctx
        .env
        .admin_token
        .as_ref()
        .map(|t| t.expose().to_string())
        .ok_or_else(|| anyhow::anyhow!("RECFLOW_ADMIN_TOKEN is not set"))
        .hint("set it to the token the server was started with")?;
    let dir = fetch_run_model(ctx, &a.run_id, a.tracking_uri.as_deref())?;
    let url = format!("{}/admin/reload", a.server.trim_end_matches('/'));
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let resp = client
        .post(&url)
        .bearer_auth(token)
        .json(&serde_json::json!({ "model_dir": dir }))
        .send()
        .hint(format!("is `recflow serve` running at {}?", a.server))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        anyhow::bail!(
            "the server at {} refused the reload ({status}): {}",
            a.server,
            body.get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("no message")
        );
    }
    if ctx.out.is_json() {
        return Ok(ctx.out.json(&body)?);
    }
    ctx.out.line(format!(
        "{} now serves run {} ({})",
        a.server,
        a.run_id,
        show_path(&dir)
    ))?;
    Ok(())
}
