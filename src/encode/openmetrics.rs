//! OpenMetrics text 1.0.0, as client_golang's encoder writes it: counters as
//! a family `foo` with samples `foo_total` (and `foo_created`), numbers with
//! `.0` after integers, `# EOF` at the end.

use super::text::{Samples, write_help};
use crate::aggregate::FamilyView;
use crate::model::float::write_openmetrics;
use crate::model::{Kind, created_seconds};

/// Appends one family in OpenMetrics text (the `# EOF` after the last
/// family is the caller's).
pub(super) fn render_family(name: &str, f: &FamilyView, to: &mut impl super::out::Out) {
    {
        let out = to.buf();
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
        write_help(out, base, &f.help, true);
        let samples = Samples {
            name: base,
            scalar_suffix: if f.kind == Kind::Counter {
                b"_total"
            } else {
                b""
            },
            count_first: true,
            number: write_openmetrics,
        };
        let mut le = Vec::with_capacity(24);
        for (key, s) in f.series() {
            let out = to.buf();
            samples.write(out, key, &s.value, &mut le);
            if let Some(c) = s.created() {
                samples.line(out, b"_created", key, None, created_seconds(c));
            }
            to.series_done();
        }
    }
}
