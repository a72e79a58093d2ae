use crate::error::Rejection;
use crate::model::Push;
use proptest::prelude::*;

use super::*;
use crate::decode::Options;
use crate::decode::text::{Dialect, parse};
use crate::model::{Bucket, Histogram, LabelRules, Value};

fn agg() -> Aggregator {
    Aggregator::new(Settings {
        gauge_mode: GaugeMode::Sum,
        max_series: 100,
        ..Default::default()
    })
}

fn push(text: &str) -> Push {
    let rules = LabelRules::default();
    parse(
        text.as_bytes(),
        Dialect::Prometheus,
        &Options {
            labels: &rules,
            gauge_nan_ok: false,
            spend: None,
            windows: None,
        },
    )
    .unwrap()
}

fn render(a: &Aggregator) -> String {
    String::from_utf8(crate::encode::render(a, crate::format::Format::Text)).unwrap()
}

#[test]
fn a_bad_push_changes_nothing() {
    let a = agg();
    a.apply(push("# TYPE c counter\nc 1\n# TYPE g gauge\ng 2\n"))
        .unwrap();
    let before = render(&a);
    // First family fine, second conflicts: nothing of it may land.
    let err = a
        .apply(push("# TYPE c counter\nc 5\n# TYPE g counter\ng 2\n"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "metric g: pushed as counter but stored as gauge"
    );
    assert_eq!(render(&a), before);
    let err = a.apply(push("# TYPE c counter\nc 1\nc 2\n")).unwrap_err();
    assert!(err.to_string().contains("given twice"), "{err}");
    assert_eq!(render(&a), before);
}

#[test]
fn series_limit_refuses_whole_push() {
    let a = Aggregator::new(Settings {
        gauge_mode: GaugeMode::Sum,
        max_series: 3,
        ..Default::default()
    });
    a.apply(push("a{i=\"1\"} 1\na{i=\"2\"} 1\n")).unwrap();
    let err = a.apply(push("a{i=\"1\"} 1\nb 1\nc 1\n")).unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::TooManySeries {
                new: 2,
                stored: 2,
                limit: 3
            }
        ),
        "{err}"
    );
    a.apply(push("a{i=\"1\"} 1\nb 1\n")).unwrap();
    assert_eq!(a.series_count(), 3);
    assert_eq!(a.delete(&[("i".into(), "1".into())]), 1);
    assert_eq!(a.series_count(), 2);
    assert_eq!(a.wipe(), 2);
    assert_eq!(render(&a), "");
}

#[test]
fn gauge_modes_and_created() {
    for (mode, want) in [
        (GaugeMode::Sum, "5"),
        (GaugeMode::Last, "2"),
        (GaugeMode::Max, "3"),
        (GaugeMode::Min, "2"),
    ] {
        let a = Aggregator::new(Settings {
            gauge_mode: mode,
            max_series: 10,
            ..Default::default()
        });
        a.apply(push("# TYPE g gauge\ng 3\n# TYPE x_total counter\nx_total 1\n# TYPE x_created gauge\nx_created 20\n")).unwrap();
        a.apply(push("# TYPE g gauge\ng 2\n# TYPE x_total counter\nx_total 1\n# TYPE x_created gauge\nx_created 10\n")).unwrap();
        let out = render(&a);
        assert!(out.contains(&format!("\ng {want}\n")), "{mode:?}: {out}");
        assert!(out.contains("\nx_total 2\n"), "{out}");
        // The `x_created` family is the counter's creation time, earliest kept.
        assert!(!out.contains("x_created"), "{out}");
        let created = a.read(|families| {
            let (_, x) = families.iter().find(|(n, _)| *n == "x_total").unwrap();
            x.series().next().unwrap().1.created()
        });
        assert_eq!(created, Some(10_000_000_000));
    }
}

fn hist(bounds: &[(f64, f64)], count: f64) -> Histogram {
    Histogram::from_parts(
        bounds
            .iter()
            .map(|&(le, count)| Bucket { le, count })
            .collect(),
        Some(count),
        Some(1.0),
    )
    .unwrap()
}

#[test]
fn histogram_union_counts_from_the_lowest_sure_bucket() {
    let mut a = hist(&[(1.0, 1.0), (5.0, 3.0)], 4.0);
    let b = hist(&[(2.0, 2.0), (10.0, 5.0)], 6.0);
    merge::merge_histogram(&mut a, &b);
    let got: Vec<(f64, f64)> = a.buckets.iter().map(|b| (b.le, b.count)).collect();
    assert_eq!(
        got,
        [
            (1.0, 1.0),
            (2.0, 3.0),
            (5.0, 5.0),
            (10.0, 8.0),
            (f64::INFINITY, 10.0)
        ]
    );
    assert_eq!(a.count, 10.0);
}

