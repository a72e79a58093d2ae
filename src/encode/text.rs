//! Prometheus text format 0.0.4: what the Pushgateway and the Go gateway
//! serve, and what conformance cases compare byte for byte.

use super::out::{Out, write_escaped};
use crate::aggregate::FamilyView;
use crate::model::Value;
use crate::model::float::write_go;

/// Appends one family in text format 0.0.4.
pub(super) fn render_family(name: &str, f: &FamilyView, to: &mut impl Out) {
    {
        let name = name.as_bytes();
        let out = to.buf();
        write_help(out, name, &f.help, false);
        out.extend_from_slice(b"# TYPE ");
        out.extend_from_slice(name);
        out.push(b' ');
        out.extend_from_slice(f.kind.as_str().as_bytes());
        out.push(b'\n');
        let samples = Samples {
            name,
            scalar_suffix: b"",
            count_first: false,
            number: write_go,
        };
        let mut le = Vec::with_capacity(24);
        for (key, s) in f.series() {
            samples.write(to.buf(), key, &s.value, &mut le);
            to.series_done();
        }
    }
}

/// `# HELP <name> <help>`, unless there is no help; `quote` escapes double
/// quotes too (OpenMetrics does).
pub(super) fn write_help(out: &mut Vec<u8>, name: &[u8], help: &str, quote: bool) {
    if help.is_empty() {
        return;
    }
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(name);
    out.push(b' ');
    write_escaped(out, help.as_bytes(), quote);
    out.push(b'\n');
}

/// How a text format writes a series' sample lines: under which name, with
/// which suffix on a counter's or gauge's one sample, `_count` before or
/// after `_sum`, and numbers spelled by `number` (each format has its own;
/// a generic, so the writer is inlined on this hot path).
pub(super) struct Samples<'a, F> {
    pub(super) name: &'a [u8],
    pub(super) scalar_suffix: &'a [u8],
    pub(super) count_first: bool,
    pub(super) number: F,
}

impl<F: Fn(&mut Vec<u8>, f64)> Samples<'_, F> {
    /// The sample lines of the series `key` holding `value`; `le` is
    /// scratch for bucket bounds.
    pub(super) fn write(&self, out: &mut Vec<u8>, key: &[u8], value: &Value, le: &mut Vec<u8>) {
        let (count, sum) = match value {
            Value::Scalar(v) => {
                self.line(out, self.scalar_suffix, key, None, *v);
                return;
            }
            Value::Histogram(h) => {
                for b in &h.buckets {
                    le.clear();
                    (self.number)(le, b.le);
                    self.line(out, b"_bucket", key, Some(le), b.count);
                }
                (h.count, h.sum)
            }
            // The text formats have no native buckets: a classic-compatible
            // view, as client_golang writes native-only histograms.
            Value::Native(h) => {
                self.line(out, b"_bucket", key, Some(b"+Inf"), h.count);
                (h.count, h.sum)
            }
            Value::Summary { count, sum } => (*count, *sum),
        };
        if self.count_first {
            self.line(out, b"_count", key, None, count);
            self.line(out, b"_sum", key, None, sum);
        } else {
            self.line(out, b"_sum", key, None, sum);
            self.line(out, b"_count", key, None, count);
        }
    }

    /// One sample line, `<name><suffix>{labels} <value>`.
    pub(super) fn line(
        &self,
        out: &mut Vec<u8>,
        suffix: &[u8],
        key: &[u8],
        le: Option<&[u8]>,
        v: f64,
    ) {
        out.extend_from_slice(self.name);
        out.extend_from_slice(suffix);
        write_labels(out, key, le);
        out.push(b' ');
        (self.number)(out, v);
        out.push(b'\n');
    }
}

/// The bytes that end a run of plain bytes in a stored label value: the
/// key's separator (0) and what the text format escapes. A table lookup
/// per byte instead of four comparisons: label values are most of a
/// scrape's bytes.
static VALUE_STOP: [bool; 256] = {
    let mut t = [false; 256];
    t[0] = true;
    t[b'\\' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\n' as usize] = true;
    t
};

/// Appends `from[..n]`. Names and values are mostly shorter than 16 bytes:
/// when `from` has 16, all 16 are appended and the excess cut off again (a
/// fixed-size copy the compiler inlines, where a call to memcpy cost more
/// than the copy).
#[inline]
fn copy_short(out: &mut Vec<u8>, from: &[u8], n: usize) {
    match from.first_chunk::<16>() {
        Some(chunk) if n <= 16 => {
            let len = out.len();
            out.extend_from_slice(chunk);
            out.truncate(len + n);
        }
        _ => out.extend_from_slice(&from[..n]),
    }
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
    let mut rest = key;
    let mut first = true;
    while !rest.is_empty() {
        if !first {
            out.push(b',');
        }
        first = false;
        // Names are a few bytes: a plain scan beats memchr's SIMD set-up,
        // which took 40% of rendering when used here.
        let name_len = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        copy_short(out, rest, name_len);
        out.extend_from_slice(b"=\"");
        rest = rest.get(name_len + 1..).unwrap_or_default();
        loop {
            let run = rest
                .iter()
                .position(|&c| VALUE_STOP[usize::from(c)])
                .unwrap_or(rest.len());
            copy_short(out, rest, run);
            rest = &rest[run..];
            match rest {
                [] => break,
                // A NUL in a value is stored as 0x00 0x01; a lone 0x00 ends it.
                [0, 1, tail @ ..] => {
                    out.push(0);
                    rest = tail;
                }
                [0, tail @ ..] => {
                    rest = tail;
                    break;
                }
                [b'\\', tail @ ..] => {
                    out.extend_from_slice(b"\\\\");
                    rest = tail;
                }
                [b'"', tail @ ..] => {
                    out.extend_from_slice(b"\\\"");
                    rest = tail;
                }
                [_, tail @ ..] => {
                    out.extend_from_slice(b"\\n");
                    rest = tail;
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
    use crate::encode::out::write_escaped;
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
