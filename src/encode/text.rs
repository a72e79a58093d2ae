//! Prometheus text format 0.0.4: what the Pushgateway and the Go gateway
//! serve, and what conformance cases compare byte for byte.

use super::float::write_go;
use super::write_escaped;
use crate::aggregate::StoredFamily;
use crate::model::Value;

/// Renderings below this are copied together into one chunk; larger ones
/// are sent as they are kept.
const SHARED_CHUNK: usize = 64 << 10;

/// The families in text format 0.0.4 as chunks: each family's kept
/// rendering (made now if none is kept), small ones copied together.
/// Returns the chunks and how many bytes were copied.
pub fn chunks(
    families: &[(&str, &StoredFamily)],
    kept: &mut super::FamilyRenderings,
) -> (Vec<bytes::Bytes>, usize) {
    let mut chunks = Vec::new();
    let mut small: Vec<u8> = Vec::new();
    let mut copied = 0;
    kept.walk(families, |text| {
        if text.len() < SHARED_CHUNK {
            small.extend_from_slice(text);
            if small.len() >= SHARED_CHUNK {
                copied += small.len();
                chunks.push(std::mem::take(&mut small).into());
            }
        } else {
            if !small.is_empty() {
                copied += small.len();
                chunks.push(std::mem::take(&mut small).into());
            }
            chunks.push(text.clone());
        }
    });
    if !small.is_empty() {
        copied += small.len();
        chunks.push(small.into());
    }
    (chunks, copied)
}

/// Appends one family in text format 0.0.4.
pub(super) fn render_family(name: &str, f: &StoredFamily, out: &mut Vec<u8>) {
    {
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
    write_sample(out, name, suffix, key, le, v, write_go);
}

/// One sample line, `<name><suffix>{labels} <value>`, the value written by
/// `number` (each format has its own spelling of numbers; a generic, so the
/// writer is inlined on this hot path).
pub(super) fn write_sample(
    out: &mut Vec<u8>,
    name: &[u8],
    suffix: &[u8],
    key: &[u8],
    le: Option<&[u8]>,
    v: f64,
    number: impl Fn(&mut Vec<u8>, f64),
) {
    out.extend_from_slice(name);
    out.extend_from_slice(suffix);
    write_labels(out, key, le);
    out.push(b' ');
    number(out, v);
    out.push(b'\n');
}

/// Appends `{a="1",b="2"}` for a key, with `le` last when given; nothing for
/// an empty label set.
pub(crate) fn write_labels(out: &mut Vec<u8>, key: &[u8], le: Option<&[u8]>) {
    if key.is_empty() && le.is_none() {
        return;
    }
    out.push(b'{');
    // One pass over the key, copying runs of plain bytes: the labels are
    // most of a scrape's bytes, and walking them with `labels::pairs` then
    // escaping scanned every value twice.
    let mut i = 0;
    while i < key.len() {
        if i > 0 {
            out.push(b',');
        }
        // Names are a few bytes: a plain scan beats memchr's SIMD set-up,
        // which took 40% of rendering when used here.
        let name_end = key[i..]
            .iter()
            .position(|&c| c == 0)
            .map_or(key.len(), |n| i + n);
        out.extend_from_slice(&key[i..name_end]);
        out.extend_from_slice(b"=\"");
        i = name_end + 1;
        while i < key.len() {
            let run = key[i..]
                .iter()
                .position(|&c| matches!(c, 0 | b'\\' | b'"' | b'\n'))
                .unwrap_or(key.len() - i);
            out.extend_from_slice(&key[i..i + run]);
            i += run;
            match key.get(i) {
                None => break,
                // A NUL in a value is stored as 0x00 0x01; a lone 0x00 ends it.
                Some(0) if key.get(i + 1) == Some(&1) => {
                    out.push(0);
                    i += 2;
                }
                Some(0) => {
                    i += 1;
                    break;
                }
                Some(b'\\') => {
                    out.extend_from_slice(b"\\\\");
                    i += 1;
                }
                Some(b'"') => {
                    out.extend_from_slice(b"\\\"");
                    i += 1;
                }
                Some(_) => {
                    out.extend_from_slice(b"\\n");
                    i += 1;
                }
            }
        }
        out.push(b'"');
    }
    if let Some(le) = le {
        if !key.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(b"le=\"");
        out.extend_from_slice(le);
        out.push(b'"');
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::write_labels;
    use crate::encode::write_escaped;
    use crate::model::labels::{LabelRules, pairs};

    /// The straightforward rendering: pairs, then escapes.
    fn reference(key: &[u8], le: Option<&[u8]>) -> Vec<u8> {
        let mut parts: Vec<Vec<u8>> = pairs(key)
            .map(|(n, v)| {
                let mut p = n.to_vec();
                p.extend_from_slice(b"=\"");
                write_escaped(&mut p, &v, true);
                p.push(b'"');
                p
            })
            .collect();
        if let Some(le) = le {
            parts.push([b"le=\"".as_slice(), le, b"\""].concat());
        }
        if parts.is_empty() {
            return Vec::new();
        }
        [b"{".as_slice(), &parts.join(&b","[..]), b"}"].concat()
    }

    proptest::proptest! {
        #[test]
        fn one_pass_rendering_matches_the_reference(
            labels in proptest::collection::btree_map("[a-z][a-z0-9_]{0,6}", "(\\PC|[\\x00\\\\\"\\n]){0,12}", 0..5),
            le in proptest::option::of("[0-9.]{1,4}"),
        ) {
            let mut l: Vec<(String, String)> = labels.into_iter().collect();
            let mut key = Vec::new();
            LabelRules::default().write_key(crate::model::Kind::Gauge, &mut l, &mut key).unwrap();
            let mut fast = Vec::new();
            write_labels(&mut fast, &key, le.as_deref().map(str::as_bytes));
            proptest::prop_assert_eq!(fast, reference(&key, le.as_deref().map(str::as_bytes)));
        }
    }
}