/// A random valid histogram: sorted distinct bounds, cumulative counts.
fn arb_hist() -> impl Strategy<Value = Histogram> {
    (
        proptest::collection::btree_set(0u32..20, 0..6),
        proptest::collection::vec(0u32..5, 7),
        0u32..5,
    )
        .prop_map(|(bounds, incs, extra)| {
            let mut cum = 0.0;
            let mut buckets: Vec<(f64, f64)> = bounds
                .into_iter()
                .zip(&incs)
                .map(|(b, &inc)| {
                    cum += inc as f64;
                    (b as f64 / 2.0, cum)
                })
                .collect();
            cum += extra as f64;
            buckets.push((f64::INFINITY, cum));
            hist(&buckets, cum)
        })
}

fn to_push(name: &str, h: &Histogram) -> Push {
    Push::new(vec![crate::model::Family {
        name: name.into(),
        help: String::new(),
        kind: crate::model::Kind::Histogram,
        series: vec![crate::model::Series {
            key: Box::default(),
            value: Value::Histogram(Box::new(h.clone())),
            created: None,
        }],
    }])
}

proptest! {
    #[test]
    fn push_order_does_not_change_the_result(hs in proptest::collection::vec(arb_hist(), 1..6), counters in proptest::collection::vec(0u32..1000, 1..6)) {
        let forward = agg();
        let backward = agg();
        for h in &hs {
            forward.apply(to_push("h", h)).unwrap();
        }
        for h in hs.iter().rev() {
            backward.apply(to_push("h", h)).unwrap();
        }
        for c in &counters {
            forward.apply(push(&format!("# TYPE c counter\nc {c}\n"))).unwrap();
        }
        for c in counters.iter().rev() {
            backward.apply(push(&format!("# TYPE c counter\nc {c}\n"))).unwrap();
        }
        prop_assert_eq!(render(&forward), render(&backward));
    }

    #[test]
    fn merged_histograms_are_cumulative(hs in proptest::collection::vec(arb_hist(), 1..6)) {
        let a = agg();
        for h in &hs {
            a.apply(to_push("h", h)).unwrap();
        }
        let total: f64 = hs.iter().map(|h| h.count).sum();
        a.read(|families| {
            let (_, f) = families[0];
            let (_, s) = f.series().next().unwrap();
            let Value::Histogram(m) = &s.value else { panic!() };
            for w in m.buckets.windows(2) {
                assert!(w[0].le < w[1].le && w[0].count <= w[1].count, "{m:?}");
            }
            let last = m.buckets.last().unwrap();
            assert_eq!(last.le, f64::INFINITY);
            assert_eq!(last.count, m.count);
            assert_eq!(m.count, total);
            // Never more observations at a bound than could be there.
            for b in &m.buckets {
                let most: f64 = hs.iter().map(|h| {
                    h.buckets.iter().find(|x| x.le >= b.le).map_or(h.count, |x| x.count)
                }).sum();
                assert!(b.count <= most, "{b:?} > {most}");
            }
        });
    }
}

/// What the aggregate is charged goes back to zero once everything is
/// gone, however it grew (new series, bucket unions, help set later,
/// renderings kept): no accounting drifts.
#[test]
fn memory_charges_return_to_zero() {
    let memory = crate::memory::Memory::new(usize::MAX);
    let a = Aggregator::new(Settings {
        memory: memory.clone(),
        ..Default::default()
    });
    a.apply(push("c_total{a=\"1\"} 1\nc_total{a=\"2\"} 1\n"))
        .unwrap();
    a.apply(push(
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
    ))
    .unwrap();
    let before = memory.used();
    // Union of bounds: grows; help given later: grows.
    a.apply(push(
        "# HELP h Some help.\n# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"5\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
    ))
    .unwrap();
    assert!(memory.used() > before);
    let _ = render(&a);
    a.apply(push("c_total{a=\"1\"} 1\n")).unwrap();
    let _ = render(&a);
    assert_eq!(a.delete(&[("a".into(), "2".into())]), 1);
    assert!(memory.used() > 0);
    a.wipe();
    assert_eq!(memory.used(), 0, "charges left after everything went");
}
