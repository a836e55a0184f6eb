//! Failures as HTTP answers, and the extractors that validate bodies and
//! query strings with an error naming the bad field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rvs_api::{ApiError, ErrorKind};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What kind of failure: `invalid`, `exists`, `not_found`, `version`,
    /// `full`, `internal` (the control API's kinds), `unavailable` (rvsd
    /// cannot be reached), `bad_gateway` (rvsd answered nonsense) or
    /// `unauthorized`.
    pub error: String,
    /// What was wrong, worded for the operator.
    pub message: String,
    /// The request field (body path, query or path parameter) that was
    /// wrong, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A failed request: its status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentError {
    /// HTTP status.
    pub status: StatusCode,
    /// Body.
    pub body: ErrorBody,
}

impl AgentError {
    fn new(status: StatusCode, error: &str, message: String, field: Option<String>) -> AgentError {
        AgentError {
            status,
            body: ErrorBody {
                error: error.into(),
                message,
                field,
            },
        }
    }

    /// 400: `field` of the request is wrong.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> AgentError {
        AgentError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            message.into(),
            Some(field.into()),
        )
    }

    /// 503: rvsd cannot be reached.
    pub fn unavailable(message: String) -> AgentError {
        AgentError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            message,
            None,
        )
    }

    /// 502: rvsd's answer could not be had or understood.
    pub fn bad_gateway(message: String) -> AgentError {
        AgentError::new(StatusCode::BAD_GATEWAY, "bad_gateway", message, None)
    }

    /// 401: no or a wrong bearer token.
    pub fn unauthorized(message: &str) -> AgentError {
        AgentError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            message.into(),
            None,
        )
    }
}

/// The HTTP status of a control-API failure kind.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Exists => StatusCode::CONFLICT,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Version => StatusCode::BAD_GATEWAY,
        ErrorKind::Full => StatusCode::INSUFFICIENT_STORAGE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn kind_name(kind: ErrorKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "internal".into())
}

impl From<ApiError> for AgentError {
    fn from(e: ApiError) -> AgentError {
        AgentError::new(status_of(e.kind), &kind_name(e.kind), e.message, None)
    }
}

impl IntoResponse for AgentError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

/// The field a serde error is about: its path, completed with the name of a
/// missing field.
fn field_of(path: &serde_path_to_error::Path, inner: &str) -> String {
    let mut p = path.to_string();
    if p == "." {
        p.clear();
    }
    if let Some(rest) = inner.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or("");
        if p.is_empty() {
            p = name.to_string();
        } else {
            p = format!("{p}.{name}");
        }
    }
    if p.is_empty() {
        "body".into()
    } else {
        p
    }
}

/// A JSON body, decoded with an error naming the bad field (400).
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = AgentError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AgentError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| AgentError::invalid("body", format!("cannot read the body: {e}")))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(AgentError::invalid("body", "a JSON body is required"));
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        let v = serde_path_to_error::deserialize(de).map_err(|e| {
            let inner = e.inner().to_string();
            let field = if e.inner().is_syntax() || e.inner().is_eof() {
                "body".to_string()
            } else {
                field_of(e.path(), &inner)
            };
            let what = if field == "body" {
                "malformed JSON body".to_string()
            } else {
                format!("bad value of {field}")
            };
            AgentError::invalid(field, format!("{what}: {inner}"))
        })?;
        Ok(Body(v))
    }
}

/// A query string, decoded with an error naming the bad parameter (400).
#[derive(Debug, Clone)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = AgentError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AgentError> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Params)
            .map_err(|e| {
                let inner = e.inner().to_string();
                let field = field_of(e.path(), &inner);
                let field = if field == "body" {
                    "query".into()
                } else {
                    field
                };
                AgentError::invalid(
                    field.clone(),
                    format!("bad query parameter {field}: {inner}"),
                )
            })
    }
}
