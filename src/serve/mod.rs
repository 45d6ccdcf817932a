//! Serving recommendations over HTTP: [`app`] builds the router (tests call it without a socket),
//! [`serve`] and [`run_server`] run it.
//!
//! Routes (JSON; described in `GET /openapi.json`):
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the demo page: a user's history, top K with explanations, the model ([`page`]) |
//! | `GET /items/{item_id}` | the demo page of an item and its neighbours |
//! | `GET /health` | the process is up |
//! | `GET /ready` | a model is loaded (503 while loading) |
//! | `GET /v1/users/{user_id}/recommendations?k=10&exclude_seen=true&explain=false` | a user's top K, `strategy` `als` or `popular`; titles where known; `because` per item with `explain=true` |
//! | `POST /v1/recommendations` | the same for many users: `{"user_ids": [...], "k": 10, "exclude_seen": true}` |
//! | `GET /v1/items/{item_id}/similar?k=10` | the K items nearest by cosine of item factors |
//! | `GET /v1/popular?k=10` | the cold-start list |
//! | `GET /v1/users?prefix=A2&limit=20` | known user ids starting with a prefix |
//! | `GET /v1/model` | run id, params, metrics, training time |
//! | `GET /metrics` | Prometheus text |
//! | `POST /admin/reload` | load a model and swap it in (bearer token) |
//!
//! Cold start: a user the model has never seen, or one with no training rating, gets the model's
//! popular items, ranked by rating count first and then by a damped mean rating, so an item with
//! one 5-star rating never tops the list. Similar items use only the first `rank` columns of the
//! item factors, leaving out the folded bias columns. Every request computes its own scores on
//! the scoring threads ([`scorer`]); concurrent requests are grouped into one matrix product.
//! This module knows nothing about the command line, the environment or tracking.

pub mod error;
mod listener;
pub mod metrics;
pub mod model;
pub mod page;
pub mod routes;
pub mod scorer;
pub mod server;
pub mod state;

#[cfg(test)]
mod tests;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{middleware, Router};

pub use error::ServeError;
pub use server::{run_server, ServeSettings};
pub use state::AppState;

/// The router for `state`: every route, the request timeout (not on admin routes, whose model
/// loads may take longer), the body limit, JSON 404/405 answers and the request counters.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/", get(page::index))
        .route("/items/{item_id}", get(page::item))
        .route("/static/page.js", get(page::script))
        .route("/static/page.css", get(page::style))
        .route("/static/favicon.svg", get(page::icon))
        .route("/v1/users", get(page::users))
        .route("/health", get(routes::health))
        .route("/ready", get(routes::ready))
        .route(
            "/v1/users/{user_id}/recommendations",
            get(routes::user_recommendations),
        )
        .route("/v1/recommendations", post(routes::batch_recommendations))
        .route("/v1/items/{item_id}/similar", get(routes::similar_items))
        .route("/v1/popular", get(routes::popular))
        .route("/v1/model", get(routes::model_info))
        .route("/metrics", get(routes::metrics))
        .route("/openapi.json", get(routes::openapi))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            routes::deadline,
        ));
    let admin = Router::new().route("/admin/reload", post(routes::admin_reload));
    api.merge(admin)
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), routes::track))
        .layer(DefaultBodyLimit::max(state.body_limit()))
        .with_state(state)
}
