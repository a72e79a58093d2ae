//! gRPC `PushRequest` messages: the labels map read first (as the gRPC
//! handler does, into the grouping key), then the families under those
//! labels, then apply and render: nothing may panic, whatever the bytes,
//! and decoding holds at most the amplification bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prom_aggregation_gateway::aggregate::{Aggregator, GaugeMode, Settings};
use prom_aggregation_gateway::decode::{Options, push_request};
use prom_aggregation_gateway::encode;
use prom_aggregation_gateway::format::Format;
use prom_aggregation_gateway::model::{LabelRules, Limits};
use prom_aggregation_gateway_fuzz::{amplification_bound, held_within};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let decoded = held_within(
        "PushRequest decode",
        amplification_bound(data.len()),
        || {
            let labels = push_request::labels(data, limits.max_labels).ok()?;
            let rules = LabelRules::new(labels, &[], limits).ok()?;
            let opts = Options {
                labels: &rules,
                gauge_nan_ok: false,
                spend: None,
                windows: None,
            };
            push_request::families(data, &opts).ok()
        },
    );
    if let Some(push) = decoded {
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
});
