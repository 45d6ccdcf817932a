//! The HTTP handlers: parameter checks, the cold-start rule, and the JSON bodies of each route.
//!
//! Handlers take the current model once and hand scoring to the scoring threads; they never
//! compute scores on the async reactor. Every failure is an [`ApiError`] (a status and
//! `{"error": "..."}`), including malformed query strings, paths and JSON bodies. Knows nothing
//! about sockets, signals or how models are loaded.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::ApiError;
use super::metrics::method_label;
use super::model::{ServingModel, UserLookup};
use super::scorer::{QueryKind, Ranked};
use super::server::chain;
use super::state::{AppState, ReloadRequest};

/// Largest `k` a request may ask for.
pub const MAX_K: usize = 1000;
/// `k` when a request gives none.
pub const DEFAULT_K: usize = 10;
/// Most users in one `POST /v1/recommendations`.
pub const MAX_BATCH_USERS: usize = 1000;

/// The OpenAPI description of these routes.
pub const OPENAPI: &str = include_str!("openapi.json");

/// A query string parsed into `T`; a bad one is a 400 with a JSON message.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// A path parameter; a bad one (invalid UTF-8) is a 400 with a JSON message.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// A JSON body. Malformed or mistyped JSON is a 400; a body over the limit stays 413 and a
/// missing `Content-Type: application/json` stays 415.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(req, state)
            .await
            .map(|j| Self(j.0))
            .map_err(json_rejection)
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    let status = match e.status() {
        s @ (StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE) => s,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.body_text())
}

pub(crate) fn check_k(k: Option<usize>) -> Result<usize, ApiError> {
    match k.unwrap_or(DEFAULT_K) {
        k @ 1..=MAX_K => Ok(k),
        k => Err(ApiError::bad_request(format!(
            "`k` must be between 1 and {MAX_K}, got `{k}`"
        ))),
    }
}

fn current_model(state: &AppState) -> Result<Arc<ServingModel>, ApiError> {
    state.model().ok_or_else(ApiError::not_ready)
}

/// Times every request, counts it by route template and status.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(req.method());
    let resp = next.run(req).await;
    state.metrics().record_request(
        &route,
        method,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

/// Answers 503 when a request takes longer than the configured timeout.
pub async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.request_timeout();
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::unavailable(format!(
            "the request took longer than {:.3}s and was stopped",
            limit.as_secs_f64()
        ))
        .into_response(),
    }
}

pub async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub async fn ready(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let m = current_model(&state)?;
    Ok(Json(json!({
        "status": "ready",
        "run_id": m.metadata.run_id,
        "source": m.source,
        "loaded_at": m.loaded_at,
    })))
}

#[derive(Debug, Deserialize)]
pub struct RecommendQuery {
    k: Option<usize>,
    exclude_seen: Option<bool>,
    explain: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct KQuery {
    k: Option<usize>,
}

/// One recommended or similar item.
#[derive(Debug, Serialize)]
pub struct ItemScore {
    pub item_id: String,
    /// Title, category and image URL, when the model has item metadata.
    #[serde(flatten)]
    pub meta: ItemText,
    /// Model score, similarity (similar items) or damped mean rating (`popular`).
    pub score: f32,
    /// Training ratings of the item (popular lists only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// With `explain=true`: the user's training items that contribute most to the score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<Vec<Reason>>,
}

/// What is known of an item beyond its id (absent fields are unknown).
#[derive(Debug, Default, Serialize)]
pub struct ItemText {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
}

impl ItemText {
    pub(crate) fn of(model: &ServingModel, i: u32) -> Self {
        model.item_meta(i).map_or_else(Self::default, |m| Self {
            title: m.title.clone(),
            category: m.category.clone(),
            image_url: m.image_url.clone(),
        })
    }
}

/// One training item behind a recommendation: its share of the score (ALS: its term in the
/// score; item-kNN: its similarity; EASE: its weight).
#[derive(Debug, Serialize)]
pub struct Reason {
    pub item_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub weight: f32,
    /// The user's rating of it.
    pub rating: f32,
}

/// How many training items an explanation names.
pub const EXPLAIN_ITEMS: usize = 3;

/// How a user was answered: by the model (named by its family, `als`, `ease`...) or with the
/// cold-start list (`popular`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Model(crate::model::family::FamilyName),
    Popular,
}

