use prost::Message;

use super::*;
use crate::aggregate::{Aggregator, Settings};
use crate::decode::Options as DecodeOptions;
use crate::decode::text::{Dialect, parse};
use crate::model::{Family as PushFamily, LabelRules, Push, Series};
use crate::remote_write_pb::io::prometheus::write::v2 as w2;
use crate::remote_write_pb::prometheus as w1;

const TS: i64 = 1_700_000_000_000;

fn agg() -> Aggregator {
    Aggregator::new(Settings {
        journal: true,
        ..Default::default()
    })
}

fn push(a: &Aggregator, text: &str) {
    let rules = LabelRules::default();
    let p = parse(
        text.as_bytes(),
        Dialect::Prometheus,
        &DecodeOptions {
            labels: &rules,
            gauge_nan_ok: false,
            spend: None,
            windows: None,
        },
    )
    .unwrap();
    a.apply(p).unwrap();
}

fn native() -> NativeHistogram {
    NativeHistogram {
        schema: 1,
        zero_threshold: 0.001,
        zero_count: 2.0,
        count: 12.0,
        sum: 30.5,
        positive: vec![(-1, 3.0), (0, 4.0), (3, 1.0)],
        negative: vec![(2, 2.0)],
    }
}

fn push_native(a: &Aggregator, h: NativeHistogram) {
    let mut key = Vec::new();
    LabelRules::default()
        .write_key(Kind::Histogram, &mut [("job", "n")], &mut key)
        .unwrap();
    a.apply(Push::new(vec![PushFamily {
        name: "lat".into(),
        help: "latency".into(),
        kind: Kind::Histogram,
        series: vec![Series {
            key: key.into(),
            value: Value::Native(Box::new(h)),
            created: None,
        }],
    }]))
    .unwrap();
}

fn opts(protocol: Protocol, max_samples: usize) -> Options<'static> {
    Options {
        protocol,
        max_samples,
        replica: Some(("gateway_replica", "r1")),
        timestamp_ms: TS,
    }
}

fn encoded(a: &Aggregator, protocol: Protocol, max_samples: usize) -> Encoded {
    let (dropped, _) = a.take_dropped();
    // As if every series had been sent before: no zeros first.
    a.read(|families| {
        let sent = series_ids(families);
        encode(families, &dropped, &sent, opts(protocol, max_samples))
    })
}

fn v1(batch: &Batch) -> w1::WriteRequest {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&batch.body)
        .unwrap();
    w1::WriteRequest::decode(&raw[..]).unwrap()
}

fn v2(batch: &Batch) -> w2::Request {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&batch.body)
        .unwrap();
    w2::Request::decode(&raw[..]).unwrap()
}

/// A 1.0 series as `name{a="1",...}` (labels other than `__name__`, in
/// their order) and its samples.
fn show1(ts: &w1::TimeSeries) -> (String, Vec<(f64, i64)>) {
    let mut name = String::new();
    let mut rest = Vec::new();
    for l in &ts.labels {
        if l.name == "__name__" {
            name = l.value.clone();
        } else {
            rest.push(format!("{}={:?}", l.name, l.value));
        }
    }
    let names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "labels sorted by name");
    (
        format!("{name}{{{}}}", rest.join(",")),
        ts.samples.iter().map(|s| (s.value, s.timestamp)).collect(),
    )
}

