//! Rules files (`--rules`): any text, a selector of any shape, is parsed
//! or refused with a reason; nothing may panic, overflow the stack or
//! take long (the selector is checked before the PromQL parser sees it),
//! and a file that loads routes a push.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use prom_aggregation_gateway::rules::{self, RuleSet, RuleStats};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // As written, and as the `match` of one rule.
    let quoted = format!("rules:\n  - match: '{}'\n", text.replace('\'', "''"));
    for text in [text, quoted.as_str()] {
        if let Ok(list) = rules::parse("fuzz.yml", text, |_| Arc::new(RuleStats::default())) {
            let _ = RuleSet::new(list);
        }
    }
});
