//! Prometheus text format 0.0.4: what the Pushgateway and the Go gateway
//! serve, and what conformance cases compare byte for byte.

use super::float::write_go;
use super::write_escaped;
use crate::aggregate::StoredFamily;
use crate::model::{Value, labels};

/// Appends the families in text format 0.0.4.
pub fn render(families: &[(&str, &StoredFamily)], out: &mut Vec<u8>) {
    for (name, f) in families {
        let name = name.as_bytes();
        if !f.help.is_empty() {
            out.extend_from_slice(b"# HELP ");
            out.extend_from_slice(name);
            out.push(b' ');
            write_escaped(out, f.help.as_bytes(), false);
            out.push(b'\n');
        }
        out.extend_from_slice(b"# TYPE ");
        out.extend_from_slice(name);
        out.push(b' ');
        out.extend_from_slice(f.kind.as_str().as_bytes());
        out.push(b'\n');
        for (key, s) in f.series() {
            match &s.value {
                Value::Scalar(v) => sample(out, name, b"", key, None, *v),
                Value::Histogram(h) => {
                    let mut le = Vec::with_capacity(24);
                    for b in &h.buckets {
                        le.clear();
                        write_go(&mut le, b.le);
                        sample(out, name, b"_bucket", key, Some(&le), b.count);
                    }
                    sample(out, name, b"_sum", key, None, h.sum);
                    sample(out, name, b"_count", key, None, h.count);
                }
                // The text format has no native buckets: a classic-compatible
                // view, as client_golang writes native-only histograms.
                Value::Native(h) => {
                    sample(out, name, b"_bucket", key, Some(b"+Inf"), h.count);
                    sample(out, name, b"_sum", key, None, h.sum);
                    sample(out, name, b"_count", key, None, h.count);
                }
                Value::Summary { count, sum } => {
                    sample(out, name, b"_sum", key, None, *sum);
                    sample(out, name, b"_count", key, None, *count);
                }
            }
        }
    }
}

fn sample(out: &mut Vec<u8>, name: &[u8], suffix: &[u8], key: &[u8], le: Option<&[u8]>, v: f64) {
    out.extend_from_slice(name);
    out.extend_from_slice(suffix);
    write_labels(out, key, le);
    out.push(b' ');
    write_go(out, v);
    out.push(b'\n');
}

/// Appends `{a="1",b="2"}` for a key, with `le` last when given; nothing for
/// an empty label set.
pub(crate) fn write_labels(out: &mut Vec<u8>, key: &[u8], le: Option<&[u8]>) {
    if key.is_empty() && le.is_none() {
        return;
    }
    out.push(b'{');
    let mut first = true;
    for (n, v) in labels::pairs(key) {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(n);
        out.extend_from_slice(b"=\"");
        write_escaped(out, &v, true);
        out.push(b'"');
    }
    if let Some(le) = le {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(b"le=\"");
        out.extend_from_slice(le);
        out.push(b'"');
    }
    out.push(b'}');
}
