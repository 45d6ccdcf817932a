//! The demo page: `GET /` (a user's history, top K with explanations, the model), `GET
//! /items/{item_id}` (an item and its neighbours) and the page's own script and style sheet.
//!
//! Server-rendered with maud, which escapes every value it splices in, so ids and titles are
//! text whatever they hold. Everything works without JavaScript (forms and links); the script
//! only adds id suggestions while typing and similar items inline. Nothing is loaded from
//! elsewhere: a Content-Security-Policy allows this origin only, and product images (by URL,
//! never fetched by recflow) only when the server runs with `--show-images`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, DOCTYPE};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Deserialize;

use super::error::ApiError;
use super::model::{ServingModel, UserLookup};
use super::routes::{
    check_k, explain_items, popular_items, ApiPath, ApiQuery, ItemScore, ItemText, DEFAULT_K,
};
use super::scorer::QueryKind;
use super::state::AppState;

const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");
const ICON: &str = include_str!("favicon.svg");
/// Training items listed on a user's page (the heaviest rated first); the rest are counted.
const HISTORY_ROWS: usize = 50;

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    user: Option<String>,
    k: Option<usize>,
    /// Any value: pick a random known user.
    random: Option<String>,
}

/// An error shown as a page.
pub struct PageError(ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<super::scorer::ScoreError> for PageError {
    fn from(e: super::scorer::ScoreError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = layout(
            "recflow",
            html! {
                h1 { "recflow" }
                p role="alert" class="error" { (self.0.message) }
                p { a href="/" { "Back to the start page" } }
            },
        );
        let mut resp = html_response(body, false);
        *resp.status_mut() = self.0.status;
        resp
    }
}

fn pct(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

fn user_href(id: &str) -> String {
    format!("/?user={}", pct(id))
}

fn item_href(id: &str) -> String {
    format!("/items/{}", pct(id))
}

fn html_response(page: Markup, show_images: bool) -> Response {
    let img = if show_images {
        "img-src 'self' https: http:"
    } else {
        "img-src 'self'"
    };
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; {img}; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    );
    let mut resp = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page.into_string(),
    )
        .into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href="/static/page.css";
                link rel="icon" type="image/svg+xml" href="/static/favicon.svg";
                script src="/static/page.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to the recommendations" }
                header {
                    a class="brand" href="/" { "recflow" }
                    form method="get" action="/" role="search" {
                        label for="user" { "User id" }
                        input id="user" name="user" type="search" list="user-ids"
                            autocomplete="off" placeholder="e.g. A2SUAM1J3GNN3B" required;
                        datalist id="user-ids" {}
                        button type="submit" { "Recommend" }
                    }
                    form method="get" action="/" {
                        input type="hidden" name="random" value="1";
                        button type="submit" { "Random user" }
                    }
                    a href="/?user=" { "Cold start" }
                }
                main id="main" tabindex="-1" { (body) }
            }
        }
    }
}

fn item_label(it: &ItemScore) -> Markup {
    html! {
        @if let Some(t) = &it.meta.title {
            span class="title" { (t) } " "
            span class="id" { (it.item_id) }
        } @else {
            span class="title" { (it.item_id) }
        }
        @if let Some(c) = &it.meta.category { " " span class="category" { (c) } }
    }
}

fn image(meta: &ItemText, show: bool) -> Markup {
    html! {
        @if show {
            @if let Some(url) = &meta.image_url {
                img src=(url) alt="" loading="lazy" referrerpolicy="no-referrer" width="48" height="48";
            }
        }
    }
}

