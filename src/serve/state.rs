//! What every request shares: the model slot (swapped whole on reload, never edited), the scoring
//! threads, the counters, the admin token and the limits.
//!
//! A request takes the current model once, as an `Arc`, and keeps it to the end, so a reload never
//! changes a model under a request and the old model is freed when its last request finishes.
//! Knows nothing about routes or the wire format.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Deserialize;

use super::error::{LoadError, ServeError};
use super::metrics::{Gauges, Metrics};
use super::model::ServingModel;
use super::scorer::Scorer;
use super::server::ServeSettings;
use crate::model::artifact::SavedModel;

/// The body of `POST /admin/reload` (every field optional): which model to load next.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReloadRequest {
    /// A model folder on the server's file system.
    pub model_dir: Option<PathBuf>,
    /// A tracking run whose model to load (only when the server's loader resolves runs).
    pub run_id: Option<String>,
}

impl ReloadRequest {
    fn describe(&self, default: &str) -> String {
        match (&self.model_dir, &self.run_id) {
            (Some(dir), _) => dir.display().to_string(),
            (None, Some(run)) => format!("run {run}"),
            (None, None) => default.to_string(),
        }
    }
}

/// A model a loader produced, with a description of where it came from.
#[derive(Debug)]
pub struct LoadedModel {
    pub model: SavedModel,
    pub source: String,
}

/// Finds and reads the model a reload asks for. Runs on a blocking thread.
pub type ModelLoader = Arc<dyn Fn(&ReloadRequest) -> Result<LoadedModel, LoadError> + Send + Sync>;

#[derive(Debug, thiserror::Error)]
#[error("this server loads models from folders only; send `model_dir` instead of `run_id`")]
struct RunIdUnsupported;

/// Loads `model_dir` from a request, or `default_dir` when the request names none. Run ids are
/// refused: resolving them needs tracking, which the caller can add with its own loader.
pub fn dir_loader(default_dir: PathBuf) -> ModelLoader {
    Arc::new(move |req: &ReloadRequest| {
        if req.run_id.is_some() && req.model_dir.is_none() {
            return Err(Box::new(RunIdUnsupported) as LoadError);
        }
        let dir: &Path = req.model_dir.as_deref().unwrap_or(&default_dir);
        let model = SavedModel::load(dir)?;
        Ok(LoadedModel {
            model,
            source: dir.display().to_string(),
        })
    })
}

/// Shared server state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    model: RwLock<Option<Arc<ServingModel>>>,
    scorer: Scorer,
    metrics: Metrics,
    admin_token: Option<String>,
    request_timeout: Duration,
    body_limit: usize,
    show_images: bool,
    loader: ModelLoader,
    default_source: String,
    /// Held for a whole load, on the loading thread: one model is read at a time.
    reloading: Mutex<()>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("model_loaded", &self.model().is_some())
            .field("scorer", &self.inner.scorer)
            .field(
                "admin_token",
                &self.inner.admin_token.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

impl AppState {
    #[cfg(test)]
    /// State for `settings`, loading models from folders (`settings.model_dir` by default). No
    /// model is loaded yet: call [`AppState::install`] or [`AppState::reload`].
    pub fn new(settings: &ServeSettings) -> Self {
        Self::with_loader(settings, dir_loader(settings.model_dir.clone()))
    }

    /// As [`AppState::new`], with models found by `loader`.
    pub fn with_loader(settings: &ServeSettings, loader: ModelLoader) -> Self {
        Self {
            inner: Arc::new(Inner {
                model: RwLock::new(None),
                scorer: Scorer::new(settings.effective_threads()),
                metrics: Metrics::default(),
                admin_token: settings.admin_token.clone().filter(|t| !t.is_empty()),
                request_timeout: settings.request_timeout,
                body_limit: settings.body_limit,
                show_images: settings.show_images,
                loader,
                default_source: settings.model_dir.display().to_string(),
                reloading: Mutex::new(()),
            }),
        }
    }

    /// Serves `model` from now on; requests already running finish on the model they started
    /// with.
    #[cfg(test)]
    pub fn install(&self, model: SavedModel, source: impl Into<String>) -> Arc<ServingModel> {
        self.install_prepared(Arc::new(ServingModel::new(model, source)))
    }

    fn install_prepared(&self, model: Arc<ServingModel>) -> Arc<ServingModel> {
        let mut slot = self.inner.model.write().unwrap_or_else(|e| e.into_inner());
        *slot = Some(Arc::clone(&model));
        model
    }

    /// The model requests are answered with now, if one is loaded.
    pub fn model(&self) -> Option<Arc<ServingModel>> {
        self.inner
            .model
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads the model `req` names on a blocking thread and swaps it in. The swap happens on that
    /// thread, so it completes even if the caller stops waiting. On failure the current model
    /// stays.
    pub async fn reload(&self, req: ReloadRequest) -> Result<Arc<ServingModel>, ServeError> {
        let state = self.clone();
        let what = req.describe(&self.inner.default_source);
        let task = tokio::task::spawn_blocking(move || {
            let _one_at_a_time = state
                .inner
                .reloading
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let loaded = (state.inner.loader)(&req)?;
            let model = Arc::new(ServingModel::new(loaded.model, loaded.source));
            Ok::<_, LoadError>(state.install_prepared(model))
        });
        let result = match task.await {
            Ok(r) => r,
            Err(e) => Err(Box::new(e) as LoadError),
        };
        self.inner.metrics.record_load(result.is_ok());
        match result {
            Ok(model) => {
                tracing::info!(
                    source = %model.source,
                    users = model.n_users(),
                    items = model.n_items(),
                    "model loaded"
                );
                Ok(model)
            }
            Err(source) => Err(ServeError::Load {
                source_name: what,
                source,
            }),
        }
    }

    pub fn scorer(&self) -> &Scorer {
        &self.inner.scorer
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn admin_token(&self) -> Option<&str> {
        self.inner.admin_token.as_deref()
    }

    pub fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }

    /// Whether the demo page shows product images (by URL, loaded by the browser).
    pub fn show_images(&self) -> bool {
        self.inner.show_images
    }

    /// Values `/metrics` reads at scrape time.
    pub fn gauges(&self) -> Gauges {
        let model = self.model();
        let (scoring_batches, scoring_batched_queries) = self.inner.scorer.batch_counts();
        Gauges {
            model_loaded: model.is_some(),
            run_id: model.as_ref().and_then(|m| m.metadata.run_id.clone()),
            model_source: model.as_ref().map(|m| m.source.clone()),
            scoring_queue: self.inner.scorer.queued(),
            scoring_threads: self.inner.scorer.threads(),
            scoring_batches,
            scoring_batched_queries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_request_names_its_source() {
        let r = ReloadRequest {
            model_dir: None,
            run_id: Some("abc".into()),
        };
        assert_eq!(r.describe("artifacts/model"), "run abc");
        assert_eq!(
            ReloadRequest::default().describe("artifacts/model"),
            "artifacts/model"
        );
    }

    #[test]
    fn the_folder_loader_refuses_run_ids() {
        let loader = dir_loader(PathBuf::from("nowhere"));
        let req = ReloadRequest {
            model_dir: None,
            run_id: Some("abc".into()),
        };
        let e = loader(&req).unwrap_err();
        assert!(e.to_string().contains("`model_dir`"));
    }
}
