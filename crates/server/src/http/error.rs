//! One error type for every handler: a status and a JSON `{"error": "..."}` body. Internal
//! errors are logged in full and answered with a plain message.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::db::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_seconds: u64,
    },
    #[error("{0}")]
    Unavailable(String),
    /// 401: the password was right, and the account also needs its second factor.
    #[error("{0}")]
    TwoFactorRequired(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn not_found(what: &str) -> ApiError {
        ApiError::NotFound(format!("{what} not found"))
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) | ApiError::TwoFactorRequired(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The one place storage errors become HTTP answers.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict { field } => {
                ApiError::Conflict(format!("that {field} is already taken"))
            }
            StoreError::Unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::Unavailable("the database is unavailable; try again".into())
            }
            StoreError::Other(e) => ApiError::Internal(e.into()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        StoreError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "internal server error".to_owned()
            }
            other => other.to_string(),
        };
        let body = match &self {
            // The sign-in page asks for the code when it sees this flag.
            ApiError::TwoFactorRequired(_) => {
                json!({ "error": message, "two_factor_required": true })
            }
            _ => json!({ "error": message }),
        };
        let mut response = (status, Json(body)).into_response();
        if let ApiError::TooManyRequests {
            retry_after_seconds,
            ..
        } = self
        {
            if let Ok(v) = retry_after_seconds.max(1).to_string().parse() {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

impl From<crate::rate_limit::Limited> for ApiError {
    fn from(l: crate::rate_limit::Limited) -> ApiError {
        match l {
            crate::rate_limit::Limited::Retry(r) => r.into(),
            crate::rate_limit::Limited::Store(e) => e.into(),
        }
    }
}

impl From<crate::rate_limit::RetryAfter> for ApiError {
    fn from(r: crate::rate_limit::RetryAfter) -> ApiError {
        let secs = r.0.as_secs() + 1;
        ApiError::TooManyRequests {
            message: format!("too many requests; try again in {secs} s"),
            retry_after_seconds: secs,
        }
    }
}

/// A row read by id as its API type, or 404 naming `what`.
pub fn found<R, T: From<R>>(row: Option<R>, what: &str) -> ApiResult<axum::Json<T>> {
    row.map(|r| axum::Json(T::from(r)))
        .ok_or_else(|| ApiError::not_found(what))
}
