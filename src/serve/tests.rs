//! Every route through [`app`] with `oneshot`, on a five-item model whose answers are worked out
//! by hand.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use ndarray::Array2;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::state::ReloadRequest;
use super::*;
use crate::data::interactions::Interactions;
use crate::model::als::family::FactorModel;
use crate::model::artifact::{cold_start_ranking, SavedModel};
use crate::model::family::{FamilyName, ParamValue};

const TOKEN: &str = "test-token";

/// Rank 2 with biases folded in: users `[x, b_u + mu, 1]`, items `[y, 1, b_i]`.
///
/// | item | y | b_i |
/// |---|---|---|
/// | I0 | (1, 0) | 0 |
/// | I1 | (0, 1) | 0 |
/// | I2 | (1, 1) | 0.5 |
/// | I3 | (-1, 0) | 0 |
/// | I4 | (2, 0) | -0.1 |
///
/// alice `x = (1, 0)`, bob `x = (0, 1)`, carol `x = (1, 1)`, all with `b_u + mu = 3`; dave has
/// factors but no training rating. alice scores I4 4.9, I2 4.5, I0 4, I1 3, I3 2 and rated I4
/// and I1; bob scores I2 4.5, I1 4, I0 3, I3 3 (a tie), I4 2.9 and rated I2; carol rated I0, I2.
fn model_a() -> SavedModel {
    model_with_offset(0.0, None)
}

/// The same model with every user's bias raised by `offset` (same order, shifted scores).
fn model_with_offset(offset: f32, run_id: Option<&str>) -> SavedModel {
    let b = 3.0 + offset;
    let users = Array2::from_shape_vec(
        (4, 4),
        vec![
            1.0, 0.0, b, 1.0, //
            0.0, 1.0, b, 1.0, //
            1.0, 1.0, b, 1.0, //
            0.5, 0.5, b, 1.0,
        ],
    )
    .unwrap();
    let items = Array2::from_shape_vec(
        (5, 4),
        vec![
            1.0, 0.0, 1.0, 0.0, //
            0.0, 1.0, 1.0, 0.0, //
            1.0, 1.0, 1.0, 0.5, //
            -1.0, 0.0, 1.0, 0.0, //
            2.0, 0.0, 1.0, -0.1,
        ],
    )
    .unwrap();
    let train = Interactions::new(
        vec![0, 0, 1, 2, 2],
        vec![4, 1, 2, 0, 2],
        vec![5.0, 3.0, 4.0, 5.0, 4.0],
        None,
        4,
        5,
    )
    .unwrap();
    let mut metadata = crate::model::artifact::tests::metadata(FamilyName::Als, 4, 5);
    metadata.latent = Some(2);
    metadata.metrics = BTreeMap::from([("test_rmse".to_string(), 0.91)]);
    metadata.timings = BTreeMap::from([("fit_seconds".to_string(), 1.5)]);
    metadata.params = [
        ("rank".to_string(), ParamValue::Int(2)),
        ("reg".to_string(), ParamValue::Float(0.1)),
    ]
    .into();
    metadata.n_history = 5;
    metadata.run_id = run_id.map(String::from);
    SavedModel {
        model: Arc::new(FactorModel::new(users, items, true, 2)),
        user_ids: ["alice", "bob", "carol", "dave"].map(String::from).to_vec(),
        item_ids: (0..5).map(|i| format!("I{i}")).collect(),
        popular: cold_start_ranking(&train),
        history: train,
        metadata,
        item_meta: None,
    }
}

fn settings() -> ServeSettings {
    ServeSettings {
        admin_token: Some(TOKEN.into()),
        threads: 1,
        ..Default::default()
    }
}

fn loaded(settings: &ServeSettings) -> (AppState, Router) {
    let state = AppState::new(settings);
    state.install(model_a(), "memory");
    (state.clone(), app(state))
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post_json(app: &Router, uri: &str, body: &str) -> (StatusCode, Value) {
    let req = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(app, req).await
}

fn reload_request(token: Option<&str>, body: &str) -> Request<Body> {
    let mut req = Request::post("/admin/reload").header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    req.body(Body::from(body.to_string())).unwrap()
}

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap().to_string())
        .collect()
}

fn scores(v: &Value) -> Vec<f64> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["score"].as_f64().unwrap())
        .collect()
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
}

