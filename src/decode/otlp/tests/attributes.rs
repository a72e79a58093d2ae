//! Attribute values as labels, within the label value limit.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

use super::*;

fn nested(levels: usize, inner: AnyValue) -> AnyValue {
    (0..levels).fold(inner, |v, _| AnyValue {
        value: Some(any_value::Value::ArrayValue(
            opentelemetry_proto::tonic::common::v1::ArrayValue { values: vec![v] },
        )),
    })
}

fn any_kv(k: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(value),
        ..Default::default()
    }
}

fn string(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.into())),
    }
}

#[test]
fn attribute_values_are_rendered_within_the_label_value_limit() {
    // Eight arrays around 64 KiB of quotes: escaping doubles it per level
    // (16 MiB rendered unbounded). A resource attribute that no label takes
    // is not rendered at all; one that is promoted, or a point's, is
    // refused as soon as its rendering passes --max-label-value-length.
    let bomb = nested(8, string(&"\"".repeat(64 << 10)));
    let many_empty = AnyValue {
        value: Some(any_value::Value::ArrayValue(
            opentelemetry_proto::tonic::common::v1::ArrayValue {
                values: vec![string(""); 100_000],
            },
        )),
    };
    for value in [bomb, many_empty] {
        let mut rm = resource("svc", "i", vec![metric("a", "", delta_sum(1.0, vec![]))]);
        let attrs = &mut rm.resource.as_mut().unwrap().attributes;
        attrs.push(any_kv("deploy.blob", value.clone()));
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![rm],
        };
        assert!(scrape(decode(&req).unwrap()).contains("a_total{job=\"svc\"} 1\n"));
        // Promoted: it becomes a label, and is too long for one.
        let promote = ["deploy.blob".to_string()];
        let settings = Settings {
            gauge_mode: GaugeMode::Sum,
            promote: &promote,
        };
        let rules = LabelRules::default();
        let opts = Options {
            labels: &rules,
            gauge_nan_ok: false,
            spend: None,
            windows: None,
        };
        let err = request(&req.encode_to_vec(), &opts, &settings)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("longer than --max-label-value-length"),
            "{err}"
        );
        assert!(err.contains("deploy.blob"), "{err}");
        // As a point's attribute.
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![resource(
                "svc",
                "i",
                vec![metric("b", "", delta_sum(1.0, vec![any_kv("blob", value)]))],
            )],
        };
        let err = decode(&req).unwrap_err().to_string();
        assert!(
            err.contains("longer than --max-label-value-length"),
            "{err}"
        );
    }
    // Within the limit, arrays and maps render as JSON as before: maps by
    // sorted key, the last of a repeated key kept, strings escaped.
    let map = AnyValue {
        value: Some(any_value::Value::KvlistValue(
            opentelemetry_proto::tonic::common::v1::KeyValueList {
                values: vec![
                    any_kv("b", string("x")),
                    any_kv("a", nested(1, string("q\"\n"))),
                    any_kv("b", string("y")),
                ],
            },
        )),
    };
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![resource(
            "svc",
            "i",
            vec![metric("c", "", delta_sum(1.0, vec![any_kv("m", map)]))],
        )],
    };
    let text = scrape(decode(&req).unwrap());
    assert!(
        text.contains(
            r#"c_total{job="svc",m="{\"a\":\"[\\\"q\\\\\\\"\\\\n\\\"]\",\"b\":\"y\"}"} 1"#
        ),
        "{text}"
    );
}
