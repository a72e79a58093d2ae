//! Rules files (`--rules`): any text, a selector of any shape, is parsed
//! or refused with a reason; nothing may panic, overflow the stack or
//! take long (the selector is checked before the PromQL parser sees it),
//! and a file that loads routes a push.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use prom_aggregation_gateway::rules::{self, MAX_REGEX_BYTES, RuleSet, RuleStats};
use prom_aggregation_gateway_fuzz::{amplification_bound, held_within};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // As written, and as the `match` of one rule.
    let quoted = format!("rules:\n  - match: '{}'\n", text.replace('\'', "''"));
    // A file's regexes may compile to MAX_REGEX_BYTES of automaton, about
    // four times that resident (rules/file.rs): a budget of the file, not
    // of its size, so it is added to the bound.
    for text in [text, quoted.as_str()] {
        let bound = amplification_bound(text.len()) + 4 * MAX_REGEX_BYTES;
        held_within("rules file", bound, || {
            if let Ok(list) = rules::parse("fuzz.yml", text, |_| Arc::new(RuleStats::default())) {
                let _ = RuleSet::new(list);
            }
        });
    }
});
