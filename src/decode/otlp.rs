//! OTLP metrics in: an `ExportMetricsServiceRequest` (protobuf) to a
//! [`Push`], walked straight off the wire as the Prometheus protobuf
//! decoder is, so a request costs the series it holds (charged as each is
//! built), never a copy of every message first.
//!
//! What becomes what (`docs/otlp.md` has the table):
//! - a monotonic delta sum adds to a counter (`_total`); a non-monotonic
//!   sum and a gauge are gauges;
//! - a delta histogram is a classic histogram (per-bucket counts made
//!   cumulative, `le` the explicit bounds and `+Inf`);
//! - a delta exponential histogram is a native histogram (scale as schema,
//!   finer scales than 8 merged down to 8, OTLP bucket `i` as Prometheus
//!   bucket `i + 1`: both cover `(base^i, base^(i+1)]`);
//! - a summary keeps its `_sum` and `_count` (quantiles do not add up);
//! - cumulative sums, histograms and exponential histograms, and summaries
//!   (always cumulative), are running totals: each series is given its
//!   producer's identity ([`Push::producers`]: a digest of the resource's
//!   attributes and the instrumentation scope), and the rules stage takes
//!   them as `total`, adding only what grew since that producer's last
//!   export (`start_time_unix_nano` as the creation time tells a restart).
//!
//! Names and labels follow [`names`]; the resource gives `job`
//! (`service.namespace/service.name`), and nothing else of it: the
//! attributes that name one producer (`service.instance.id`, host,
//! process) would keep every producer's points apart, and summing across
//! producers is the point. Points of one request that meet in one series
//! (two producers' deltas) are combined as a later push would be. The
//! request is applied whole or not at all.

mod attributes;
mod builder;
pub mod json;
mod kind;
pub mod names;
mod points;
mod producer;

use super::options::Options;
use crate::error::Rejection;
use crate::model::Push;
use crate::wire::{Reader, Wire};
use builder::Builder;
pub use builder::Settings;

/// Decodes an `ExportMetricsServiceRequest`.
pub fn request(
    body: &[u8],
    opts: &Options<'_>,
    settings: &Settings<'_>,
) -> Result<Push, Rejection> {
    let malformed =
        |e: &str| Rejection::invalid(format!("not a valid OTLP ExportMetricsServiceRequest: {e}"));
    let mut out = Builder::new(opts, settings);
    let mut r = Reader::new(body);
    while let Some((field, w)) = r.field().map_err(malformed)? {
        if let (1, Wire::Bytes(rm)) = (field, w) {
            out.resource_metrics(rm)?;
        }
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests;
