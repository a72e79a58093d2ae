//! OTLP `ExportMetricsServiceRequest` bodies, protobuf or (with bit 2 of
//! the first byte) JSON, then route (running totals through the built-in
//! `total` rule), apply twice and render: nothing may panic, whatever the
//! bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prom_aggregation_gateway::aggregate::{Aggregator, GaugeMode, Settings};
use prom_aggregation_gateway::decode::{Options, otlp};
use prom_aggregation_gateway::encode;
use prom_aggregation_gateway::format::Format;
use prom_aggregation_gateway::model::LabelRules;
use prom_aggregation_gateway::rules::RuleSet;
use prom_aggregation_gateway_fuzz::{amplification_bound, held_within};

fuzz_target!(|data: &[u8]| {
    let rules = LabelRules::default();
    let opts = Options {
        labels: &rules,
        gauge_nan_ok: true,
        spend: None,
        windows: None,
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
    // Bit 3: a resource attribute promoted to a label.
    let promote = if data.first().is_some_and(|b| b & 8 != 0) {
        vec!["host.name".to_string()]
    } else {
        Vec::new()
    };
    let settings = otlp::Settings {
        gauge_mode: mode,
        promote: &promote,
    };
    // Transcoding and decoding together, as a JSON request is handled.
    let decoded = held_within("OTLP decode", amplification_bound(body.len()), || {
        if json {
            otlp::json::to_protobuf(body, &|_| Ok(()))
                .ok()
                .map(|raw| otlp::request(&raw, &opts, &settings))
        } else {
            Some(otlp::request(body, &opts, &settings))
        }
    });
    if let Some(Ok(push)) = decoded {
        let agg = Aggregator::new(Settings {
            gauge_mode: mode,
            max_series: 1_000_000,
            ..Default::default()
        });
        let rules = RuleSet::default();
        let apply = |mut push| {
            let routes = rules.route(&mut push);
            agg.apply_routed(push, &routes, &rules, || Ok(()))
        };
        if apply(push.clone()).is_ok() {
            let _ = apply(push);
            for f in [Format::Text, Format::OpenMetrics, Format::Protobuf] {
                let _ = encode::render(&agg, f);
            }
        }
    }
});
