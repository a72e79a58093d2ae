//! The three exposition formats, shared by both ends of the pipeline: a
//! push names its body's format with `Content-Type` (decode stage), a
//! scraper asks for one with `Accept` (encode stage).

/// Prometheus text, OpenMetrics text or delimited protobuf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4 (1.0.0 on push). Also the push fallback, as curl
    /// sends `application/x-www-form-urlencoded` and the Pushgateway accepts
    /// it.
    Text,
    /// OpenMetrics text 1.0.0.
    OpenMetrics,
    /// Length-delimited `io.prometheus.client.MetricFamily` messages.
    Protobuf,
}

impl Format {
    /// The push format named by a `Content-Type` header value: none (Node's
    /// prom-client sends none), `text/plain` and, as the Pushgateway takes
    /// it, `application/x-www-form-urlencoded` (what curl sends) are text.
    /// `None` for any other media type: a push in it is refused (415), not
    /// guessed at.
    pub fn from_content_type(ct: Option<&str>) -> Option<Format> {
        let Some(ct) = ct else {
            return Some(Format::Text);
        };
        let media = ct.split(';').next().unwrap_or("").trim();
        let is = |m: &str| media.eq_ignore_ascii_case(m);
        if media.is_empty() || is("text/plain") || is("application/x-www-form-urlencoded") {
            Some(Format::Text)
        } else if is("application/openmetrics-text") {
            Some(Format::OpenMetrics)
        } else if is("application/vnd.google.protobuf") {
            Some(Format::Protobuf)
        } else {
            None
        }
    }

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

    #[test]
    fn push_content_types() {
        let f = Format::from_content_type;
        assert_eq!(f(None), Some(Format::Text));
        assert_eq!(f(Some("")), Some(Format::Text));
        assert_eq!(f(Some("text/plain; version=0.0.4")), Some(Format::Text));
        assert_eq!(
            f(Some("application/x-www-form-urlencoded")),
            Some(Format::Text)
        );
        assert_eq!(
            f(Some("application/openmetrics-text; version=1.0.0")),
            Some(Format::OpenMetrics)
        );
        assert_eq!(
            f(Some(
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
            )),
            Some(Format::Protobuf)
        );
        for bad in ["application/json", "application/grpc", "x/y", "!!"] {
            assert_eq!(f(Some(bad)), None, "{bad}");
        }
    }
}
