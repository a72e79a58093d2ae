//! Rendering families in a format, whole or series by series.

use super::sink::Sink;
use super::{openmetrics, protobuf, text};
use crate::aggregate::{Aggregator, FamilyView};
use crate::format::Format;

/// The text scrape's sample lines, `#` lines left out (tests).
#[cfg(test)]
pub(crate) fn sample_lines(agg: &crate::aggregate::Aggregator) -> Vec<String> {
    String::from_utf8(render(agg, Format::Text))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Renders the whole aggregate in `format`, every family afresh (tests,
/// tools and the self-metrics; scrapes go through [`Cache`]).
pub fn render(aggregator: &Aggregator, format: Format) -> Vec<u8> {
    let _span = tracing::info_span!(
        target: crate::trace::STAGE,
        "encode",
        format = ?format,
        series = aggregator.series_count()
    )
    .entered();
    aggregator.read(|families| render_families(families, format))
}

/// One family into a scrape, series by series: a million-series family
/// never sits whole in memory.
pub(super) fn render_streaming(
    name: &str,
    f: &FamilyView,
    format: Format,
    sink: &mut Sink<'_>,
    scratch: &mut Vec<u8>,
) {
    match format {
        Format::Text => text::render_family(name, f, sink),
        Format::OpenMetrics => openmetrics::render_family(name, f, sink),
        // Writing into a Sink cannot fail; the family's own check can.
        Format::Protobuf => {
            if protobuf::write_family_streaming(name, f, sink, scratch).is_err() {
                sink.fail();
            }
        }
    }
}

/// Renders families (sorted, as [`Aggregator::read`] gives them).
pub fn render_families(families: &[(&str, &FamilyView)], format: Format) -> Vec<u8> {
    let mut out = Vec::with_capacity(families.iter().map(|(_, f)| f.series().len() * 64).sum());
    for (name, f) in families {
        out.extend_from_slice(&render_family(name, f, format));
    }
    finish(format, &mut out);
    out
}

/// One family in `format`.
pub(super) fn render_family(name: &str, f: &FamilyView, format: Format) -> bytes::Bytes {
    // About what a series takes in each format.
    let per_series = if format == Format::OpenMetrics {
        112
    } else {
        96
    };
    let mut out = Vec::with_capacity(f.series().len() * per_series + 64);
    match format {
        Format::Text => text::render_family(name, f, &mut out),
        Format::OpenMetrics => openmetrics::render_family(name, f, &mut out),
        Format::Protobuf => protobuf::write_family(name, f, &mut out),
    }
    out.into()
}

/// What a format writes after the last family.
pub(super) fn finish(format: Format, out: &mut Vec<u8>) {
    if format == Format::OpenMetrics {
        out.extend_from_slice(b"# EOF\n");
    }
}
