//! Delimited protobuf bodies (and so gRPC batches), then apply and render:
//! nothing may panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prom_aggregation_gateway::aggregate::{Aggregator, GaugeMode, Settings};
use prom_aggregation_gateway::decode::{Options, protobuf};
use prom_aggregation_gateway::encode;
use prom_aggregation_gateway::format::Format;
use prom_aggregation_gateway::model::LabelRules;
use prom_aggregation_gateway_fuzz::{amplification_bound, held_within};

fuzz_target!(|data: &[u8]| {
    let rules = LabelRules::default();
    let opts = Options {
        labels: &rules,
        gauge_nan_ok: true,
        spend: None,
        windows: None,
    };
    let decoded = held_within("protobuf decode", amplification_bound(data.len()), || {
        protobuf::delimited(data, &opts)
    });
    if let Ok(push) = decoded {
        let agg = Aggregator::new(Settings {
            gauge_mode: GaugeMode::Last,
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
