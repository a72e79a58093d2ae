//! The push pipeline every transport shares: the push's label rules, then
//! decode, then validate-and-apply, each in its own span. HTTP and gRPC
//! differ only in how they get the bytes or messages to `decode`.

use tracing::info_span;

use crate::Gateway;
use crate::aggregate::GaugeMode;
use crate::decode::Options;
use crate::error::Rejection;
use crate::model::{LabelRules, Push};

/// What one push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ingested {
    /// Series touched.
    pub series: usize,
    /// Samples applied.
    pub samples: usize,
}

impl Gateway {
    /// Decodes a push with `decode` under these path (or request) labels and
    /// applies it all or nothing.
    pub fn ingest(
        &self,
        path_labels: Vec<(String, String)>,
        decode: impl FnOnce(&Options<'_>) -> Result<Push, Rejection>,
    ) -> Result<Ingested, Rejection> {
        let config = self.config();
        let rules = LabelRules::new(path_labels, &config.drop_labels, config.limits)
            .map_err(Rejection::Invalid)?;
        let opts = Options {
            labels: &rules,
            gauge_nan_ok: self.aggregator().settings().gauge_mode != GaugeMode::Sum,
        };
        let span = info_span!("decode", series = tracing::field::Empty);
        let push = span.in_scope(|| decode(&opts))?;
        let series = push.series_count();
        span.record("series", series);
        if series > config.limits.max_series_per_push {
            return Err(Rejection::PushTooLarge {
                count: series,
                limit: config.limits.max_series_per_push,
            });
        }
        if let Some(f) = push
            .families
            .iter()
            .find(|f| f.name.len() > config.limits.max_name_length)
        {
            return Err(Rejection::invalid(format!(
                "metric name {}... is {} bytes, over the limit of {}",
                &f.name[..32.min(f.name.len())],
                f.name.len(),
                config.limits.max_name_length
            )));
        }
        let samples = push.sample_count();
        let applied = self.aggregator().apply(push)?;
        Ok(Ingested {
            series: applied.series,
            samples,
        })
    }
}

/// Runs CPU-heavy work off the async workers when it is large, keeping the
/// caller's span.
pub(crate) async fn run_sized<T: Send + 'static>(
    large: bool,
    work: impl FnOnce() -> Result<T, Rejection> + Send + 'static,
) -> Result<T, Rejection> {
    if !large {
        return work();
    }
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .unwrap_or(Err(Rejection::Internal))
}
