//! [`Rejection`]: why a request was refused, as one line a sender can act on.
//!
//! Every stage (decode, aggregate, transport) returns this one type, and only
//! here is it mapped to an HTTP status (and, for gRPC, to a status code), so
//! both protocols say the same thing for the same mistake.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A refused request. `Display` is the one-line reason sent to the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// A problem at one line of a text body; `line` counts from 1.
    #[error("line {line}: {reason}")]
    Line {
        /// Line of the body.
        line: usize,
        /// What is wrong there, naming the metric where known.
        reason: String,
    },
    /// The push is well-formed but its content is invalid (bad names or
    /// values, decreasing buckets, duplicate series, bad path labels...).
    #[error("{0}")]
    Invalid(String),
    /// A family was pushed with another type than the stored one.
    #[error("metric {family}: pushed as {pushed} but stored as {stored}")]
    TypeConflict {
        /// Family name.
        family: String,
        /// Type in this push.
        pushed: &'static str,
        /// Type in the aggregate.
        stored: &'static str,
    },
    /// The body (after decompression) is larger than `--max-body-bytes`.
    #[error("body larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The push holds more series than `--max-series-per-push`.
    #[error("push holds {count} series, over the limit of {limit} per push")]
    PushTooLarge {
        /// Series in the push.
        count: usize,
        /// `--max-series-per-push`.
        limit: usize,
    },
    /// The push would be held as far more bytes than were sent (many tiny
    /// families or series, or path labels copied into every series).
    #[error(
        "push of {input} bytes would be held as more than {limit} bytes (10 per byte sent plus 1 MiB); send fewer, larger series or families per push"
    )]
    PushTooDense {
        /// Bytes sent (decompressed body and path).
        input: usize,
        /// The most it may be held as.
        limit: usize,
    },
    /// Applying the push would store more than `--max-series` series.
    #[error("push would add {new} series to {stored}, over the limit of {limit} series")]
    TooManySeries {
        /// Series the push would create.
        new: usize,
        /// Series stored now.
        stored: usize,
        /// `--max-series`.
        limit: usize,
    },
    /// Applying the push (or reading the request) would take the bytes
    /// held over `--max-memory`.
    #[error(
        "push needs {need} more bytes but the gateway holds {used} of its --max-memory limit of {limit} bytes"
    )]
    MemoryBudget {
        /// Bytes this request would add.
        need: usize,
        /// Bytes held now.
        used: usize,
        /// `--max-memory`.
        limit: usize,
    },
    /// Applying the push would take a family past a limit on what it
    /// holds (the union of classic bucket bounds); the reason names it.
    #[error("{0}")]
    FamilyLimit(String),
    /// A `Content-Type` the route does not take (a gRPC call to an HTTP
    /// route, an HTTP request to a gRPC method, an unknown push format).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// No route has this path.
    #[error("no route for {0}")]
    NotFound(String),
    /// The path exists, not with this method.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
    },
    /// A `Content-Encoding` we do not decode.
    #[error("unsupported Content-Encoding {0:?}")]
    UnsupportedEncoding(String),
    /// No or wrong credentials.
    #[error("authentication required")]
    Unauthenticated,
    /// A request from a page of another origin that it may not make: the
    /// reason, naming the origin.
    #[error("{0}")]
    OriginNotAllowed(String),
    /// Too many requests in flight: shed rather than queued.
    #[error("gateway overloaded, retry later")]
    Overloaded,
    /// The request took longer than `--request-timeout`.
    #[error("request timed out")]
    Timeout,
    /// A bug: a handler panicked. Nothing of the request was applied.
    #[error("internal error")]
    Internal,
    /// The `Idempotency-Key` came with another request (route, content
    /// type and encoding, or body) before, within the window.
    #[error("Idempotency-Key reused with a different request; use a new key for a new push")]
    IdempotencyKeyReused,
    /// A request with this `Idempotency-Key` is still being handled.
    #[error("a request with this Idempotency-Key is still being handled; retry later")]
    IdempotencyKeyInFlight,
}

