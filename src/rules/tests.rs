//! Exact outputs of rules: tables of pushes and scrapes, through the real
//! decoder, router and aggregator.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::aggregate::{Aggregator, Settings};
use crate::clock::Clock;
use crate::decode::Options;
use crate::decode::text::{Dialect, parse as parse_text};
use crate::error::Rejection;
use crate::model::{LabelRules, NativeHistogram, Push, Value};

struct World {
    agg: Aggregator,
    rules: RuleSet,
    clock: Clock,
}

fn world(yaml: &str) -> World {
    world_with(yaml, Settings::default())
}

fn world_with(yaml: &str, settings: Settings) -> World {
    let clock = Clock::manual();
    let rules = parse("rules.yml", yaml, |_| Arc::new(RuleStats::default())).unwrap();
    World {
        agg: Aggregator::new(Settings {
            clock: clock.clone(),
            ..settings
        }),
        rules: RuleSet::new(rules),
        clock,
    }
}

fn decode(text: &str, path: &[(&str, &str)]) -> Push {
    let labels = LabelRules::new(
        path.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        &[],
        Default::default(),
    )
    .unwrap();
    parse_text(
        text.as_bytes(),
        Dialect::Prometheus,
        &Options {
            labels: &labels,
            gauge_nan_ok: true,
            spend: None,
            windows: None,
        },
    )
    .unwrap()
}

impl World {
    fn push_push(&self, mut push: Push) -> Result<(), Rejection> {
        let routes = self.rules.route(&mut push);
        self.agg
            .apply_routed(push, &routes, &self.rules, || Ok(()))
            .map(|_| ())
    }

    fn push_at(&self, text: &str, path: &[(&str, &str)]) {
        self.push_push(decode(text, path)).unwrap();
    }

    fn push(&self, text: &str) {
        self.push_at(text, &[]);
    }

    /// The scrape's sample lines, `# ` lines left out.
    fn samples(&self) -> Vec<String> {
        crate::encode::sample_lines(&self.agg)
    }

    fn rule_stats(&self, i: usize) -> &RuleStats {
        &self.rules.rules()[i].stats
    }
}

const TOTAL: &str = "
rules:
  - match: '{__name__=~\"jobs_total|latency.*|rpc.*\"}'
    mode: total
    source_labels: [instance]
    without: [instance]
";

fn counter(instance: &str, v: f64) -> String {
    format!("# TYPE jobs_total counter\njobs_total{{instance=\"{instance}\"}} {v}\n")
}

#[test]
fn one_cumulative_sender_counts_its_last_value() {
    let w = world(TOTAL);
    for v in [1.0, 2.0, 3.0] {
        w.push(&counter("a", v));
    }
    assert_eq!(w.samples(), ["jobs_total 3"]);
}

#[test]
fn two_senders_interleaved_add_up() {
    let w = world(TOTAL);
    for (i, v) in [("a", 1.0), ("b", 10.0), ("a", 2.0), ("b", 15.0), ("a", 5.0)] {
        w.push(&counter(i, v));
    }
    assert_eq!(w.samples(), ["jobs_total 20"]);
    assert_eq!(w.rule_stats(0).sources.get(), 2);
}

#[test]
fn a_restart_counts_the_new_run_in_full() {
    let w = world(TOTAL);
    for v in [5.0, 8.0, 2.0, 4.0] {
        w.push(&counter("a", v));
    }
    // 8 before the restart, 4 after it.
    assert_eq!(w.samples(), ["jobs_total 12"]);
    assert_eq!(w.rule_stats(0).resets.get(), 1);
}

#[test]
fn a_later_creation_time_is_a_restart_even_when_the_value_grew() {
    let w = world(TOTAL);
    let push = |v: f64, created: f64| {
        w.push(&format!(
            "# TYPE jobs_total counter\njobs_total{{instance=\"a\"}} {v}\n# TYPE jobs_created gauge\njobs_created{{instance=\"a\"}} {created}\n"
        ))
    };
    push(5.0, 1000.0);
    push(6.0, 1000.0);
    // Restarted (a new creation time) and counted past 6 already.
    push(9.0, 2000.0);
    assert!(
        w.samples().contains(&"jobs_total 15".to_string()),
        "{:?}",
        w.samples()
    );
}

#[test]
fn a_sender_pushing_once_is_counted() {
    let w = world(TOTAL);
    w.push(&counter("lambda-1", 7.0));
    assert_eq!(w.samples(), ["jobs_total 7"]);
}

