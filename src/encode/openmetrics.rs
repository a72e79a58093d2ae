//! OpenMetrics text 1.0.0, as client_golang's encoder writes it: counters as
//! a family `foo` with samples `foo_total` (and `foo_created`), numbers with
//! `.0` after integers, `# EOF` at the end.

use super::float::write_openmetrics;
use super::text::write_sample;
use super::write_escaped;
use crate::aggregate::StoredFamily;
use crate::model::{Kind, Value, created_seconds};

/// Appends one family in OpenMetrics text (the `# EOF` after the last
/// family is the caller's).
pub(super) fn render_family(name: &str, f: &StoredFamily, out: &mut Vec<u8>) {
    {
        let base = match f.kind {
            Kind::Counter => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        }
        .as_bytes();
        let kind: &[u8] = match f.kind {
            Kind::Untyped => b"unknown",
            k => k.as_str().as_bytes(),
        };
        out.extend_from_slice(b"# TYPE ");
        out.extend_from_slice(base);
        out.push(b' ');
        out.extend_from_slice(kind);
        out.push(b'\n');
        if !f.help.is_empty() {
            out.extend_from_slice(b"# HELP ");
            out.extend_from_slice(base);
            out.push(b' ');
            write_escaped(out, f.help.as_bytes(), true);
            out.push(b'\n');
        }
        let mut le = Vec::with_capacity(24);
        for (key, s) in f.series() {
            match &s.value {
                Value::Scalar(v) => {
                    let suffix: &[u8] = if f.kind == Kind::Counter {
                        b"_total"
                    } else {
                        b""
                    };
                    sample(out, base, suffix, key, None, *v);
                }
                Value::Histogram(h) => {
                    for b in &h.buckets {
                        le.clear();
                        write_openmetrics(&mut le, b.le);
                        sample(out, base, b"_bucket", key, Some(&le), b.count);
                    }
                    sample(out, base, b"_count", key, None, h.count);
                    sample(out, base, b"_sum", key, None, h.sum);
                }
                Value::Native(h) => {
                    sample(out, base, b"_bucket", key, Some(b"+Inf"), h.count);
                    sample(out, base, b"_count", key, None, h.count);
                    sample(out, base, b"_sum", key, None, h.sum);
                }
                Value::Summary { count, sum } => {
                    sample(out, base, b"_count", key, None, *count);
                    sample(out, base, b"_sum", key, None, *sum);
                }
            }
            if let Some(c) = s.created {
                sample(out, base, b"_created", key, None, created_seconds(c));
            }
        }
    }
}

fn sample(out: &mut Vec<u8>, base: &[u8], suffix: &[u8], key: &[u8], le: Option<&[u8]>, v: f64) {
    write_sample(out, base, suffix, key, le, v, write_openmetrics);
}
