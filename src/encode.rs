//! Encode stage: the aggregate out, in the format the scraper asks for
//! (SPEC §2, "Scrape"). One file per format, as client_rust's `encoding`.

pub mod float;
pub mod openmetrics;
pub mod protobuf;
pub mod text;

use crate::aggregate::{Aggregator, StoredFamily};

/// A scrape output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4.
    Text,
    /// OpenMetrics text 1.0.0.
    OpenMetrics,
    /// Length-delimited `io.prometheus.client.MetricFamily`.
    Protobuf,
}

impl Format {
    /// Picks the format for an `Accept` header as Prometheus' own negotiation
    /// does: the highest `q` among the offers we can serve (the first on a
    /// tie); text when nothing matches.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut best: Option<(f32, Format)> = None;
        for range in accept.split(',') {
            let mut params = range.split(';').map(str::trim);
            let media = params.next().unwrap_or("").to_ascii_lowercase();
            let mut q = 1.0f32;
            let (mut proto, mut encoding) = (None, None);
            for p in params {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                let v = v.trim().trim_matches('"');
                match k.trim().to_ascii_lowercase().as_str() {
                    "q" => q = v.parse().unwrap_or(0.0),
                    "proto" => proto = Some(v.to_string()),
                    "encoding" => encoding = Some(v.to_string()),
                    _ => {}
                }
            }
            let format = match media.as_str() {
                "application/vnd.google.protobuf"
                    if proto.as_deref() == Some("io.prometheus.client.MetricFamily")
                        && encoding.as_deref() == Some("delimited") =>
                {
                    Format::Protobuf
                }
                "application/openmetrics-text" => Format::OpenMetrics,
                "text/plain" | "text/*" | "*/*" => Format::Text,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, format));
            }
        }
        best.map_or(Format::Text, |(_, f)| f)
    }

    /// A short name, for logs and the self-metrics' `format` label.
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::OpenMetrics => "openmetrics",
            Format::Protobuf => "protobuf",
        }
    }

    /// The `Content-Type` of a scrape in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Protobuf => {
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            }
        }
    }
}

/// Renders the whole aggregate in `format`.
pub fn render(aggregator: &Aggregator, format: Format) -> Vec<u8> {
    let _span = tracing::info_span!(
        "encode",
        format = ?format,
        series = aggregator.series_count()
    )
    .entered();
    aggregator.read(|families| render_families(families, format))
}

/// The last rendering of each format (plain and gzip), kept until the
/// aggregate changes: scrapes of an unchanged aggregate (HA Prometheus
/// pairs, several scrapers, retries) cost a copy of an `Arc`.
#[derive(Debug, Default)]
pub struct Cache {
    slots: parking_lot::Mutex<[Option<(u64, bytes::Bytes)>; 6]>,
}

impl Cache {
    fn slot(format: Format, gzip: bool) -> usize {
        (format as usize) * 2 + usize::from(gzip)
    }

    /// The aggregate in `format`, gzipped when asked, from the cache when
    /// nothing changed since it was rendered.
    pub fn render(&self, aggregator: &Aggregator, format: Format, gzip: bool) -> bytes::Bytes {
        // Plain text is not kept whole: the families keep their own text,
        // and joining them costs a copy.
        let keep = gzip || format != Format::Text;
        let slot = Self::slot(format, gzip);
        let now = aggregator.generation();
        if let Some((generation, body)) = &self.slots.lock()[slot]
            && *generation == now
        {
            return body.clone();
        }
        let _span = tracing::info_span!("encode", format = ?format, gzip, series = aggregator.series_count()).entered();
        let (generation, plain) = aggregator
            .read_at(|families, generation| (generation, render_families(families, format)));
        let body = if gzip { gzip_fast(&plain) } else { plain };
        let body = bytes::Bytes::from(body);
        if keep {
            self.slots.lock()[slot] = Some((generation, body.clone()));
        }
        body
    }
}

/// gzip at the fastest level: on 100k series (11 MB) level 6 took ~240 ms,
/// level 1 a fraction of that, for a scrape that travels over a LAN.
pub fn gzip_fast(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 8),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Renders families (sorted, as [`Aggregator::read`] gives them).
pub fn render_families(families: &[(&str, &StoredFamily)], format: Format) -> Vec<u8> {
    let mut out = Vec::with_capacity(families.iter().map(|(_, f)| f.series().len() * 64).sum());
    match format {
        Format::Text => text::render(families, &mut out),
        Format::OpenMetrics => openmetrics::render(families, &mut out),
        Format::Protobuf => protobuf::render(families, &mut out),
    }
    out
}

/// Appends a label value (or HELP text) with the text format's escapes:
/// backslash, newline, and with `quote` also the double quote.
pub(crate) fn write_escaped(out: &mut Vec<u8>, s: &[u8], quote: bool) {
    let mut rest = s;
    loop {
        let found = if quote {
            memchr::memchr3(b'\\', b'\n', b'"', rest)
        } else {
            memchr::memchr2(b'\\', b'\n', rest)
        };
        let Some(i) = found else {
            out.extend_from_slice(rest);
            return;
        };
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(match rest[i] {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            _ => b"\\\"",
        });
        rest = &rest[i + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::Format;

    #[test]
    fn negotiation() {
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(
            Format::negotiate(Some(
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            )),
            Format::Protobuf
        );
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("text/plain;q=0.9, application/openmetrics-text;q=0.2")),
            Format::Text
        );
        assert_eq!(Format::negotiate(Some("application/json")), Format::Text);
    }
}