#[test]
fn an_expired_source_is_counted_anew_and_the_output_never_drops() {
    let w = world(&TOTAL.replace(
        "without: [instance]",
        "without: [instance]\n    source_ttl: 1m",
    ));
    w.push(&counter("a", 10.0));
    w.push(&counter("b", 1.0));
    w.clock.advance(Duration::from_secs(45));
    w.push(&counter("b", 2.0));
    w.clock.advance(Duration::from_secs(30));
    w.agg.expire();
    // a was forgotten; what it gave stays.
    assert_eq!(w.rule_stats(0).sources_expired.get(), 1);
    assert_eq!(w.rule_stats(0).sources.get(), 1);
    assert_eq!(w.samples(), ["jobs_total 12"]);
    // Back with a new run: counted as a new source, in full.
    w.push(&counter("a", 3.0));
    assert_eq!(w.samples(), ["jobs_total 15"]);
}

#[test]
fn classic_histograms_with_different_buckets_in_total() {
    let w = world(TOTAL);
    let hist = |instance: &str, buckets: &[(&str, f64)], count: f64, sum: f64| {
        let mut t = String::from("# TYPE latency histogram\n");
        for (le, c) in buckets {
            t += &format!("latency_bucket{{instance=\"{instance}\",le=\"{le}\"}} {c}\n");
        }
        t += &format!(
            "latency_sum{{instance=\"{instance}\"}} {sum}\nlatency_count{{instance=\"{instance}\"}} {count}\n"
        );
        t
    };
    w.push(&hist("a", &[("1", 1.0), ("+Inf", 2.0)], 2.0, 3.0));
    w.push(&hist("b", &[("0.5", 1.0), ("+Inf", 1.0)], 1.0, 0.25));
    w.push(&hist("a", &[("1", 3.0), ("+Inf", 5.0)], 5.0, 9.0));
    w.push(&hist("b", &[("0.5", 1.0), ("+Inf", 4.0)], 4.0, 6.25));
    // a: 3 ≤ 1, 5 in all, sum 9; b: 1 ≤ 0.5, 4 in all, sum 6.25.
    assert_eq!(
        w.samples(),
        [
            "latency_bucket{le=\"0.5\"} 1",
            "latency_bucket{le=\"1\"} 4",
            "latency_bucket{le=\"+Inf\"} 9",
            "latency_sum 15.25",
            "latency_count 9",
        ]
    );
    // A restart of b (its count went down) counts its new run in full.
    w.push(&hist("b", &[("0.5", 0.0), ("+Inf", 1.0)], 1.0, 2.0));
    assert!(w.samples().contains(&"latency_count 10".to_string()));
}

fn native(count: f64, sum: f64, positive: Vec<(i32, f64)>) -> Value {
    Value::Native(Box::new(NativeHistogram {
        schema: 0,
        zero_threshold: 0.0,
        zero_count: 0.0,
        count,
        sum,
        positive,
        negative: Vec::new(),
    }))
}

fn native_push(instance: &str, value: Value) -> Push {
    let mut key = Vec::new();
    LabelRules::default()
        .write_key(
            crate::model::Kind::Histogram,
            &mut [("instance", instance)],
            &mut key,
        )
        .unwrap();
    Push::new(vec![crate::model::Family {
        name: "rpc".into(),
        help: String::new(),
        kind: crate::model::Kind::Histogram,
        series: vec![crate::model::Series {
            key: key.into(),
            value,
            created: None,
        }],
    }])
}

#[test]
fn native_histograms_in_total() {
    let w = world(TOTAL);
    w.push_push(native_push("a", native(2.0, 3.0, vec![(1, 2.0)])))
        .unwrap();
    w.push_push(native_push("a", native(5.0, 7.0, vec![(1, 3.0), (2, 2.0)])))
        .unwrap();
    w.push_push(native_push("b", native(1.0, 1.0, vec![(2, 1.0)])))
        .unwrap();
    let out = w.agg.read(|families| {
        let (_, f) = families[0];
        f.series().next().map(|(_, s)| s.value.clone())
    });
    assert_eq!(out, Some(native(6.0, 8.0, vec![(1, 3.0), (2, 3.0)])));
}

#[test]
fn summaries_in_total_keep_sum_and_count() {
    let w = world(
        "rules:\n  - match: '{__name__=\"rpc_seconds\"}'\n    mode: total\n    without: [instance]\n",
    );
    let s = |i: &str, c: f64, sum: f64| {
        format!(
            "# TYPE rpc_seconds summary\nrpc_seconds{{instance=\"{i}\",quantile=\"0.5\"}} 1\nrpc_seconds_sum{{instance=\"{i}\"}} {sum}\nrpc_seconds_count{{instance=\"{i}\"}} {c}\n"
        )
    };
    w.push(&s("a", 2.0, 4.0));
    w.push(&s("a", 3.0, 5.0));
    w.push(&s("b", 1.0, 1.5));
    assert_eq!(w.samples(), ["rpc_seconds_sum 6.5", "rpc_seconds_count 4"]);
}