#[test]
fn every_type_as_prometheus_stores_it() {
    let a = agg();
    push(
        &a,
        "# HELP c_total Requests.\n# TYPE c_total counter\nc_total{path=\"/a\",Zone=\"x\"} 3\n\
         # TYPE g gauge\ng 2.5\n\
         # TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 4\nh_sum 7\nh_count 4\n\
         # TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 9\ns_count 3\n\
         # TYPE u untyped\nu 1\n",
    );
    let e = encoded(&a, Protocol::V1, 1000);
    assert!(e.stale.is_empty());
    assert_eq!(e.values.len(), 1);
    let req = v1(&e.values[0]);
    let got: Vec<(String, Vec<(f64, i64)>)> = req.timeseries.iter().map(show1).collect();
    let want = |s: &str, v: f64| (s.to_string(), vec![(v, TS)]);
    assert_eq!(
        got,
        vec![
            want(
                "c_total{Zone=\"x\",gateway_replica=\"r1\",path=\"/a\"}",
                3.0
            ),
            want("g{gateway_replica=\"r1\"}", 2.5),
            want("h_bucket{gateway_replica=\"r1\",le=\"0.5\"}", 1.0),
            want("h_bucket{gateway_replica=\"r1\",le=\"+Inf\"}", 4.0),
            want("h_sum{gateway_replica=\"r1\"}", 7.0),
            want("h_count{gateway_replica=\"r1\"}", 4.0),
            want("s_sum{gateway_replica=\"r1\"}", 9.0),
            want("s_count{gateway_replica=\"r1\"}", 3.0),
            want("u{gateway_replica=\"r1\"}", 1.0),
        ]
    );
    // `Zone` sorts before `__name__` (upper case before `_`).
    assert_eq!(req.timeseries[0].labels[0].name, "Zone");
    assert_eq!(e.values[0].samples, 9);
    let meta: Vec<(i32, &str, &str)> = req
        .metadata
        .iter()
        .map(|m| (m.r#type, m.metric_family_name.as_str(), m.help.as_str()))
        .collect();
    assert_eq!(
        meta,
        vec![
            (1, "c_total", "Requests."),
            (2, "g", ""),
            (3, "h", ""),
            (5, "s", ""),
        ]
    );
}

#[test]
fn batches_hold_at_most_max_samples() {
    let a = agg();
    let mut text = String::from("# TYPE c counter\n");
    for i in 0..25 {
        text.push_str(&format!("c{{i=\"{i}\"}} {i}\n"));
    }
    push(&a, &text);
    for protocol in [Protocol::V1, Protocol::V2] {
        let e = encoded(&a, protocol, 10);
        let sizes: Vec<usize> = e.values.iter().map(|b| b.samples).collect();
        assert_eq!(sizes, [10, 10, 5]);
    }
    let e = encoded(&a, Protocol::V1, 10);
    let total: usize = e.values.iter().map(|b| v1(b).timeseries.len()).sum();
    assert_eq!(total, 25);
    // Each batch names the family it holds.
    assert!(e.values.iter().all(|b| v1(b).metadata.len() == 1));
}

#[test]
fn version_2_interns_strings_and_carries_metadata_and_created() {
    let a = agg();
    push(
        &a,
        "# HELP c_total Requests.\n# TYPE c_total counter\nc_total{path=\"/a\"} 3\nc_total{path=\"/b\"} 4\n",
    );
    let e = encoded(&a, Protocol::V2, 1000);
    let req = v2(&e.values[0]);
    assert_eq!(req.symbols[0], "");
    let mut seen = req.symbols.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), req.symbols.len(), "each symbol once");
    let labels: Vec<Vec<(String, String)>> = req
        .timeseries
        .iter()
        .map(|t| {
            t.labels_refs
                .chunks(2)
                .map(|p| {
                    (
                        req.symbols[p[0] as usize].clone(),
                        req.symbols[p[1] as usize].clone(),
                    )
                })
                .collect()
        })
        .collect();
    let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
    assert_eq!(
        labels[1],
        vec![
            pair("__name__", "c_total"),
            pair("gateway_replica", "r1"),
            pair("path", "/b")
        ]
    );
    for t in &req.timeseries {
        let m = t.metadata.as_ref().unwrap();
        assert_eq!(m.r#type, 1);
        assert_eq!(req.symbols[m.help_ref as usize], "Requests.");
        assert_eq!(t.samples.len(), 1);
        assert_eq!(t.samples[0].timestamp, TS);
    }
}

#[test]
fn native_histograms_as_histogram_samples() {
    let a = agg();
    push_native(&a, native());
    let e = encoded(&a, Protocol::V1, 1000);
    let req = v1(&e.values[0]);
    assert_eq!(req.timeseries.len(), 1);
    let ts = &req.timeseries[0];
    assert!(ts.samples.is_empty());
    let h = &ts.histograms[0];
    use w1::histogram::{Count, ZeroCount};
    assert_eq!(h.count, Some(Count::CountInt(12)));
    assert_eq!(h.zero_count, Some(ZeroCount::ZeroCountInt(2)));
    assert_eq!(
        (h.sum, h.schema, h.zero_threshold, h.timestamp),
        (30.5, 1, 0.001, TS)
    );
    let spans: Vec<(i32, u32)> = h
        .positive_spans
        .iter()
        .map(|s| (s.offset, s.length))
        .collect();
    assert_eq!(spans, [(-1, 2), (2, 1)]);
    assert_eq!(h.positive_deltas, [3, 1, -3]);
    let spans: Vec<(i32, u32)> = h
        .negative_spans
        .iter()
        .map(|s| (s.offset, s.length))
        .collect();
    assert_eq!(spans, [(2, 1)]);
    assert_eq!(h.negative_deltas, [2]);
    // Fractional counts: float counts.
    let a = agg();
    push_native(
        &a,
        NativeHistogram {
            count: 1.5,
            zero_count: 0.0,
            positive: vec![(0, 1.5)],
            negative: vec![],
            ..native()
        },
    );
    let e = encoded(&a, Protocol::V2, 1000);
    let req = v2(&e.values[0]);
    let h = &req.timeseries[0].histograms[0];
    use w2::histogram::Count as Count2;
    assert_eq!(h.count, Some(Count2::CountFloat(1.5)));
    assert_eq!(h.positive_counts, [1.5]);
    assert!(h.positive_deltas.is_empty());
}

#[test]
fn dropped_series_get_staleness_markers_just_before() {
    let a = agg();
    push(
        &a,
        "# TYPE c counter\nc{a=\"1\"} 1\nc{a=\"2\"} 2\n\
         # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
    );
    push_native(&a, native());
    a.delete(&[("a".into(), "1".into())]);
    a.delete(&[]);
    let e = encoded(&a, Protocol::V1, 1000);
    assert!(e.values.is_empty(), "everything was deleted");
    let stale: Vec<(String, Vec<(f64, i64)>)> =
        v1(&e.stale[0]).timeseries.iter().map(show1).collect();
    let mut names: Vec<&str> = stale.iter().map(|(n, _)| n.as_str()).collect();
    // The first delete's first; the second's in shard order.
    assert_eq!(names[0], "c{a=\"1\",gateway_replica=\"r1\"}");
    names[1..].sort_by_key(|n| n.chars().next());
    assert_eq!(
        names,
        [
            "c{a=\"1\",gateway_replica=\"r1\"}",
            "c{a=\"2\",gateway_replica=\"r1\"}",
            "h_bucket{gateway_replica=\"r1\",le=\"1\"}",
            "h_bucket{gateway_replica=\"r1\",le=\"+Inf\"}",
            "h_sum{gateway_replica=\"r1\"}",
            "h_count{gateway_replica=\"r1\"}",
            "lat{gateway_replica=\"r1\",job=\"n\"}",
        ]
    );
    for (_, samples) in &stale {
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].0.to_bits(), STALE_NAN);
        assert_eq!(samples[0].1, TS - 2);
    }
    // Taken once.
    assert!(encoded(&a, Protocol::V1, 1000).stale.is_empty());
}

