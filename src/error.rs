//! `AppError`: the one error type that crosses the wire, for server functions
//! and the REST API alike. Each variant maps to one of SPEC.md's codes and an
//! HTTP status; internal causes are logged on the server and never sent.

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

/// A problem with one input field, shown next to that field in forms and
/// listed in `details` by the REST API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// No valid session or API key (the message says which and why).
    #[error("{0}")]
    Unauthorized(String),
    /// Signed in, but the role or key scope does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// Missing, or belongs to another organization (the two look the same).
    #[error("{0} not found.")]
    NotFound(String),
    /// One or more inputs are invalid.
    #[error("{message}")]
    Validation {
        message: String,
        fields: Vec<FieldError>,
    },
    /// The body is not the JSON the endpoint expects.
    #[error("{0}")]
    InvalidJson(String),
    /// A unique value (email, slug, name) is taken.
    #[error("{}", .0.message)]
    AlreadyExists(FieldError),
    /// A token (invitation, API key) is expired, used or revoked.
    #[error("{0}")]
    InvalidToken(String),
    /// The operation conflicts with the current state (e.g. the last owner).
    #[error("{0}")]
    Conflict(String),
    /// A plan limit was hit.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The month's budget is spent and has a hard stop.
    #[error("{0}")]
    BudgetExceeded(String),
    /// The browser agent can't run on this server (no Chromium); says what
    /// to install.
    #[error("{0}")]
    BrowserUnavailable(String),
    /// Every model of the route failed (or answered nonsense) for a request
    /// made on the user's behalf; says which and why.
    #[error("{0}")]
    ModelUnavailable(String),
    /// An uploaded file was refused; says what is wrong and where.
    #[error("{}", .0.located_message())]
    BadFile(Box<crate::model::FileProblem>),
    /// Too many attempts; retry after this many seconds.
    #[error("Too many attempts. Try again in {retry_after_secs} seconds.")]
    RateLimited { retry_after_secs: u64 },
    /// Something failed on our side; the details are in the server log under
    /// this request id.
    #[error("Something went wrong on our side. (reference {0})")]
    Internal(String),
}

impl AppError {
    /// A failure on our side: `cause` and every error under it are logged
    /// (with `context`, what was being done) under a short reference, and
    /// only the reference reaches the client. The one way the server makes
    /// an [`AppError::Internal`].
    #[cfg(feature = "ssr")]
    pub fn internal(context: &str, cause: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = cause.to_string();
        let mut next = cause.source();
        while let Some(c) = next {
            chain.push_str(": ");
            chain.push_str(&c.to_string());
            next = c.source();
        }
        Self::logged(context, &chain)
    }

    /// A broken expectation on our side with no error value behind it (a
    /// layer missing from the router), logged like [`AppError::internal`].
    #[cfg(feature = "ssr")]
    pub fn internal_bug(what: &str) -> Self {
        Self::logged("bug", what)
    }

    #[cfg(feature = "ssr")]
    fn logged(context: &str, detail: &str) -> Self {
        let reference = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        tracing::error!(%reference, context, error = %detail, "request failed");
        AppError::Internal(reference)
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let fe = FieldError::new(field, message);
        AppError::Validation {
            message: fe.message.clone(),
            fields: vec![fe],
        }
    }

    /// The same error with its fields named inside `parent` (`status` →
    /// `filters.status`), for inputs nested in a body.
    pub fn nested(self, parent: &str) -> Self {
        match self {
            AppError::Validation { message, fields } => AppError::Validation {
                message,
                fields: fields
                    .into_iter()
                    .map(|f| FieldError {
                        field: format!("{parent}.{}", f.field),
                        message: f.message,
                    })
                    .collect(),
            },
            other => other,
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden(message.into())
    }

    /// The machine-readable code of SPEC.md.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthorized(_) => "UNAUTHORIZED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::Validation { .. } => "VALIDATION_ERROR",
            AppError::InvalidJson(_) => "INVALID_JSON",
            AppError::AlreadyExists(_) => "ALREADY_EXISTS",
            AppError::InvalidToken(_) => "INVALID_TOKEN",
            AppError::Conflict(_) => "CONFLICT",
            AppError::QuotaExceeded(_) => "QUOTA_EXCEEDED",
            AppError::BudgetExceeded(_) => "BUDGET_EXCEEDED",
            AppError::BrowserUnavailable(_) => "BROWSER_UNAVAILABLE",
            AppError::ModelUnavailable(_) => "MODEL_UNAVAILABLE",
            AppError::BadFile(p) => p.code.as_str(),
            AppError::RateLimited { .. } => "RATE_LIMIT_EXCEEDED",
            AppError::Internal(_) => "INTERNAL_ERROR",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthorized(_) => 401,
            AppError::Forbidden(_) => 403,
            AppError::NotFound(_) => 404,
            AppError::Validation { .. } | AppError::InvalidJson(_) => 400,
            AppError::AlreadyExists(_) | AppError::Conflict(_) => 409,
            AppError::InvalidToken(_) => 410,
            AppError::QuotaExceeded(_) | AppError::BudgetExceeded(_) => 402,
            // The request is fine; this server can't carry it out.
            AppError::BrowserUnavailable(_) => 409,
            // The model provider failed us: a bad gateway, not a bad request.
            AppError::ModelUnavailable(_) => 502,
            AppError::BadFile(p) if p.code == crate::model::FileProblemCode::FileTooLarge => 413,
            AppError::BadFile(_) => 400,
            AppError::RateLimited { .. } => 429,
            AppError::Internal(_) => 500,
        }
    }

    /// Field errors, for forms and for the REST `details`.
    pub fn field_errors(&self) -> Vec<FieldError> {
        match self {
            AppError::Validation { fields, .. } => fields.clone(),
            AppError::AlreadyExists(fe) => vec![fe.clone()],
            _ => vec![],
        }
    }

    /// The message for one field, if this error names it.
    pub fn message_for(&self, field: &str) -> Option<String> {
        self.field_errors()
            .into_iter()
            .find(|f| f.field == field)
            .map(|f| f.message)
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(msg) | ServerFnErrorErr::Deserialization(msg) => {
                AppError::InvalidJson(format!("The form could not be read: {msg}"))
            }
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => {
                AppError::Internal("the server could not be reached; check your connection".into())
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}
