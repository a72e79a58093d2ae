//! OTLP `ExportMetricsServiceRequest` bodies, protobuf or (with bit 2 of
//! the first byte) JSON, then apply and render: nothing may panic,
//! whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prom_aggregation_gateway::aggregate::{Aggregator, GaugeMode, Settings};
use prom_aggregation_gateway::decode::{Options, otlp};
use prom_aggregation_gateway::encode::{self, Format};
use prom_aggregation_gateway::model::LabelRules;

fuzz_target!(|data: &[u8]| {
    let rules = LabelRules::default();
    let opts = Options {
        labels: &rules,
        gauge_nan_ok: true,
        spend: None,
    };
    // The first byte picks the gauge mode, as the flag would.
    let mode = match data.first().map(|b| b % 4) {
        Some(0) => GaugeMode::Sum,
        Some(1) => GaugeMode::Last,
        Some(2) => GaugeMode::Max,
        _ => GaugeMode::Min,
    };
    let body = data.get(1..).unwrap_or_default();
    let json = data.first().is_some_and(|b| b & 4 != 0);
    let decoded = if json {
        otlp::json::to_protobuf(body)
            .ok()
            .map(|raw| otlp::request(&raw, &opts, mode))
    } else {
        Some(otlp::request(body, &opts, mode))
    };
    if let Some(Ok(push)) = decoded {
        let agg = Aggregator::new(Settings {
            gauge_mode: mode,
            max_series: 1_000_000,
            ..Default::default()
        });
        if agg.apply(push.clone()).is_ok() {
            let _ = agg.apply(push);
            for f in [Format::Text, Format::OpenMetrics, Format::Protobuf] {
                let _ = encode::render(&agg, f);
            }
        }
    }
});
