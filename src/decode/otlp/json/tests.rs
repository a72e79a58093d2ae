use super::*;

#[test]
fn json_and_protobuf_say_the_same() {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use prost::Message as _;
    let json = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}}]},
        "scopeMetrics":[{"scope":{"name":"s"},"metrics":[
          {"name":"hits","unit":"1","sum":{"aggregationTemporality":1,"isMonotonic":true,
            "dataPoints":[{"asInt":"7","startTimeUnixNano":"1","timeUnixNano":"2",
              "attributes":[{"key":"code","value":{"intValue":"200"}},{"key":"ok","value":{"boolValue":true}}]}]}},
          {"name":"lat","histogram":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA",
            "dataPoints":[{"count":"3","sum":1.5,"bucketCounts":["1",2],"explicitBounds":[0.5]}]}},
          {"name":"t","gauge":{"dataPoints":[{"asDouble":"NaN"}]}},
          {"name":"e","exponentialHistogram":{"aggregationTemporality":1,
            "dataPoints":[{"count":"2","scale":-1,"positive":{"offset":-3,"bucketCounts":["1","1"]}}]}}
        ]}]}],"unknownTopLevel":{"ignored":[1,2,3]}}"#;
    let raw = to_protobuf(json, &|_| Ok(())).unwrap();
    let req = ExportMetricsServiceRequest::decode(&raw[..]).unwrap();
    let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
    assert_eq!(metrics.len(), 4);
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as V;
    match &metrics[0].data {
        Some(Data::Sum(s)) => {
            assert!(s.is_monotonic);
            assert_eq!(s.aggregation_temporality, 1);
            assert_eq!(s.data_points[0].value, Some(V::AsInt(7)));
            assert_eq!(s.data_points[0].attributes.len(), 2);
        }
        d => panic!("{d:?}"),
    }
    match &metrics[1].data {
        Some(Data::Histogram(h)) => {
            assert_eq!(h.aggregation_temporality, 1);
            assert_eq!(h.data_points[0].bucket_counts, [1, 2]);
            assert_eq!(h.data_points[0].explicit_bounds, [0.5]);
            assert_eq!(h.data_points[0].count, 3);
        }
        d => panic!("{d:?}"),
    }
    match &metrics[3].data {
        Some(Data::ExponentialHistogram(e)) => {
            let p = &e.data_points[0];
            assert_eq!(p.scale, -1);
            assert_eq!(p.positive.as_ref().unwrap().offset, -3);
            assert_eq!(p.positive.as_ref().unwrap().bucket_counts, [1, 1]);
        }
        d => panic!("{d:?}"),
    }
    for bad in [&b"[]"[..], b"{\"resourceMetrics\":{}}", b"{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"sum\":{\"aggregationTemporality\":\"x\"}}]}]}]}", b"{} trailing", b"{\"resourceMetrics\":[1]}"] {
        assert!(to_protobuf(bad, &|_| Ok(())).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}