#[test]
fn gauges_in_each_mode() {
    for (mode, want) in [("sum", "6"), ("last", "1"), ("max", "3"), ("min", "1")] {
        let w = world(&format!(
            "rules:\n  - match: 'temp'\n    mode: {mode}\n    without: [instance]\n"
        ));
        for (i, v) in [("a", 2.0), ("b", 3.0), ("a", 1.0)] {
            w.push(&format!(
                "# TYPE temp gauge\ntemp{{instance=\"{i}\"}} {v}\n"
            ));
        }
        assert_eq!(w.samples(), [format!("temp {want}")], "mode {mode}");
    }
}

#[test]
fn without_merges_many_sources_into_one_series_in_one_push() {
    let w = world("rules:\n  - match: 'hits_total'\n    without: [user_id, pod]\n");
    let mut text = String::from("# TYPE hits_total counter\n");
    for u in 0..100 {
        text += &format!(
            "hits_total{{route=\"/a\",user_id=\"{u}\",pod=\"p{}\"}} 1\n",
            u % 3
        );
    }
    text += "hits_total{route=\"/b\",user_id=\"7\"} 2\n";
    w.push(&text);
    w.push(&text);
    assert_eq!(
        w.samples(),
        ["hits_total{route=\"/a\"} 200", "hits_total{route=\"/b\"} 4"]
    );
}

#[test]
fn by_keeps_only_the_named_labels() {
    let w = world("rules:\n  - match: 'hits_total'\n    by: [route]\n");
    w.push("# TYPE hits_total counter\nhits_total{route=\"/a\",user=\"1\",code=\"200\"} 1\nhits_total{route=\"/a\",user=\"2\",code=\"500\"} 2\n");
    assert_eq!(w.samples(), ["hits_total{route=\"/a\"} 3"]);
}

#[test]
fn the_first_matching_rule_applies() {
    let w = world(
        "
rules:
  - match: 'temp{room=\"lab\"}'
    mode: max
  - match: '{__name__=~\"te.*\"}'
    mode: min
",
    );
    for v in [5.0, 9.0, 7.0] {
        w.push(&format!(
            "# TYPE temp gauge\ntemp{{room=\"lab\"}} {v}\ntemp{{room=\"hall\"}} {v}\n"
        ));
    }
    assert_eq!(
        w.samples(),
        ["temp{room=\"hall\"} 5", "temp{room=\"lab\"} 9"]
    );
}

#[test]
fn series_no_rule_matches_keep_the_defaults() {
    let w = world("rules:\n  - match: 'other'\n    mode: last\n");
    w.push("# TYPE jobs_total counter\njobs_total 1\n# TYPE temp gauge\ntemp 2\n");
    w.push("# TYPE jobs_total counter\njobs_total 1\n# TYPE temp gauge\ntemp 2\n");
    assert_eq!(w.samples(), ["jobs_total 2", "temp 4"]);
}

#[test]
fn a_mode_that_does_not_fit_the_type_is_passed_over() {
    let w = world(
        "rules:\n  - match: '{job=\"x\"}'\n    mode: max\n  - match: '{job=\"x\"}'\n    mode: total\n",
    );
    for v in [1.0, 4.0] {
        w.push_at(
            &format!("# TYPE jobs_total counter\njobs_total {v}\n# TYPE temp gauge\ntemp {v}\n"),
            &[("job", "x")],
        );
    }
    // The counter is cumulative (total), the gauge kept at its max.
    assert_eq!(
        w.samples(),
        ["jobs_total{job=\"x\"} 4", "temp{job=\"x\"} 4"]
    );
}

#[test]
fn the_grouping_key_names_the_source() {
    let w = world(
        "rules:\n  - match: '{job=\"batch\"}'\n    mode: total\n    source_labels: [instance]\n    without: [instance]\n",
    );
    w.push_at(
        &counter("", 3.0).replace("{instance=\"\"}", ""),
        &[("job", "batch"), ("instance", "h1")],
    );
    w.push_at(
        &counter("", 5.0).replace("{instance=\"\"}", ""),
        &[("job", "batch"), ("instance", "h2")],
    );
    w.push_at(
        &counter("", 4.0).replace("{instance=\"\"}", ""),
        &[("job", "batch"), ("instance", "h1")],
    );
    assert_eq!(w.samples(), ["jobs_total{job=\"batch\"} 9"]);
}

