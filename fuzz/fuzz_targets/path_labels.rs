//! Push paths: `/metrics/<name>/<value>/...` with percent-encoding and
//! `@base64`: nothing may panic, and accepted labels must make valid rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prom_aggregation_gateway::decode::path;
use prom_aggregation_gateway::model::{LabelRules, Limits};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(labels) = path::parse(s)
    {
        let _ = LabelRules::new(labels, &[], Limits::default());
    }
});