impl Rejection {
    /// The HTTP status this rejection answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Line { .. } | Rejection::Invalid(_) | Rejection::TypeConflict { .. } => {
                StatusCode::BAD_REQUEST
            }
            Rejection::BodyTooLarge { .. }
            | Rejection::PushTooLarge { .. }
            | Rejection::PushTooDense { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::TooManySeries { .. }
            | Rejection::MemoryBudget { .. }
            | Rejection::FamilyLimit(_) => StatusCode::TOO_MANY_REQUESTS,
            Rejection::UnsupportedEncoding(_) | Rejection::UnsupportedMediaType(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Rejection::NotFound(_) => StatusCode::NOT_FOUND,
            Rejection::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::Unauthenticated => StatusCode::UNAUTHORIZED,
            Rejection::OriginNotAllowed(_) => StatusCode::FORBIDDEN,
            Rejection::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::Timeout => StatusCode::REQUEST_TIMEOUT,
            Rejection::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Rejection::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Rejection::IdempotencyKeyInFlight => StatusCode::CONFLICT,
        }
    }

    /// The gRPC status code this rejection answers with; beside
    /// [`Rejection::status`] so the two mappings stay in step.
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            Rejection::Line { .. }
            | Rejection::Invalid(_)
            | Rejection::TypeConflict { .. }
            | Rejection::UnsupportedEncoding(_)
            | Rejection::UnsupportedMediaType(_) => tonic::Code::InvalidArgument,
            Rejection::NotFound(_) | Rejection::MethodNotAllowed { .. } => {
                tonic::Code::Unimplemented
            }
            Rejection::BodyTooLarge { .. }
            | Rejection::PushTooLarge { .. }
            | Rejection::PushTooDense { .. }
            | Rejection::TooManySeries { .. }
            | Rejection::MemoryBudget { .. }
            | Rejection::FamilyLimit(_) => tonic::Code::ResourceExhausted,
            Rejection::Unauthenticated => tonic::Code::Unauthenticated,
            Rejection::OriginNotAllowed(_) => tonic::Code::PermissionDenied,
            Rejection::Overloaded => tonic::Code::Unavailable,
            Rejection::Timeout => tonic::Code::DeadlineExceeded,
            Rejection::Internal => tonic::Code::Internal,
            Rejection::IdempotencyKeyReused => tonic::Code::FailedPrecondition,
            // Retryable, as gRPC's guide says of ABORTED.
            Rejection::IdempotencyKeyInFlight => tonic::Code::Aborted,
        }
    }

    /// The answer to a request: a gRPC status (HTTP 200 with `grpc-status`)
    /// for gRPC calls, since a bare HTTP error reaches a tonic client as
    /// `UNKNOWN`; else the HTTP status with the reason as plain text.
    ///
    /// The response carries the rejection (as [`Refused`]) so the request
    /// metrics layer can keep a refused push in the ring of refusals.
    pub fn respond(self, grpc: bool) -> Response {
        let refused = Refused(self.clone());
        let mut res = self.respond_plain(grpc);
        res.extensions_mut().insert(refused);
        res
    }

    fn respond_plain(self, grpc: bool) -> Response {
        if grpc {
            let mut res = tonic::Status::from(self).into_http::<axum::body::Body>();
            res.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/grpc"),
            );
            res
        } else {
            self.into_response()
        }
    }

    /// A short, fixed name for the self-metrics' `reason` label.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Line { .. } => "parse",
            Rejection::Invalid(_) => "invalid",
            Rejection::TypeConflict { .. } => "type_conflict",
            Rejection::BodyTooLarge { .. } => "body_too_large",
            Rejection::PushTooLarge { .. } => "push_too_large",
            Rejection::PushTooDense { .. } => "push_too_dense",
            Rejection::TooManySeries { .. } => "too_many_series",
            Rejection::MemoryBudget { .. } => "memory",
            Rejection::FamilyLimit(_) => "family_limit",
            Rejection::UnsupportedEncoding(_) => "unsupported_encoding",
            Rejection::UnsupportedMediaType(_) => "unsupported_media_type",
            Rejection::NotFound(_) => "not_found",
            Rejection::MethodNotAllowed { .. } => "method_not_allowed",
            Rejection::Unauthenticated => "unauthenticated",
            Rejection::OriginNotAllowed(_) => "origin_not_allowed",
            Rejection::Overloaded => "overloaded",
            Rejection::Timeout => "timeout",
            Rejection::Internal => "internal",
            Rejection::IdempotencyKeyReused => "idempotency_key_reused",
            Rejection::IdempotencyKeyInFlight => "idempotency_key_in_flight",
        }
    }

    /// Shorthand for [`Rejection::Invalid`].
    pub fn invalid(reason: impl Into<String>) -> Rejection {
        Rejection::Invalid(reason.into())
    }
}

/// A response's refusal, set by [`Rejection::respond`] (the middleware's
/// refusals, before a handler runs).
#[derive(Debug, Clone)]
pub struct Refused(pub Rejection);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let mut body = self.to_string();
        body.push('\n');
        let mut res = (self.status(), body).into_response();
        if matches!(self, Rejection::Unauthenticated) {
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"prom-aggregation-gateway\""),
            );
        }
        res
    }
}

impl From<Rejection> for tonic::Status {
    fn from(r: Rejection) -> tonic::Status {
        tonic::Status::new(r.grpc_code(), r.to_string())
    }
}

/// Whether a request is a gRPC call, so its refusals are answered as gRPC
/// statuses.
pub fn is_grpc<B>(req: &axum::http::Request<B>) -> bool {
    req.headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| is_grpc_content_type(v.as_bytes()))
}

/// Whether a `Content-Type` is gRPC's (`application/grpc`, `+proto`, ...):
/// the one test of it.
pub fn is_grpc_content_type(content_type: &[u8]) -> bool {
    content_type.starts_with(b"application/grpc")
}

/// `url` as it may be shown in a message: whatever stands between the
/// scheme and the last `@` (user and password, even when the rest does
/// not parse) replaced by `***`.
pub(crate) fn redacted_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    match rest.rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => url.to_string(),
    }
}