#[test]
fn no_journal_without_remote_write() {
    let a = Aggregator::new(Settings::default());
    push(&a, "# TYPE c counter\nc 1\n");
    a.wipe();
    assert_eq!(a.take_dropped(), (Vec::new(), 0));
}

#[test]
fn series_new_to_the_receiver_start_from_a_zero() {
    let a = agg();
    push(
        &a,
        "# TYPE c counter\nc 5\n# TYPE g gauge\ng 3\n\
         # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n\
         # TYPE s summary\ns_sum 2\ns_count 1\n",
    );
    push_native(&a, native());
    let e = a.read(|families| {
        encode(
            families,
            &[],
            &SeriesIds::default(),
            opts(Protocol::V1, 1000),
        )
    });
    // The zeros in requests of their own, a millisecond before the values;
    // gauges get none.
    let zeros = v1(&e.zeros[0]);
    let got: Vec<(String, Vec<(f64, i64)>)> = zeros.timeseries.iter().map(show1).collect();
    let r = "{gateway_replica=\"r1\"}";
    let zero = |s: &str| (s.to_string(), vec![(0.0, TS - 1)]);
    assert_eq!(
        got,
        vec![
            zero(&format!("c{r}")),
            zero("h_bucket{gateway_replica=\"r1\",le=\"1\"}"),
            zero("h_bucket{gateway_replica=\"r1\",le=\"+Inf\"}"),
            zero(&format!("h_sum{r}")),
            zero(&format!("h_count{r}")),
            ("lat{gateway_replica=\"r1\",job=\"n\"}".to_string(), vec![]),
            zero(&format!("s_sum{r}")),
            zero(&format!("s_count{r}")),
        ]
    );
    let h = &zeros.timeseries[5].histograms;
    assert_eq!((h[0].timestamp, h[0].sum, h[0].schema), (TS - 1, 0.0, 1));
    assert!(h[0].positive_spans.is_empty());
    let values = v1(&e.values[0]);
    assert!(
        values
            .timeseries
            .iter()
            .all(|t| t.samples.iter().all(|s| s.timestamp == TS))
    );
    // Sent before: no zeros.
    let e = a.read(|families| {
        encode(
            families,
            &[],
            &series_ids(families),
            opts(Protocol::V2, 1000),
        )
    });
    assert!(e.zeros.is_empty());
}
