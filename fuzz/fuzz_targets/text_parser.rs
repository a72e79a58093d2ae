//! The text parser (both dialects) and, for what it accepts, the aggregator
//! and every encoder: nothing may panic, and an accepted push must render.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prom_aggregation_gateway::aggregate::{Aggregator, GaugeMode, Settings};
use prom_aggregation_gateway::decode::{Options, text};
use prom_aggregation_gateway::encode;
use prom_aggregation_gateway::format::Format;
use prom_aggregation_gateway::model::LabelRules;
use prom_aggregation_gateway_fuzz::{amplification_bound, held_within};

fuzz_target!(|data: &[u8]| {
    let rules = LabelRules::default();
    let opts = Options {
        labels: &rules,
        gauge_nan_ok: false,
        spend: None,
        windows: None,
    };
    for dialect in [text::Dialect::Prometheus, text::Dialect::OpenMetrics] {
        let parsed = held_within("text parse", amplification_bound(data.len()), || {
            text::parse(data, dialect, &opts)
        });
        if let Ok(push) = parsed {
            let agg = Aggregator::new(Settings {
                gauge_mode: GaugeMode::Sum,
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
    }
});
