//! `latest`: each live sender's last value, combined.

use super::*;

const LATEST: &str = "
rules:
  - match: 'queue_depth'
    mode: latest
    combine: sum
    source_labels: [instance]
    without: [instance]
    source_ttl: 2m
  - match: 'queue_peak'
    mode: latest
    combine: max
    source_labels: [instance]
    without: [instance]
  - match: '{__name__=~\"queue_(mean|count|last|low)\"}'
    name: per_kind
    mode: latest
    source_labels: [instance]
    without: [instance]
";

fn gauge(name: &str, instance: &str, v: f64) -> String {
    format!("# TYPE {name} gauge\n{name}{{instance=\"{instance}\"}} {v}\n")
}

#[test]
fn latest_sums_each_live_senders_last_value() {
    let w = world(LATEST);
    w.push(&gauge("queue_depth", "a", 5.0));
    w.push(&gauge("queue_depth", "b", 7.0));
    assert_eq!(w.samples(), ["queue_depth 12"]);
    // A sender's new level replaces its old one, however often it pushes.
    for _ in 0..5 {
        w.push(&gauge("queue_depth", "a", 5.0));
    }
    assert_eq!(w.samples(), ["queue_depth 12"]);
    w.push(&gauge("queue_depth", "b", 1.0));
    assert_eq!(w.samples(), ["queue_depth 6"]);
    assert_eq!(w.rule_stats(0).sources.get(), 2);
    // `b` goes silent: past source_ttl its value leaves the output.
    w.clock.advance(Duration::from_secs(90));
    w.push(&gauge("queue_depth", "a", 4.0));
    w.clock.advance(Duration::from_secs(60));
    w.agg.expire();
    assert_eq!(w.samples(), ["queue_depth 4"]);
    assert_eq!(w.rule_stats(0).sources.get(), 1);
    assert_eq!(w.rule_stats(0).sources_expired.get(), 1);
    // A push after b expired counts only a, even before a sweep.
    w.push(&gauge("queue_depth", "c", 3.0));
    assert_eq!(w.samples(), ["queue_depth 7"]);
    // Every source gone: the output goes too.
    w.clock.advance(Duration::from_secs(600));
    w.agg.expire();
    assert!(w.samples().is_empty(), "{:?}", w.samples());
    assert_eq!(w.rule_stats(0).sources.get(), 0);
}

#[test]
fn latest_combines_by_max_min_mean_count_and_last() {
    let w = world(
        "
rules:
  - match: '{__name__=~\"g_.*\"}'
    mode: latest
    combine: max
    source_labels: [instance]
    without: [instance]
",
    );
    w.push(&gauge("g_x", "a", 5.0));
    w.push(&gauge("g_x", "b", 7.0));
    assert_eq!(w.samples(), ["g_x 7"]);
    // The largest one falls: the max is the next largest, not 7 kept.
    w.push(&gauge("g_x", "b", 1.0));
    assert_eq!(w.samples(), ["g_x 5"]);
    for (combine, want) in [
        ("min", "1"),
        ("mean", "3"),
        ("count", "2"),
        ("last", "1"),
        ("sum", "6"),
    ] {
        let w = world(&format!(
            "rules:\n  - match: 'g'\n    mode: latest\n    combine: {combine}\n    source_labels: [instance]\n    without: [instance]\n"
        ));
        w.push(&gauge("g", "a", 5.0));
        w.push(&gauge("g", "b", 7.0));
        w.push(&gauge("g", "b", 1.0));
        assert_eq!(w.samples(), [format!("g {want}")], "combine {combine}");
    }
}

#[test]
fn latest_sources_of_one_push_and_a_snapshot() {
    let w = world(LATEST);
    // Two senders in one push (a relay), then one of them again.
    w.push(
        "# TYPE queue_depth gauge\nqueue_depth{instance=\"a\"} 2\nqueue_depth{instance=\"b\"} 3\n",
    );
    assert_eq!(w.samples(), ["queue_depth 5"]);
    w.push(&gauge("queue_depth", "a", 10.0));
    assert_eq!(w.samples(), ["queue_depth 13"]);
    // The sources go into a snapshot's rows as levels.
    let (rows, _) = w.agg.read_snapshot(|_, sources, now| {
        let rows: Vec<(String, f64, u32)> = sources
            .iter()
            .flat_map(|(_, s)| s.rows(now))
            .map(|r| {
                let Value::Scalar(v) = r.series.value else {
                    panic!("not a level")
                };
                (String::from_utf8_lossy(r.source).into_owned(), v, r.left)
            })
            .collect();
        (rows, now)
    });
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|(_, _, left)| *left == 120), "{rows:?}");
    let mut values: Vec<f64> = rows.iter().map(|r| r.1).collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values, [3.0, 10.0]);
}

#[test]
fn a_latest_output_rewritten_by_the_sweep_keeps_its_rules_ttl() {
    let w = world_with(
        "rules:\n  - match: 'queue_depth'\n    mode: latest\n    source_labels: [instance]\n    without: [instance]\n    source_ttl: 60s\n    ttl: 30s\n",
        Settings {
            series_ttl: Some(Duration::from_secs(1000)),
            ..Settings::default()
        },
    );
    w.push(&gauge("queue_depth", "a", 5.0));
    w.push(&gauge("queue_depth", "b", 7.0));
    w.clock.advance(Duration::from_secs(20));
    // The last push: the output expires 30 s after it (t = 50).
    w.push(&gauge("queue_depth", "a", 4.0));
    w.clock.advance(Duration::from_secs(25));
    w.agg.expire();
    assert_eq!(w.samples(), ["queue_depth 11"]);
    // t = 65: b is silent past its source_ttl and leaves the output; the
    // rewrite is no push, so the output's own ttl (ended at t = 50) holds.
    w.clock.advance(Duration::from_secs(20));
    w.agg.expire();
    w.clock.advance(Duration::from_secs(1));
    w.agg.expire();
    assert!(w.samples().is_empty(), "{:?}", w.samples());
}
