//! Logs and traces: `tracing` everywhere, printed as text or JSON, and
//! exported over OTLP when the standard OpenTelemetry variables ask for it
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, ...). A request's span
//! continues the caller's W3C `traceparent`, from an HTTP header or gRPC
//! metadata alike (both are HTTP/2 headers).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, Request, Response};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Span, info_span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The target of the spans of a request's stages (decode, route, validate,
/// apply, encode). They are for traces only: log lines carry the request's
/// span, and formatting every stage's fields for the log on every push cost
/// a large part of a small push's instructions (see bench/README.md). With
/// no OTLP export no layer takes them and they cost nothing.
pub const STAGE: &str = "prom_aggregation_gateway::stage";

/// Flushes exported spans when dropped (at exit).
#[derive(Debug)]
pub struct Guard(Option<SdkTracerProvider>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = p.shutdown();
        }
    }
}

/// Whether spans are exported (set once by [`init`]): without an exporter a
/// request's span is only the context of its log lines.
static EXPORTING: AtomicBool = AtomicBool::new(false);

fn otlp_wanted() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()))
        && std::env::var("OTEL_SDK_DISABLED").map_or(true, |v| v != "true")
}

/// Installs the global subscriber: `RUST_LOG` filter (default `info`), log
/// lines in `format`, and OTLP span export when configured. Call once, from
/// within the Tokio runtime.
pub fn init(format: LogFormat) -> Result<Guard, String> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = match format {
        // Colour only for a person at a terminal: not in files or log
        // collectors.
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    }
    .with_filter(filter_fn(|meta| meta.target() != STAGE));
    let provider = if otlp_wanted() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| format!("OTLP exporter: {e}"))?;
        Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name(
                            std::env::var("OTEL_SERVICE_NAME")
                                .unwrap_or_else(|_| "prom-aggregation-gateway".into()),
                        )
                        .build(),
                )
                .build(),
        )
    } else {
        None
    };
    EXPORTING.store(provider.is_some(), Ordering::Relaxed);
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("prom-aggregation-gateway"))
            .boxed()
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| format!("tracing: {e}"))?;
    Ok(Guard(provider))
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The span of one request, child of the caller's trace when it sent one.
/// Without an exporter only what a log line needs (method, path, request
/// id): the log layer formats every field of every span when it is made,
/// and the OpenTelemetry fields and the caller's trace context would be
/// work for nobody on every request.
pub fn request_span<B>(req: &Request<B>) -> Span {
    let path = req.uri().path();
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !EXPORTING.load(Ordering::Relaxed) {
        return info_span!("request", method = %req.method(), path, request_id = id);
    }
    let grpc = crate::error::is_grpc(req);
    let span = info_span!(
        "request",
        otel.name = %if grpc { path.trim_start_matches('/').to_string() } else { format!("{} {}", req.method(), path) },
        otel.kind = "server",
        rpc.system = if grpc { "grpc" } else { "" },
        http.request.method = %req.method(),
        url.path = %path,
        request_id = %id,
        http.response.status_code = tracing::field::Empty,
    );
    let parent =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(req.headers())));
    let _ = span.set_parent(parent);
    span
}

/// Records the status on the request's span.
pub fn on_response<B>(res: &Response<B>, latency: Duration, span: &Span) {
    span.record("http.response.status_code", res.status().as_u16());
    tracing::debug!(status = res.status().as_u16(), ?latency, "answered");
}