impl Serialize for Strategy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Strategy::Model(f) => s.serialize_str(crate::names::Named::name(*f)),
            Strategy::Popular => s.serialize_str("popular"),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Recommendations {
    pub user_id: String,
    pub strategy: Strategy,
    pub k: usize,
    pub exclude_seen: bool,
    pub items: Vec<ItemScore>,
}

pub(crate) fn ranked_items(model: &ServingModel, ranked: Ranked) -> Vec<ItemScore> {
    ranked
        .into_iter()
        .map(|(i, score)| ItemScore {
            item_id: model.item_id(i).to_string(),
            meta: ItemText::of(model, i),
            score,
            count: None,
            because: None,
        })
        .collect()
}

pub(crate) fn popular_items(model: &ServingModel, k: usize) -> Vec<ItemScore> {
    model
        .popular(k)
        .iter()
        .map(|p| ItemScore {
            item_id: model.item_id(p.item).to_string(),
            meta: ItemText::of(model, p.item),
            score: p.score as f32,
            count: Some(p.count),
            because: None,
        })
        .collect()
}

/// What one user gets, before scoring: the cold-start list or a queued query.
enum Pending {
    Popular,
    Scoring(u32, tokio::sync::oneshot::Receiver<Ranked>),
}

fn start_user(
    state: &AppState,
    model: &Arc<ServingModel>,
    user_id: &str,
    k: usize,
    exclude_seen: bool,
) -> Result<Pending, ApiError> {
    match model.lookup_user(user_id) {
        UserLookup::Cold => Ok(Pending::Popular),
        UserLookup::Known(user) => Ok(Pending::Scoring(
            user,
            state
                .scorer()
                .submit(Arc::clone(model), QueryKind::User { user, exclude_seen }, k)?,
        )),
    }
}

async fn finish_user(
    model: &Arc<ServingModel>,
    pending: Pending,
    user_id: String,
    k: usize,
    exclude_seen: bool,
    explain: bool,
) -> Result<Recommendations, ApiError> {
    let (strategy, items) = match pending {
        Pending::Popular => (Strategy::Popular, popular_items(model, k)),
        Pending::Scoring(user, rx) => {
            let ranked = rx
                .await
                .map_err(|_| ApiError::internal("scoring failed for this request"))?;
            let mut items = ranked_items(model, ranked);
            if explain {
                let m = Arc::clone(model);
                items = tokio::task::spawn_blocking(move || {
                    explain_items(&m, user, &mut items);
                    items
                })
                .await
                .map_err(|_| ApiError::internal("explaining failed for this request"))?;
            }
            (Strategy::Model(model.metadata.family), items)
        }
    };
    Ok(Recommendations {
        user_id,
        strategy,
        k,
        exclude_seen,
        items,
    })
}

/// Fills each item's `because` with the user's training items behind it.
pub fn explain_items(model: &ServingModel, user: u32, items: &mut [ItemScore]) {
    let (seen, ratings) = model.history(user);
    for it in items {
        let Some(i) = model.lookup_item(&it.item_id) else {
            continue;
        };
        let reasons = model
            .explain(user, i, EXPLAIN_ITEMS)
            .into_iter()
            .map(|(j, weight)| Reason {
                item_id: model.item_id(j).to_string(),
                title: model.item_meta(j).and_then(|m| m.title.clone()),
                weight,
                rating: seen.binary_search(&j).map_or(f32::NAN, |p| ratings[p]),
            })
            .collect();
        it.because = Some(reasons);
    }
}