#[test]
fn a_rule_ttl_outlives_or_undercuts_the_default() {
    let w = world_with(
        "rules:\n  - match: 'short'\n    ttl: 10s\n",
        Settings {
            series_ttl: Some(Duration::from_secs(60)),
            ..Default::default()
        },
    );
    w.push("# TYPE short gauge\nshort 1\n# TYPE long gauge\nlong 1\n");
    w.clock.advance(Duration::from_secs(11));
    w.agg.expire();
    assert_eq!(w.samples(), ["long 1"]);
    w.clock.advance(Duration::from_secs(50));
    w.agg.expire();
    assert!(w.samples().is_empty());
}

#[test]
fn a_refused_push_leaves_sources_as_they_were() {
    let w = world_with(
        TOTAL,
        Settings {
            max_series: 1,
            ..Default::default()
        },
    );
    w.push(&counter("a", 5.0));
    // Refused whole: the second family is one series too many.
    let err = w
        .push_push(decode(
            &(counter("a", 9.0) + "# TYPE other counter\nother 1\n"),
            &[],
        ))
        .unwrap_err();
    assert!(matches!(err, Rejection::TooManySeries { .. }), "{err}");
    w.push(&counter("a", 6.0));
    assert_eq!(w.samples(), ["jobs_total 6"]);
}

#[test]
fn nan_is_refused_where_it_would_be_added() {
    let w = world("rules:\n  - match: 'temp'\n    mode: last\n");
    w.push("# TYPE temp gauge\ntemp NaN\n# TYPE level gauge\nlevel 1\n");
    let err = w
        .push_push(decode("# TYPE level gauge\nlevel NaN\n", &[]))
        .unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");
}

#[test]
fn a_hundred_regex_rules_route_by_family_once() {
    let mut yaml = String::from("rules:\n");
    for i in 0..100 {
        yaml += &format!("  - match: '{{__name__=~\"app{i}_.*\"}}'\n    mode: total\n");
    }
    let w = world(&yaml);
    w.push("# TYPE app42_x_total counter\napp42_x_total 3\n");
    w.push("# TYPE app42_x_total counter\napp42_x_total 4\n");
    assert_eq!(w.samples(), ["app42_x_total 4"]);
    assert_eq!(w.rules.memo.read().len(), 1);
}

mod property {
    use proptest::prelude::*;

    use super::*;

    /// One sender's runs (process lifetimes), each a list of increments
    /// it counts and pushes after each; a new run starts from zero with a
    /// later creation time.
    fn senders() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
        prop::collection::vec(
            prop::collection::vec(prop::collection::vec(0u8..5, 1..6), 1..4),
            1..4,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Senders pushing running totals, interleaved in any order, with
        /// restarts: after every push the output never went down, and at
        /// the end it is everything they counted.
        #[test]
        fn total_counts_exactly_what_senders_counted(senders in senders(), order in prop::collection::vec(0usize..4, 0..64)) {
            let w = world(TOTAL);
            // Each sender's pushes in its own order: (instance, value, created).
            let mut queues: Vec<std::collections::VecDeque<(f64, f64)>> = senders
                .iter()
                .map(|runs| {
                    let mut q = std::collections::VecDeque::new();
                    for (r, run) in runs.iter().enumerate() {
                        let mut total = 0.0;
                        for inc in run {
                            total += f64::from(*inc);
                            q.push_back((total, 1000.0 + r as f64));
                        }
                    }
                    q
                })
                .collect();
            let truth: f64 = senders.iter().flatten().flatten().map(|&i| f64::from(i)).sum();
            let mut last = 0.0;
            let mut pick = order.into_iter().chain(std::iter::repeat(0));
            while queues.iter().any(|q| !q.is_empty()) {
                let mut s = pick.next().unwrap_or(0) % queues.len();
                while queues[s].is_empty() {
                    s = (s + 1) % queues.len();
                }
                let (v, created) = queues[s].pop_front().unwrap();
                w.push(&format!(
                    "# TYPE jobs_total counter\njobs_total{{instance=\"s{s}\"}} {v}\n# TYPE jobs_created gauge\njobs_created{{instance=\"s{s}\"}} {created}\n"
                ));
                let now: f64 = w.samples()[0].strip_prefix("jobs_total ").unwrap().parse().unwrap();
                prop_assert!(now >= last, "the output went down: {last} -> {now}");
                last = now;
            }
            prop_assert_eq!(last, truth);
        }
    }
}

mod file;
mod latest;
