//! What an OTLP metric becomes: its Prometheus type, its name's suffix,
//! and what its points mean.

use super::attributes::walk;
use super::names::Suffix;
use crate::model::{Kind, Meaning};
use crate::wire::Wire;

/// `AggregationTemporality`.
const DELTA: u64 = 1;
const CUMULATIVE: u64 = 2;

/// A metric's type, name suffix and what its points mean, from its data
/// field (`kind_field`: gauge 5, sum 7, histogram 9, exponential 10,
/// summary 11) and the temporality and monotonicity in it. Gauges, and
/// non-monotonic sums but delta ones, are each producer's level; a delta
/// non-monotonic sum is a change of one; other cumulative points (and
/// summaries, always) are running totals; other deltas add as pushed.
pub(super) fn classify(
    kind_field: u32,
    data: &[u8],
    unit: &str,
) -> Result<(Kind, Suffix, Option<Meaning>), Result<&'static str, String>> {
    let (mut temporality, mut monotonic) = (0, false);
    for item in walk(data) {
        match item.map_err(Ok)? {
            (2, Wire::Varint(v)) => temporality = v,
            (3, Wire::Varint(v)) => monotonic = v != 0,
            _ => {}
        }
    }
    let (kind, suffix) = match kind_field {
        5 => (Kind::Gauge, gauge_suffix(unit)),
        7 if monotonic => (Kind::Counter, Suffix::Total),
        7 => (Kind::Gauge, gauge_suffix(unit)),
        9 | 10 => (Kind::Histogram, Suffix::None),
        _ => (Kind::Summary, Suffix::None),
    };
    let meaning = match (kind_field, monotonic, temporality) {
        (5, ..) => Some(Meaning::Level),
        (7, false, DELTA) => Some(Meaning::Increment),
        (7, false, _) => Some(Meaning::Level),
        (11, ..) => Some(Meaning::Total),
        (_, _, DELTA) => None,
        (_, _, CUMULATIVE) => Some(Meaning::Total),
        (_, _, t) => {
            return Err(Err(format!(
                "aggregation temporality {t} is not DELTA or CUMULATIVE"
            )));
        }
    };
    Ok((kind, suffix, meaning))
}

fn gauge_suffix(unit: &str) -> Suffix {
    if unit == "1" {
        Suffix::Ratio
    } else {
        Suffix::None
    }
}