pub async fn user_recommendations(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RecommendQuery>,
) -> Result<Json<Recommendations>, ApiError> {
    let k = check_k(q.k)?;
    let exclude_seen = q.exclude_seen.unwrap_or(true);
    let model = current_model(&state)?;
    let pending = start_user(&state, &model, &user_id, k, exclude_seen)?;
    let popular = matches!(pending, Pending::Popular);
    let explain = q.explain.unwrap_or(false);
    let rec = finish_user(&model, pending, user_id, k, exclude_seen, explain).await?;
    state
        .metrics()
        .record_lists(u64::from(!popular), u64::from(popular));
    Ok(Json(rec))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    user_ids: Vec<String>,
    k: Option<usize>,
    exclude_seen: Option<bool>,
    explain: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct BatchResponse {
    pub results: Vec<Recommendations>,
}

pub async fn batch_recommendations(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    let k = check_k(req.k)?;
    let exclude_seen = req.exclude_seen.unwrap_or(true);
    if req.user_ids.len() > MAX_BATCH_USERS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_BATCH_USERS} users per request, got {}",
            req.user_ids.len()
        )));
    }
    let model = current_model(&state)?;
    // Queue every user first so they are scored together, then collect in request order.
    let mut pending = Vec::with_capacity(req.user_ids.len());
    for id in &req.user_ids {
        pending.push(start_user(&state, &model, id, k, exclude_seen)?);
    }
    let popular = pending
        .iter()
        .filter(|p| matches!(p, Pending::Popular))
        .count() as u64;
    let mut results = Vec::with_capacity(pending.len());
    for (p, id) in pending.into_iter().zip(req.user_ids) {
        let explain = req.explain.unwrap_or(false);
        results.push(finish_user(&model, p, id, k, exclude_seen, explain).await?);
    }
    state
        .metrics()
        .record_lists(results.len() as u64 - popular, popular);
    Ok(Json(BatchResponse { results }))
}

#[derive(Debug, Serialize)]
pub struct SimilarItems {
    pub item_id: String,
    pub k: usize,
    pub items: Vec<ItemScore>,
}

pub async fn similar_items(
    State(state): State<AppState>,
    ApiPath(item_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<KQuery>,
) -> Result<Json<SimilarItems>, ApiError> {
    let k = check_k(q.k)?;
    let model = current_model(&state)?;
    let item = model
        .lookup_item(&item_id)
        .ok_or_else(|| ApiError::not_found(format!("unknown item `{item_id}`")))?;
    let ranked = state
        .scorer()
        .score(Arc::clone(&model), QueryKind::Similar { item }, k)
        .await?;
    Ok(Json(SimilarItems {
        item_id,
        k,
        items: ranked_items(&model, ranked),
    }))
}

#[derive(Debug, Serialize)]
pub struct PopularList {
    pub k: usize,
    pub items: Vec<ItemScore>,
}

pub async fn popular(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<KQuery>,
) -> Result<Json<PopularList>, ApiError> {
    let k = check_k(q.k)?;
    let model = current_model(&state)?;
    Ok(Json(PopularList {
        k,
        items: popular_items(&model, k),
    }))
}

pub async fn model_info(State(state): State<AppState>) -> Result<Response, ApiError> {
    let model = current_model(&state)?;
    Ok(Json(model.info()).into_response())
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics().render(&state.gauges());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Compares in time independent of where the strings differ.
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn check_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.admin_token() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the admin endpoints are disabled: start the server with `RECFLOW_ADMIN_TOKEN` set",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        None => Err(ApiError::unauthorized(
            "missing `Authorization: Bearer <token>` header",
        )),
        Some(t) if same_token(t.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::unauthorized("wrong admin token")),
    }
}

pub async fn admin_reload(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_admin(&state, &headers)?;
    let req: ReloadRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReloadRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid reload request: {e}")))?
    };
    let model = state
        .reload(req)
        .await
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, chain(&e)))?;
    Ok(Json(json!({"status": "reloaded", "model": model.info()})))
}

pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for `{method} {}`", uri.path()))
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("`{method}` is not allowed on `{}`", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_must_be_between_one_and_the_maximum() {
        assert_eq!(check_k(None), Ok(DEFAULT_K));
        assert_eq!(check_k(Some(1)), Ok(1));
        assert_eq!(check_k(Some(MAX_K)), Ok(MAX_K));
        assert!(check_k(Some(0)).is_err());
        assert!(check_k(Some(MAX_K + 1)).is_err());
    }

    #[test]
    fn a_batch_request_with_the_wrong_field_names_the_expected_one() {
        for body in [r#"{"users": ["a"]}"#, r#"{"k": 3}"#] {
            let e = serde_json::from_str::<BatchRequest>(body).unwrap_err();
            assert!(e.to_string().contains("`user_ids`"), "{body}: {e}");
        }
        let ok: BatchRequest = serde_json::from_str(r#"{"user_ids": ["a"], "k": 3}"#).unwrap();
        assert_eq!(ok.user_ids, ["a"]);
    }

    #[test]
    fn tokens_compare_equal_only_when_identical() {
        assert!(same_token(b"abc", b"abc"));
        assert!(!same_token(b"abc", b"abd"));
        assert!(!same_token(b"abc", b"abcd"));
        assert!(!same_token(b"", b"a"));
    }
}