/// A ranked list: score, title, explanation and a similar-items link per item.
fn item_list(items: &[ItemScore], score_label: &str, show_images: bool) -> Markup {
    html! {
        ol class="items" {
            @for it in items {
                li {
                    (image(&it.meta, show_images))
                    div {
                        a href=(item_href(&it.item_id)) { (item_label(it)) }
                        " "
                        span class="score" title=(score_label) { (format!("{:.4}", it.score)) }
                        @if let Some(n) = it.count { " " span class="count" { (n) " ratings" } }
                        @if let Some(why) = &it.because {
                            @if !why.is_empty() {
                                p class="because" {
                                    "Because you rated "
                                    @for (n, r) in why.iter().enumerate() {
                                        @if n > 0 { ", " }
                                        a href=(item_href(&r.item_id)) {
                                            (r.title.as_deref().unwrap_or(&r.item_id))
                                        }
                                        " (" (format!("{}★", r.rating)) ")"
                                    }
                                }
                            }
                        }
                        button type="button" class="similar" data-item=(it.item_id)
                            aria-expanded="false" { "Similar items" }
                        div class="similar-list" aria-live="polite" {}
                    }
                }
            }
        }
    }
}

fn model_panel(m: &ServingModel) -> Markup {
    let info = m.info();
    html! {
        section aria-labelledby="model-h" class="model" {
            h2 id="model-h" { "Model" }
            dl {
                dt { "Family" } dd { (info.family) @if let Some(e) = info.entry { " (" (e) ")" } }
                dt { "MLflow run" } dd { (info.run_id.unwrap_or("not logged")) }
                dt { "Trained" } dd { (info.created_at) }
                @if let Some(s) = info.training_seconds { dt { "Fit time" } dd { (format!("{s:.2} s")) } }
                dt { "Users × items" } dd { (info.n_users) " × " (info.n_items) " (" (info.n_history) " training ratings)" }
            }
            details {
                summary { "Parameters and metrics" }
                table {
                    caption { "Parameters" }
                    tbody {
                        @for (k, v) in info.params {
                            tr { th scope="row" { (k) } td { (v.to_string()) } }
                        }
                    }
                }
                table {
                    caption { "Metrics" }
                    tbody {
                        @for (k, v) in info.metrics {
                            tr { th scope="row" { (k) } td { (format!("{v:.4}")) } }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /`: the start page, a user's page, or the cold-start list.
pub async fn index(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, PageError> {
    let model = state.model().ok_or_else(ApiError::not_ready)?;
    let k = check_k(q.k)?;
    let show = state.show_images();
    if q.random.is_some() {
        return match model.random_user() {
            Some(u) => Ok(Redirect::to(&user_href(model.user_id(u))).into_response()),
            None => Err(ApiError::not_found("the model has no user with training ratings").into()),
        };
    }
    let Some(user_id) = q.user else {
        return Ok(html_response(start_page(&model), show));
    };
    let body = match model.lookup_user(&user_id) {
        UserLookup::Cold => cold_page(&model, &user_id, k, show),
        UserLookup::Known(user) => {
            let ranked = state
                .scorer()
                .score(
                    Arc::clone(&model),
                    QueryKind::User {
                        user,
                        exclude_seen: true,
                    },
                    k,
                )
                .await?;
            let mut items = super::routes::ranked_items(&model, ranked);
            let m = Arc::clone(&model);
            // Explanations are linear algebra: off the reactor, as scoring is.
            let items = tokio::task::spawn_blocking(move || {
                explain_items(&m, user, &mut items);
                items
            })
            .await
            .map_err(|_| ApiError::internal("explaining failed for this request"))?;
            user_page(&model, &user_id, user, &items, show)
        }
    };
    Ok(html_response(body, show))
}

fn start_page(model: &ServingModel) -> Markup {
    layout(
        "recflow demo",
        html! {
            h1 { "Recommendations" }
            p {
                "Type a user id above (suggestions appear as you type), pick a "
                a href="/?random=1" { "random user" }
                ", or see what a new user gets: the "
                a href="/?user=" { "cold-start list" } "."
            }
            (model_panel(model))
        },
    )
}

fn cold_page(model: &ServingModel, user_id: &str, k: usize, show: bool) -> Markup {
    let items = popular_items(model, k);
    layout(
        "Cold start · recflow",
        html! {
            h1 { "Cold start" }
            p class="strategy" {
                @if user_id.is_empty() {
                    "A user the model has never seen gets the most rated items, ranked by rating count and then by a damped mean rating."
                } @else {
                    "User " strong { (user_id) } " is unknown to the model (or has no training rating), so they get the cold-start list: the most rated items, ranked by rating count and then by a damped mean rating."
                }
            }
            h2 { "Top " (k) }
            (item_list(&items, "damped mean rating", show))
            (model_panel(model))
        },
    )
}

fn user_page(
    model: &ServingModel,
    user_id: &str,
    user: u32,
    items: &[ItemScore],
    show: bool,
) -> Markup {
    let (seen, ratings) = model.history(user);
    let mut rows: Vec<(u32, f32)> = seen.iter().copied().zip(ratings.iter().copied()).collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let family = model.metadata.family.to_string();
    layout(
        &format!("{user_id} · recflow"),
        html! {
            h1 { "User " span class="id" { (user_id) } }
            p class="strategy" {
                "Strategy: " strong { (family) } " model scores, training items left out. "
                "Each item says which of the user's ratings weigh most in its score."
            }
            div class="columns" {
                section aria-labelledby="top-h" {
                    h2 id="top-h" { "Top " (items.len()) }
                    (item_list(items, "model score", show))
                }
                section aria-labelledby="hist-h" {
                    h2 id="hist-h" { "Training history (" (rows.len()) ")" }
                    table class="history" {
                        caption { "Rated items, highest rating first" }
                        thead { tr { th scope="col" { "Rating" } th scope="col" { "Item" } } }
                        tbody {
                            @for &(j, r) in rows.iter().take(HISTORY_ROWS) {
                                tr {
                                    td { (format!("{r}★")) }
                                    td {
                                        a href=(item_href(model.item_id(j))) {
                                            @if let Some(t) = model.item_meta(j).and_then(|m| m.title.as_deref()) {
                                                (t) " " span class="id" { (model.item_id(j)) }
                                            } @else { (model.item_id(j)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if rows.len() > HISTORY_ROWS { p { "and " (rows.len() - HISTORY_ROWS) " more" } }
                }
            }
            (model_panel(model))
        },
    )
}

/// `GET /items/{item_id}`: what is known of an item and its nearest items.
pub async fn item(
    State(state): State<AppState>,
    ApiPath(item_id): ApiPath<String>,
) -> Result<Response, PageError> {
    let model = state.model().ok_or_else(ApiError::not_ready)?;
    let show = state.show_images();
    let i = model
        .lookup_item(&item_id)
        .ok_or_else(|| ApiError::not_found(format!("unknown item `{item_id}`")))?;
    let ranked = state
        .scorer()
        .score(
            Arc::clone(&model),
            QueryKind::Similar { item: i },
            DEFAULT_K,
        )
        .await?;
    let similar = super::routes::ranked_items(&model, ranked);
    let this = ItemText::of(&model, i);
    let body = layout(
        &format!("{} · recflow", this.title.as_deref().unwrap_or(&item_id)),
        html! {
            h1 { (this.title.as_deref().unwrap_or(&item_id)) }
            p { "Item " span class="id" { (item_id) }
                @if let Some(c) = &this.category { " · " (c) } }
            (image(&this, show))
            h2 { "Similar items" }
            @if similar.is_empty() {
                p { "This model has no notion of item similarity." }
            } @else {
                (item_list(&similar, "similarity", show))
            }
        },
    );
    Ok(html_response(body, show))
}

pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

pub async fn icon() -> Response {
    ([(header::CONTENT_TYPE, "image/svg+xml")], ICON).into_response()
}

pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

#[derive(Debug, Deserialize)]
pub struct UsersQuery {
    prefix: Option<String>,
    limit: Option<usize>,
}

/// `GET /v1/users?prefix=A2&limit=20`: known user ids starting with `prefix`, in id order.
pub async fn users(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<UsersQuery>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let model = state.model().ok_or_else(ApiError::not_ready)?;
    let limit = q.limit.unwrap_or(20).clamp(1, 100);
    let ids = model.users_with_prefix(q.prefix.as_deref().unwrap_or(""), limit);
    Ok(axum::Json(serde_json::json!({ "user_ids": ids })))
}
