use super::*;
use crate::model::LabelRules;
use crate::model::labels::pairs;

fn opts(rules: &LabelRules) -> Options<'_> {
    Options {
        labels: rules,
        gauge_nan_ok: false,
        spend: None,
        windows: None,
    }
}

fn parse_ok(body: &str, dialect: Dialect) -> Push {
    let rules = LabelRules::default();
    match parse(body.as_bytes(), dialect, &opts(&rules)) {
        Ok(p) => p,
        Err(e) => panic!("parse failed: {e}\n--- body ---\n{body}"),
    }
}

fn parse_err(body: &str, dialect: Dialect) -> String {
    let rules = LabelRules::default();
    match parse(body.as_bytes(), dialect, &opts(&rules)) {
        Ok(p) => panic!("parse accepted {body:?}: {p:?}"),
        Err(e) => e.to_string(),
    }
}

fn labels_of(s: &Series) -> Vec<(String, String)> {
    pairs(&s.key)
        .map(|(n, v)| {
            (
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.into_owned()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn python_client_text_output() {
    // As prometheus_client 0.2x `generate_latest` writes it.
    let body = r#"# HELP requests_total Requests \\ handled\nsecond line
# TYPE requests_total counter
requests_total{method="get",path="/a,b}"} 3.0
requests_total{method="post",path="say \"hi\"\n"} 1.0
# HELP requests_created Requests \\ handled\nsecond line
# TYPE requests_created gauge
requests_created{method="get",path="/a,b}"} 1.7e+09
requests_created{method="post",path="say \"hi\"\n"} 1.6e+09
# HELP latency_seconds Latency
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 1.0
latency_seconds_bucket{le="1.0"} 2.0
latency_seconds_bucket{le="+Inf"} 3.0
latency_seconds_count 3.0
latency_seconds_sum 4.5
# HELP temp Temperature
# TYPE temp gauge
temp -3.5 1700000000000
# HELP s A summary
# TYPE s summary
s{quantile="0.5"} 1
s_count 2.0
s_sum 3.0
"#;
    let push = parse_ok(body, Dialect::Prometheus);
    let names: Vec<_> = push.families.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["requests_total", "latency_seconds", "temp", "s"]);
    let req = &push.families[0];
    assert_eq!(req.help, "Requests \\ handled\nsecond line");
    assert_eq!(req.kind, Kind::Counter);
    assert_eq!(
        labels_of(&req.series[0]),
        [
            ("method".to_string(), "get".to_string()),
            ("path".into(), "/a,b}".into())
        ]
    );
    assert_eq!(labels_of(&req.series[1])[1].1, "say \"hi\"\n");
    // The `_created` gauge family became the counter's creation timestamps.
    assert_eq!(req.series[0].created, Some(1_700_000_000_000_000_000));
    assert_eq!(req.series[1].created, Some(1_600_000_000_000_000_000));
    let Value::Histogram(h) = &push.families[1].series[0].value else {
        panic!()
    };
    assert_eq!((h.count, h.sum, h.buckets.len()), (3.0, 4.5, 3));
    assert_eq!(push.families[2].series[0].value, Value::Scalar(-3.5));
    assert_eq!(
        push.families[3].series[0].value,
        Value::Summary {
            count: 2.0,
            sum: 3.0
        }
    );
}

#[test]
fn openmetrics_with_exemplars_created_and_eof() {
    let body = r#"# TYPE requests counter
# HELP requests Requests \"quoted\"
requests_total{a="1"} 3.0 # {trace_id="abc"} 1.0 1700000000.1
requests_created{a="1"} 1700000000.5
# TYPE h histogram
h_bucket{le="1.0"} 1
h_bucket{le="+Inf"} 2
h_count 2
h_sum 1.5
h_created 1700000001
# TYPE i info
i_info{version="1"} 1
# TYPE u unknown
u 7
# EOF
"#;
    let push = parse_ok(body, Dialect::OpenMetrics);
    let names: Vec<_> = push.families.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["requests_total", "h", "i_info", "u"]);
    assert_eq!(push.families[0].help, "Requests \"quoted\"");
    assert_eq!(
        push.families[0].series[0].created,
        Some(1_700_000_000_500_000_000)
    );
    assert_eq!(
        push.families[1].series[0].created,
        Some(1_700_000_001_000_000_000)
    );
    assert_eq!(push.families[2].kind, Kind::Gauge);
    assert_eq!(push.families[3].kind, Kind::Untyped);
    let err = parse_err("# EOF\nx 1\n", Dialect::OpenMetrics);
    assert!(err.contains("after # EOF"), "{err}");
}

#[test]
fn tolerated_forms() {
    let body =
        "\n  # a comment\nfoo{} 1\nbar {a=\"b\",} +Inf\nbaz\t{ a = \"b\" }\tNaN\r\nqux 1 -5\n";
    let rules = LabelRules::default();
    let o = Options {
        labels: &rules,
        gauge_nan_ok: true,
        spend: None,
        windows: None,
    };
    let push = parse(body.as_bytes(), Dialect::Prometheus, &o);
    // baz is untyped: NaN is refused even when gauges may be NaN.
    assert!(push.unwrap_err().to_string().contains("baz"));
    let push = parse_ok(&body.replace("NaN", "2"), Dialect::Prometheus);
    assert_eq!(push.families.len(), 4);
    assert_eq!(
        push.families[1].series[0].value,
        Value::Scalar(f64::INFINITY)
    );
}

#[test]
fn errors_name_line_and_metric() {
    let cases: &[(&str, &str)] = &[
        (
            "this is not a metric line",
            "line 1: metric this: invalid value",
        ),
        (
            "# TYPE a counter\na -1",
            "line 2: metric a: counter value -1 is negative",
        ),
        (
            "# TYPE a counter\na NaN",
            "line 2: metric a: counter value is NaN",
        ),
        (
            "a{b=\"c} 1",
            "line 1: metric a: label value has no closing quote",
        ),
        ("a{b=\"c\\q\"} 1", "invalid escape"),
        ("a{b=\"1\",b=\"2\"} 1", "label b given twice"),
        ("a{1b=\"1\"} 1", "expected a label name"),
        ("a{b=\"1\" c=\"2\"} 1", "expected ',' or '}'"),
        ("a 1 x", "invalid timestamp"),
        ("a 1 2 3", "unexpected text after the value"),
        ("a", "missing value"),
        ("a abc", "invalid value \"abc\""),
        ("# TYPE a counter\n# TYPE a gauge\na 1", "second TYPE line"),
        ("a 1\n# TYPE a counter", "TYPE line after its samples"),
        ("# TYPE a bogus", "unknown type"),
        (
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\nh_count 2",
            "buckets decrease",
        ),
        ("# TYPE h histogram\nh_bucket 2\n", "without an le label"),
        ("# TYPE h histogram\nh_bucket{le=\"x\"} 2\n", "invalid le"),
        (
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3",
            "+Inf bucket has 2 but _count is 3",
        ),
        (
            "# TYPE h histogram\nh_sum 2",
            "needs a +Inf bucket or a _count",
        ),
        (
            "# TYPE h histogram\nh_count 1\nh_count 1",
            "series given twice",
        ),
        ("# TYPE h histogram\nh 1", "does not fit metric h"),
        ("{a=\"b\"} 1", "quoted metric names are not supported"),
        ("# TYPE s summary\ns_count -1", "_count is -1"),
    ];
    for (body, want) in cases {
        let err = parse_err(body, Dialect::Prometheus);
        assert!(err.contains(want), "{body:?}: got {err:?}, want {want:?}");
    }
    let err = parse(
        b"a 1\n\xff 2\n",
        Dialect::Prometheus,
        &opts(&LabelRules::default()),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(err, "line 2: invalid UTF-8");
}

#[test]
fn path_labels_replace_body_labels() {
    let rules = LabelRules::new(
        vec![("job".into(), "p".into())],
        &["drop".into()],
        Default::default(),
    )
    .unwrap();
    let push = parse(
        b"a{job=\"body\",drop=\"x\",k=\"v\"} 1\n",
        Dialect::Prometheus,
        &opts(&rules),
    )
    .unwrap();
    assert_eq!(
        labels_of(&push.families[0].series[0]),
        [
            ("job".to_string(), "p".to_string()),
            ("k".into(), "v".into())
        ]
    );
}

#[test]
fn histogram_series_may_interleave() {
    let mut body = String::from("# TYPE h histogram\n");
    for le in ["1", "+Inf"] {
        for i in 0..20 {
            body.push_str(&format!("h_bucket{{i=\"{i}\",le=\"{le}\"}} {i}\n"));
        }
    }
    for i in 0..20 {
        body.push_str(&format!("h_count{{i=\"{i}\"}} {i}\n"));
    }
    let push = parse_ok(&body, Dialect::Prometheus);
    assert_eq!(push.families[0].series.len(), 20);
    for s in &push.families[0].series {
        let Value::Histogram(h) = &s.value else {
            panic!()
        };
        assert_eq!(h.buckets.len(), 2);
        assert_eq!(h.buckets[1].count, h.count);
    }
}

/// Differential test against prometheus-parse on inputs it handles
/// (no commas, braces or escapes in label values).
#[test]
fn agrees_with_prometheus_parse_on_plain_input() {
    let body = "# HELP a An a\n# TYPE a counter\na{x=\"1\",y=\"two\"} 3\na{x=\"2\"} 4.5\n# TYPE g gauge\ng -2\n# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.7\nh_count 2\n";
    let oracle = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    let ours = parse_ok(body, Dialect::Prometheus);
    let mut scalar_samples = 0;
    for s in &oracle.samples {
        if s.metric == "h_sum" || s.metric == "h_count" {
            let Value::Histogram(h) = &ours.families[2].series[0].value else {
                panic!()
            };
            let want = if s.metric == "h_sum" { h.sum } else { h.count };
            assert!(matches!(s.value, prometheus_parse::Value::Untyped(v) if v == want));
            continue;
        }
        let fam = ours
            .families
            .iter()
            .find(|f| f.name == s.metric)
            .unwrap_or_else(|| panic!("missing {}", s.metric));
        match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => {
                scalar_samples += 1;
                let mut want: Vec<(String, String)> = s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                want.sort();
                let found = fam
                    .series
                    .iter()
                    .any(|ser| labels_of(ser) == want && ser.value == Value::Scalar(*v));
                assert!(found, "{} {want:?} {v}", s.metric);
            }
            prometheus_parse::Value::Histogram(buckets) => {
                let Value::Histogram(h) = &fam.series[0].value else {
                    panic!()
                };
                let theirs: Vec<(f64, f64)> =
                    buckets.iter().map(|b| (b.less_than, b.count)).collect();
                let mine: Vec<(f64, f64)> = h.buckets.iter().map(|b| (b.le, b.count)).collect();
                assert_eq!(theirs, mine);
            }
            _ => {}
        }
    }
    assert_eq!(scalar_samples, 3);
}

/// Issue 4's fuzz run: a multi-byte character after the timestamp panicked
/// (a slice inside the character). Now it is a clear error.
#[test]
fn regression_issue_4_multibyte_text_after_timestamp() {
    let body = "JEckuver 2\t\t0\t\t\t\t\t\t\u{3b6}";
    let err = parse_err(body, Dialect::Prometheus);
    assert!(err.contains("unexpected text after the value"), "{err}");
    let err = parse_err("x 1 \u{3b6}", Dialect::OpenMetrics);
    assert!(err.contains("invalid timestamp"), "{err}");
    let err = parse_err("x 1 2 \u{3b6}\u{3b6}", Dialect::OpenMetrics);
    assert!(err.contains("unexpected text after the value"), "{err}");
}
