//! Push paths: `/metrics/<name>/<value>/...` with percent-encoding and
//! `@base64`: nothing may panic, and accepted labels must make valid rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prom_aggregation_gateway::decode::path;
use prom_aggregation_gateway::model::{LabelRules, Limits};
use prom_aggregation_gateway_fuzz::{amplification_bound, held_within};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        held_within("path labels", amplification_bound(data.len()), || {
            if let Ok(labels) = path::parse(s) {
                let _ = LabelRules::new(labels, &[], Limits::default());
            }
        });
    }
});
