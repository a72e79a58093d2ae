//! The names a family is known by in the scrape formats, so that families
//! whose names would clash there are never stored side by side.
//!
//! A family writes samples under names derived from its own (`x_bucket`,
//! `x_sum`...), and OpenMetrics names a counter's family after its base
//! (`x` for `x_total`, with samples `x_total` and `x_created`). Two families
//! that share any such name would make a scrape that strict parsers refuse
//! (and Prometheus may read as duplicate series): a histogram `x` beside a
//! gauge `x_sum`, a counter `x` beside a counter `x_total`, a gauge
//! `x_created` beside a counter `x`.

use super::kind::Kind;

/// Every name a family of `kind` called `name` claims: its own, the sample
/// names it writes in text 0.0.4 and OpenMetrics, and its OpenMetrics
/// family name. Two families clash when their claims meet.
pub fn claimed(name: &str, kind: Kind) -> Vec<String> {
    let with = |suffixes: &[&str]| -> Vec<String> {
        std::iter::once(name.to_string())
            .chain(suffixes.iter().map(|s| format!("{name}{s}")))
            .collect()
    };
    match kind {
        Kind::Gauge | Kind::Untyped => vec![name.to_string()],
        Kind::Histogram => with(&["_bucket", "_sum", "_count", "_created"]),
        Kind::Summary => with(&["_sum", "_count", "_created"]),
        Kind::Counter => {
            // OpenMetrics writes the family as `base`, samples `base_total`
            // and `base_created`.
            let base = name.strip_suffix("_total").unwrap_or(name);
            let mut names = vec![name.to_string()];
            for n in [
                base.to_string(),
                format!("{base}_total"),
                format!("{base}_created"),
            ] {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
            names
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clash(a: (&str, Kind), b: (&str, Kind)) -> bool {
        let ca = claimed(a.0, a.1);
        claimed(b.0, b.1).iter().any(|n| ca.contains(n))
    }

    #[test]
    fn clashes() {
        use Kind::*;
        assert!(clash(("x", Histogram), ("x_bucket", Gauge)));
        assert!(clash(("x", Histogram), ("x_sum", Counter)));
        assert!(clash(("x", Summary), ("x_count", Untyped)));
        assert!(clash(("x", Counter), ("x_total", Counter)));
        assert!(clash(("x_total", Counter), ("x", Gauge)));
        assert!(clash(("x_total", Counter), ("x_created", Gauge)));
        assert!(clash(("x", Counter), ("x_created", Gauge)));
        assert!(clash(("x", Gauge), ("x", Counter)));
        assert!(!clash(("x", Gauge), ("x_total", Gauge)));
        assert!(!clash(("x", Histogram), ("x_max", Gauge)));
        assert!(!clash(("x_total", Counter), ("y_total", Counter)));
        assert_eq!(claimed("a_total", Counter), ["a_total", "a", "a_created"]);
    }
}