#[tokio::test]
async fn health_answers_while_no_model_is_loaded_and_ready_does_not() {
    let app = app(AppState::new(&settings()));
    assert_eq!(
        get(&app, "/health").await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let (status, body) = get(&app, "/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["error"].as_str().unwrap().contains("no model"));
    let (status, _) = get(&app, "/v1/users/alice/recommendations").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn ready_reports_the_loaded_model() {
    let (_, app) = loaded(&settings());
    let (status, body) = get(&app, "/ready").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["source"], "memory");
}

#[tokio::test]
async fn known_user_gets_model_scores_without_training_items() {
    let (_, app) = loaded(&settings());
    let (status, body) = get(&app, "/v1/users/alice/recommendations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["strategy"], "als");
    assert_eq!(body["user_id"], "alice");
    assert_eq!(body["k"], 10);
    assert_eq!(body["exclude_seen"], true);
    assert_eq!(ids(&body), ["I2", "I0", "I3"]);
    assert!(close(&scores(&body), &[4.5, 4.0, 2.0]));
}

#[tokio::test]
async fn exclude_seen_false_keeps_training_items() {
    let (_, app) = loaded(&settings());
    let (status, body) = get(
        &app,
        "/v1/users/alice/recommendations?exclude_seen=false&k=3",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["exclude_seen"], false);
    assert_eq!(ids(&body), ["I4", "I2", "I0"]);
    assert!(close(&scores(&body), &[4.9, 4.5, 4.0]));
}

#[tokio::test]
async fn equal_scores_are_ordered_by_item_index() {
    let (_, app) = loaded(&settings());
    let (_, body) = get(&app, "/v1/users/bob/recommendations?exclude_seen=false").await;
    assert_eq!(ids(&body), ["I2", "I1", "I0", "I3", "I4"]);
}

#[tokio::test]
async fn unknown_and_unrated_users_get_the_popular_list() {
    let (_, app) = loaded(&settings());
    // Counts: I2 2, then I0, I4 and I1 with 1 each, ordered by damped mean (I0 and I4 tie at
    // 5 stars, so by index); I3 was never rated.
    for user in ["zed", "dave"] {
        let (status, body) = get(&app, &format!("/v1/users/{user}/recommendations")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["strategy"], "popular", "{user}");
        assert_eq!(ids(&body), ["I2", "I0", "I4", "I1"]);
        assert_eq!(body["items"][0]["count"], 2);
    }
}

#[tokio::test]
async fn odd_user_ids_are_answered_not_rejected() {
    let (_, app) = loaded(&settings());
    for uri in [
        "/v1/users/%C3%A9l%C3%A8ve/recommendations",
        "/v1/users/a%2Fb/recommendations",
        "/v1/users/%20/recommendations",
    ] {
        let (status, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(body["strategy"], "popular");
    }
}

#[tokio::test]
async fn batch_answers_every_user_in_order() {
    let (state, app) = loaded(&settings());
    let (status, body) = post_json(
        &app,
        "/v1/recommendations",
        r#"{"user_ids": ["alice", "zed", "bob"], "k": 2}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let r = body["results"].as_array().unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(
        (r[0]["user_id"].clone(), r[0]["strategy"].clone()),
        (json!("alice"), json!("als"))
    );
    assert_eq!(ids(&r[0]), ["I2", "I0"]);
    assert_eq!(r[1]["strategy"], "popular");
    assert_eq!(ids(&r[1]), ["I2", "I0"]);
    assert_eq!(ids(&r[2]), ["I1", "I0"]);
    let text = state.metrics().render(&state.gauges());
    assert!(text.contains("recflow_recommendations_total{strategy=\"als\"} 2\n"));
    assert!(text.contains("recflow_recommendations_total{strategy=\"popular\"} 1\n"));
}

#[tokio::test]
async fn batch_checks_its_body() {
    let s = ServeSettings {
        body_limit: 512,
        ..settings()
    };
    let (_, app) = loaded(&s);
    for (body, want) in [
        (
            r#"{"user_ids": ["alice"], "k": 0}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"user_ids": ["alice"], "users": []}"#,
            StatusCode::BAD_REQUEST,
        ),
        (r#"{"user_ids": "alice"}"#, StatusCode::BAD_REQUEST),
        (r#"{"user_ids": ["alice""#, StatusCode::BAD_REQUEST),
        ("not json", StatusCode::BAD_REQUEST),
    ] {
        let (status, v) = post_json(&app, "/v1/recommendations", body).await;
        assert_eq!(status, want, "{body}");
        assert!(v["error"].is_string(), "{body}: {v}");
    }
    let big = format!(r#"{{"user_ids": ["{}"]}}"#, "x".repeat(1000));
    let (status, v) = post_json(&app, "/v1/recommendations", &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(v["error"].is_string());
    let req = Request::post("/v1/recommendations")
        .body(Body::from(r#"{"user_ids": []}"#))
        .unwrap();
    assert_eq!(send(&app, req).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn batch_refuses_more_users_than_the_limit() {
    let s = ServeSettings {
        body_limit: 1 << 20,
        ..settings()
    };
    let (_, app) = loaded(&s);
    let users: Vec<String> = (0..=routes::MAX_BATCH_USERS)
        .map(|i| format!("u{i}"))
        .collect();
    let body = json!({ "user_ids": users }).to_string();
    let (status, v) = post_json(&app, "/v1/recommendations", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("at most"));
}

#[tokio::test]
async fn similar_items_use_cosine_of_the_factors_without_bias_columns() {
    let (_, app) = loaded(&settings());
    let (status, body) = get(&app, "/v1/items/I0/similar?k=4").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["item_id"], "I0");
    // I4 points the same way as I0 (cosine 1 only when the bias columns are left out).
    assert_eq!(ids(&body), ["I4", "I2", "I1", "I3"]);
    assert!(close(
        &scores(&body),
        &[1.0, std::f64::consts::FRAC_1_SQRT_2, 0.0, -1.0]
    ));
}

#[tokio::test]
async fn unknown_item_is_a_404_with_a_message() {
    let (_, app) = loaded(&settings());
    let (status, body) = get(&app, "/v1/items/nope/similar").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "unknown item `nope`");
}

#[tokio::test]
async fn popular_lists_the_cold_start_order() {
    let (_, app) = loaded(&settings());
    let (status, body) = get(&app, "/v1/popular?k=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), ["I2", "I0"]);
    // Damped mean of I2 (two 4-star ratings; global mean 4.2, damping 5): (8 + 21) / 7.
    assert!(close(&scores(&body)[..1], &[29.0 / 7.0]));
}

#[tokio::test]
async fn k_outside_one_to_a_thousand_is_a_400() {
    let (_, app) = loaded(&settings());
    for uri in [
        "/v1/users/alice/recommendations?k=0",
        "/v1/users/alice/recommendations?k=1001",
        "/v1/users/alice/recommendations?k=-1",
        "/v1/users/alice/recommendations?k=ten",
        "/v1/users/alice/recommendations?exclude_seen=maybe",
        "/v1/items/I0/similar?k=0",
        "/v1/popular?k=5000",
    ] {
        let (status, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(body["error"].is_string(), "{uri}: {body}");
    }
    let (_, body) = get(&app, "/v1/popular?k=0").await;
    assert_eq!(body["error"], "`k` must be between 1 and 1000, got `0`");
    let (status, body) = get(&app, "/v1/users/alice/recommendations?k=1000").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body).len(), 3);
}

#[tokio::test]
async fn model_info_shows_run_params_metrics_and_training_time() {
    let s = settings();
    let state = AppState::new(&s);
    state.install(model_with_offset(0.0, Some("run-1")), "memory");
    let (status, body) = get(&app(state), "/v1/model").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["run_id"], "run-1");
    assert_eq!(body["params"]["reg"], 0.1);
    assert_eq!(body["metrics"]["test_rmse"], 0.91);
    assert_eq!(body["training_seconds"], 1.5);
    assert_eq!(
        (body["n_users"].clone(), body["n_items"].clone()),
        (json!(4), json!(5))
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_cold_start_share() {
    let (_, app) = loaded(&settings());
    get(&app, "/v1/users/alice/recommendations").await;
    get(&app, "/v1/users/zed/recommendations").await;
    get(&app, "/v1/users/zed/recommendations").await;
    get(&app, "/no/such/route").await;
    let resp = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(resp.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(
        axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(text.contains(
        "recflow_http_requests_total{route=\"/v1/users/{user_id}/recommendations\",method=\"GET\",status=\"200\"} 3\n"
    ));
    assert!(text.contains(
        "recflow_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1\n"
    ));
    assert!(text.contains(
        "recflow_http_request_duration_seconds_count{route=\"/v1/users/{user_id}/recommendations\"} 3\n"
    ));
    let share: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("recflow_cold_start_share "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((share - 2.0 / 3.0).abs() < 1e-9);
    assert!(text.contains("recflow_model_loaded 1\n"));
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let (_, app) = loaded(&settings());
    let (status, doc) = get(&app, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/health", "get"),
        ("/ready", "get"),
        ("/v1/users/{user_id}/recommendations", "get"),
        ("/v1/recommendations", "post"),
        ("/v1/items/{item_id}/similar", "get"),
        ("/v1/popular", "get"),
        ("/v1/model", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/admin/reload", "post"),
        ("/v1/users", "get"),
        ("/", "get"),
        ("/items/{item_id}", "get"),
        ("/static/page.js", "get"),
        ("/static/page.css", "get"),
        ("/static/favicon.svg", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path}");
    }
    assert_eq!(
        paths.len(),
        16,
        "a documented route the router does not serve"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let (_, app) = loaded(&settings());
    let (status, body) = get(&app, "/v2/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "no route for `GET /v2/nothing`");
    let (status, body) = post_json(&app, "/v1/popular", "{}").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["error"].as_str().unwrap().contains("`POST`"));
}

#[tokio::test]
async fn a_request_over_the_time_limit_is_a_503() {
    let s = ServeSettings {
        request_timeout: Duration::from_millis(20),
        ..settings()
    };
    let state = AppState::new(&s);
    let slow = Router::new()
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            routes::deadline,
        ))
        .with_state(state);
    let (status, body) = get(&slow, "/slow").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("longer than 0.020s"));
}

#[tokio::test]
async fn reload_requires_the_admin_token() {
    let (_, app) = loaded(&settings());
    let (status, body) = send(&app, reload_request(None, "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("Bearer"));
    let (status, _) = send(&app, reload_request(Some("wrong"), "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let no_token = ServeSettings {
        admin_token: None,
        ..settings()
    };
    let (_, app) = loaded(&no_token);
    let (status, body) = send(&app, reload_request(Some(TOKEN), "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("RECFLOW_ADMIN_TOKEN"));
}

#[tokio::test]
async fn a_failed_reload_keeps_the_current_model() {
    let dir = tempfile::tempdir().unwrap();
    let (_, app) = loaded(&settings());
    let body = json!({"model_dir": dir.path().join("missing")}).to_string();
    let (status, v) = send(&app, reload_request(Some(TOKEN), &body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"].as_str().unwrap().contains("not a recflow model"));
    let (status, _) = send(&app, reload_request(Some(TOKEN), r#"{"model": 1}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = get(&app, "/v1/users/alice/recommendations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), ["I2", "I0", "I3"]);
}

/// Model B scores every item 10 higher than model A: each answer must come whole from one model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_swap_under_concurrent_requests_fails_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    model_with_offset(0.0, Some("A")).save(&a).unwrap();
    model_with_offset(10.0, Some("B")).save(&b).unwrap();
    let s = ServeSettings {
        model_dir: a.clone(),
        threads: 2,
        ..settings()
    };
    let state = AppState::new(&s);
    state.reload(ReloadRequest::default()).await.unwrap();
    let app = app(state);

    let mut clients = Vec::new();
    for c in 0..8 {
        let app = app.clone();
        clients.push(tokio::spawn(async move {
            let mut seen = [0usize; 2];
            for n in 0..60 {
                let uri = if (c + n) % 2 == 0 {
                    "/v1/users/alice/recommendations".to_string()
                } else {
                    "/v1/items/I0/similar?k=2".to_string()
                };
                let (status, body) = get(&app, &uri).await;
                assert_eq!(status, StatusCode::OK, "{uri}: {body}");
                if uri.contains("alice") {
                    assert_eq!(ids(&body), ["I2", "I0", "I3"]);
                    let s = scores(&body);
                    if close(&s, &[4.5, 4.0, 2.0]) {
                        seen[0] += 1;
                    } else {
                        assert!(close(&s, &[14.5, 14.0, 12.0]), "mixed answer {body}");
                        seen[1] += 1;
                    }
                }
            }
            seen
        }));
    }
    for n in 0..6 {
        let to = if n % 2 == 0 { &b } else { &a };
        let body = json!({ "model_dir": to }).to_string();
        let (status, v) = send(&app, reload_request(Some(TOKEN), &body)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "reloaded");
    }
    let mut total = [0usize; 2];
    for c in clients {
        let seen = c.await.unwrap();
        total[0] += seen[0];
        total[1] += seen[1];
    }
    assert_eq!(total[0] + total[1], 8 * 30);
    let (_, info) = get(&app, "/v1/model").await;
    assert_eq!(info["run_id"], "A", "the last reload named model A");
}

/// A server on a loopback port with the given settings and model A, stopped when the test ends.
async fn listening(s: &ServeSettings) -> std::net::SocketAddr {
    let (state, _) = loaded(s);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = s.clone();
    tokio::spawn(
        async move { server::serve_on(listener, state, &s, std::future::pending()).await },
    );
    addr
}

async fn health_within(addr: std::net::SocketAddr, wait: Duration) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ask = async {
        let mut c = tokio::net::TcpStream::connect(addr).await.ok()?;
        c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut out = Vec::new();
        c.read_to_end(&mut out).await.ok()?;
        Some(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"))
    };
    matches!(tokio::time::timeout(wait, ask).await, Ok(Some(true)))
}

#[tokio::test]
async fn idle_connections_are_closed_and_the_connection_limit_holds() {
    use tokio::io::AsyncReadExt;
    let s = ServeSettings {
        request_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(1500),
        max_connections: 2,
        ..settings()
    };
    let addr = listening(&s).await;
    // Two silent clients take both slots: a third waits.
    let mut idle_a = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _idle_b = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !health_within(addr, Duration::from_millis(500)).await,
        "over the limit"
    );
    // Once idle past the timeout they are closed, and the server answers again.
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), idle_a.read(&mut buf))
        .await
        .expect("the idle connection was closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    assert!(health_within(addr, Duration::from_secs(5)).await);
}

// The demo page and the explanations.

/// `model_a` with hostile ids and titles: every one must come out as text.
fn hostile_model() -> SavedModel {
    let mut m = model_a();
    m.user_ids[0] = "\"><script>alert('u')</script>".to_string();
    m.item_meta = Some(
        (0..5)
            .map(|i| crate::data::meta::ItemMeta {
                title: Some(format!("<script>alert({i})</script> \"Item\" '{i}'")),
                category: Some("Audio > <b>Head</b>".into()),
                image_url: Some(format!("https://example.com/{i}.jpg\" onerror=\"x")),
            })
            .collect(),
    );
    m
}

async fn page(app: &Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .unwrap();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

fn page_app(model: SavedModel, show_images: bool) -> Router {
    let s = ServeSettings {
        show_images,
        ..settings()
    };
    let state = AppState::new(&s);
    state.install(model, "memory");
    app(state)
}

#[tokio::test]
async fn the_page_escapes_hostile_ids_and_titles() {
    let app = page_app(hostile_model(), true);
    let user = "%22%3E%3Cscript%3Ealert(%27u%27)%3C%2Fscript%3E";
    let (status, headers, html) = page(&app, &format!("/?user={user}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    // The only script element is the page's own.
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(&#39;u&#39;)&lt;/script&gt;")
            || html.contains("&lt;script&gt;alert('u')&lt;/script&gt;")
    );
    assert!(html.contains("&lt;script&gt;alert(4)&lt;/script&gt; &quot;Item&quot;"));
    assert!(html.contains("&lt;b&gt;Head&lt;/b&gt;"));
    assert!(
        !html.contains("onerror=\"x"),
        "an attribute value broke out"
    );
    // Links carry ids percent-encoded.
    assert!(html.contains("href=\"/items/I4\""));
    // The policy allows this origin only (images by URL because of `show_images`).
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"));
}

#[tokio::test]
async fn the_user_page_works_without_script_history_top_k_and_reasons() {
    let mut m = model_a();
    m.item_meta = Some(
        (0..5)
            .map(|i| crate::data::meta::ItemMeta {
                title: Some(format!("Title {i}")),
                ..Default::default()
            })
            .collect(),
    );
    let app = page_app(m, false);
    // alice rated I4 (5) and I1 (3); her top 3 without them is I2, I0, I3.
    let (status, headers, html) = page(&app, "/?user=alice&k=3").await;
    assert_eq!(status, StatusCode::OK);
    let top = &html[html.find("<ol class=\"items\"").unwrap()..];
    let top = &top[..top.find("</ol>").unwrap()];
    // Each recommended item has a similar-items button naming it.
    let order: Vec<usize> = ["I2", "I0", "I3"]
        .iter()
        .map(|h| top.find(&format!("data-item=\"{h}\"")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "ranked order");
    assert_eq!(top.matches("data-item=").count(), 3);
    assert!(
        !top.contains("data-item=\"I4\""),
        "a training item is not recommended"
    );
    assert!(html.contains("Training history (2)"));
    assert!(html.contains("Title 4"), "titles shown");
    assert!(top.contains("Because you rated"), "explanations shown");
    assert!(html.contains("Strategy: <strong>als</strong>"));
    assert!(html.contains("test_rmse"), "the model's metrics");
    // No image without `--show-images`, and nothing from another origin.
    assert!(!html.contains("<img"));
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    assert!(headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("img-src 'self';"));
}

#[tokio::test]
async fn unknown_users_see_the_cold_start_view_and_random_picks_a_rated_user() {
    let app = page_app(model_a(), false);
    let (status, _, html) = page(&app, "/?user=nobody").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Cold start") && html.contains("<strong>nobody</strong>"));
    // dave has factors but no training rating: cold start too.
    let (_, _, html) = page(&app, "/?user=dave").await;
    assert!(html.contains("Cold start"));
    for _ in 0..10 {
        let (status, headers, _) = page(&app, "/?random=1").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let to = headers[header::LOCATION].to_str().unwrap();
        assert!(
            ["/?user=alice", "/?user=bob", "/?user=carol"].contains(&to),
            "{to}"
        );
    }
}

#[tokio::test]
async fn the_item_page_lists_similar_items_and_an_unknown_item_is_a_404_page() {
    let app = page_app(model_a(), false);
    let (status, _, html) = page(&app, "/items/I0").await;
    assert_eq!(status, StatusCode::OK);
    // I4 = (2, 0) is I0's direction exactly.
    let list = &html[html.find("Similar items</h2>").unwrap()..];
    assert!(list.find("/items/I4").unwrap() < list.find("/items/I2").unwrap());
    let (status, headers, html) = page(&app, "/items/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(html.contains("unknown item `nope`"));
}

#[tokio::test]
async fn the_page_without_a_model_says_so_with_a_503() {
    let state = AppState::new(&settings());
    let app = app(state);
    let (status, _, html) = page(&app, "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(html.contains("no model is loaded yet"));
}

#[tokio::test]
async fn user_search_returns_known_ids_by_prefix_in_order() {
    let (_, app) = loaded(&settings());
    let (status, v) = get(&app, "/v1/users?prefix=").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["user_ids"], json!(["alice", "bob", "carol", "dave"]));
    let (_, v) = get(&app, "/v1/users?prefix=b").await;
    assert_eq!(v["user_ids"], json!(["bob"]));
    let (_, v) = get(&app, "/v1/users?prefix=a&limit=1").await;
    assert_eq!(v["user_ids"], json!(["alice"]));
    let (_, v) = get(&app, "/v1/users?prefix=zz").await;
    assert_eq!(v["user_ids"], json!([]));
}

#[tokio::test]
async fn explain_names_only_the_users_training_items_with_their_ratings() {
    let (_, app) = loaded(&settings());
    let (status, v) = get(&app, "/v1/users/carol/recommendations?k=3&explain=true").await;
    assert_eq!(status, StatusCode::OK);
    for it in v["items"].as_array().unwrap() {
        for r in it["because"].as_array().unwrap() {
            let (id, rating) = (
                r["item_id"].as_str().unwrap(),
                r["rating"].as_f64().unwrap(),
            );
            assert!(
                (id == "I0" && rating == 5.0) || (id == "I2" && rating == 4.0),
                "{r}"
            );
            assert!(r["weight"].as_f64().unwrap() > 0.0);
        }
    }
    // carol's I4 = (2, 0) leans on her I0 = (1, 0), not on I2.
    let i4 = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|it| it["item_id"] == "I4")
        .unwrap();
    assert_eq!(i4["because"][0]["item_id"], "I0");
    // Without `explain` there is no `because`; cold users never have one.
    let (_, v) = get(&app, "/v1/users/carol/recommendations?k=3").await;
    assert!(v["items"][0].get("because").is_none());
    let (_, v) = get(&app, "/v1/users/nobody/recommendations?explain=true").await;
    assert!(v["items"][0].get("because").is_none());
}
