//! Errors of the server: [`ApiError`], what a client sees (a status and `{"error": "..."}`), and
//! [`ServeError`], why the server could not start or keep running.
//!
//! An `ApiError` carries a message meant for the client; causes a client cannot act on (a bug,
//! a failed model load) are logged here, once, when the response is built. Knows nothing about
//! routes or the model.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use thiserror::Error;

use super::scorer::ScoreError;

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// No model yet: the server is still loading it.
    pub fn not_ready() -> Self {
        Self::unavailable("no model is loaded yet; retry when `GET /ready` answers 200")
    }
}

impl From<ScoreError> for ApiError {
    fn from(e: ScoreError) -> Self {
        Self::unavailable(e.to_string())
    }
}

#[derive(serde::Serialize)]
struct Body<'a> {
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // 503s (loading, overload, timeouts) are expected under load; only bugs are warnings.
        if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!(status = self.status.as_u16(), "{}", self.message);
        } else if self.status.is_server_error() {
            tracing::debug!(status = self.status.as_u16(), "{}", self.message);
        }
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let mut resp = (
            self.status,
            Json(Body {
                error: &self.message,
            }),
        )
            .into_response();
        if unauthorized {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// A failure reported by a model loader (a folder that is not a model, an unknown run id...).
pub type LoadError = Box<dyn std::error::Error + Send + Sync>;

/// Why the server could not start or stopped with an error.
#[derive(Debug, Error)]
pub enum ServeError {
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("`{host}` is not an address to listen on")]
    Host { host: String },
    #[error("cannot listen on `{addr}`")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load the model from `{source_name}`")]
    Load {
        source_name: String,
        #[source]
        source: LoadError,
    },
    #[error("the model folder `{}` does not exist", .0.display())]
    MissingModel(PathBuf),
    #[error("cannot install the signal handlers")]
    Signals(#[source] std::io::Error),
    #[error("the server stopped with an error")]
    Io(#[source] std::io::Error),
}

impl ServeError {
    /// A line telling the user what to do, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Bind { .. } => {
                Some("another process may be using the port; choose another with `--port`".into())
            }
            Self::Host { .. } => Some("use an IP address such as `127.0.0.1` or `0.0.0.0`".into()),
            Self::MissingModel(_) | Self::Load { .. } => Some(
                "train one with `recflow train-als` (it writes artifacts/model), or pass \
                 `--run-id`"
                    .into(),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn api_errors_are_json_with_a_message() {
        let resp = ApiError::bad_request("`k` must be between 1 and 1000, got `0`").into_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let bytes = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["error"], "`k` must be between 1 and 1000, got `0`");
    }

    #[test]
    fn unauthorized_answers_ask_for_a_bearer_token() {
        let resp = ApiError::unauthorized("missing token").into_response();
        assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
