//! The rules file: YAML, the Prometheus ecosystem's config language.
//!
//! Read with `serde-saphyr`: pure Rust, documented never to panic on any
//! input, with a budget on aliases and nesting, and it gives each value's
//! line (`Spanned`), so a rule that is valid YAML but wrong (a bad
//! selector, both `by` and `without`) is named by its line, not just
//! syntax errors. (`serde_yaml` is unmaintained; its fork `serde_norway`
//! wraps a C-to-Rust translation of libyaml and has no spans.)
//!
//! ```yaml
//! rules:
//!   - match: 'http_requests_total{job="web"}'
//!     mode: total
//!     source_labels: [instance]
//!     without: [instance]
//! ```

use std::sync::Arc;
use std::time::Duration;

use promql_parser::label::Matcher;
use promql_parser::parser::Expr;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::rule::{
    Combine, DEFAULT_LEVEL_TTL, DEFAULT_SOURCE_TTL, Keep, Mode, Rule, RuleStats, Selector,
};
use crate::model::labels::is_label_name;

/// Why a rules file was not taken: one line naming the file, the line in
/// it and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<String>,
    #[serde(rename = "match")]
    selector: Spanned<String>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    combine: Option<Combine>,
    by: Option<Vec<String>>,
    without: Option<Vec<String>>,
    source_labels: Option<Vec<String>>,
    ttl: Option<String>,
    source_ttl: Option<String>,
}

/// Most rules in one file (rule indices are `u16`).
const MAX_RULES: usize = 10_000;

/// Longest `match` selector, in bytes.
const MAX_SELECTOR_BYTES: usize = 4096;

/// Most bytes the regexes of one file may compile to, as counted by
/// [`regex_bytes`]. A compiled regex holds about four times its automaton
/// (measured: `.{1000}` 266 KiB of automaton and 1.0 MiB resident,
/// `\w{200}` 3.4 MiB and 11.4 MiB), so this is about 32 MiB resident; a
/// file of 2,500 `.{1000}` regexes once took 2.5 GiB.
pub const MAX_REGEX_BYTES: usize = 8 << 20;

/// Parses a rules file's text (`file` names it in errors); `stats` gives
/// each rule's self-metrics by name.
pub fn parse(
    file: &str,
    text: &str,
    mut stats: impl FnMut(&str) -> Arc<RuleStats>,
) -> Result<Vec<Rule>, LoadError> {
    let raw: Option<RawFile> = serde_saphyr::from_str(text)
        .map_err(|e| LoadError(format!("rules file {file}: {}", one_line(&e.to_string()))))?;
    let raw = raw.map(|r| r.rules).unwrap_or_default();
    if raw.len() > MAX_RULES {
        return Err(LoadError(format!(
            "rules file {file}: {} rules, more than the {MAX_RULES} allowed",
            raw.len()
        )));
    }
    let mut names = std::collections::HashSet::new();
    let mut rules = Vec::with_capacity(raw.len());
    let mut regex_budget = MAX_REGEX_BYTES;
    for (i, spanned) in raw.into_iter().enumerate() {
        let line = spanned.referenced.line();
        let at = |why: String| {
            LoadError(format!(
                "rules file {file}, line {line} (rule {}): {why}",
                i + 1
            ))
        };
        let named = spanned.value.name.is_some();
        let mut rule = compile(spanned.value, &mut stats).map_err(at)?;
        for m in rule.name_matchers.iter().chain(&rule.label_matchers) {
            let bytes = regex_bytes(m, regex_budget).map_err(at)?;
            regex_budget -= bytes;
        }
        if !names.insert(rule.name.clone()) {
            if named {
                return Err(at(format!(
                    "the name {:?} is given to an earlier rule too",
                    rule.name
                )));
            }
            // Unnamed rules are named by their selector, made unique.
            rule.name = format!("{} (rule {})", rule.name, i + 1);
            rule.stats = stats(&rule.name);
            names.insert(rule.name.clone());
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// serde-saphyr's messages may span lines (a snippet of the file); the
/// log and the refusal want one.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn compile(raw: RawRule, stats: &mut impl FnMut(&str) -> Arc<RuleStats>) -> Result<Rule, String> {
    let selector = raw.selector.value.trim();
    let (name_matchers, label_matchers) = selector_matchers(selector)?;
    let mode = raw.mode.unwrap_or(Mode::Sum);
    let keep = match (raw.by, raw.without) {
        (Some(_), Some(_)) => return Err("give `by` or `without`, not both".into()),
        (Some(by), None) => Keep::By(label_list("by", by)?),
        (None, Some(without)) => Keep::Without(label_list("without", without)?),
        (None, None) => Keep::All,
    };
    if raw.combine.is_some() && mode != Mode::Latest {
        return Err("`combine` applies to mode `latest` only".into());
    }
    let source = match raw.source_labels {
        Some(_) if !mode.tracks_sources() => {
            return Err("`source_labels` applies to modes `total` and `latest` only".into());
        }
        Some(labels) if labels.is_empty() => {
            return Err("`source_labels` is empty: name the labels that tell sources apart".into());
        }
        Some(labels) => Keep::By(label_list("source_labels", labels)?),
        None => Keep::All,
    };
    if raw.source_ttl.is_some() && !mode.tracks_sources() {
        return Err("`source_ttl` applies to modes `total` and `latest` only".into());
    }
    let ttl = raw.ttl.map(|t| duration("ttl", &t)).transpose()?;
    let source_ttl = raw
        .source_ttl
        .map(|t| duration("source_ttl", &t))
        .transpose()?
        .unwrap_or(if mode == Mode::Latest {
            DEFAULT_LEVEL_TTL
        } else {
            DEFAULT_SOURCE_TTL
        });
    let name = raw.name.unwrap_or_else(|| selector.to_string());
    if name.is_empty() {
        return Err("the rule's name is empty".into());
    }
    Ok(Rule {
        stats: stats(&name),
        name,
        mode,
        combine: raw.combine.unwrap_or_default(),
        name_matchers,
        label_matchers,
        keep,
        source,
        ttl,
        source_ttl,
    })
}

/// What the regex of matcher `m` costs against what is left of the
/// file's budget (`left`), or why it does not fit: the bytes of its
/// automaton, built with `left` as its limit so that a regex too large is
/// refused without being built whole.
fn regex_bytes(m: &Matcher, left: usize) -> Result<usize, String> {
    use promql_parser::label::MatchOp;
    let (MatchOp::Re(re) | MatchOp::NotRe(re)) = &m.op else {
        return Ok(0);
    };
    let too_large = || {
        format!(
            "the regexes of the file would compile to more than {} MiB (the last one counted: {:?} on {})",
            MAX_REGEX_BYTES >> 20,
            m.value,
            m.name
        )
    };
    let config = regex_automata::nfa::thompson::Config::new().nfa_size_limit(Some(left));
    let nfa = regex_automata::nfa::thompson::Compiler::new()
        .configure(config)
        .build(re.as_str())
        .map_err(|_| too_large())?;
    let bytes = nfa.memory_usage();
    if bytes > left {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Refuses, before the PromQL parser sees it, text that is no series
/// selector: a name and one `{...}` of matchers need no parentheses,
/// brackets or operators. The parser recurses once per parenthesis and is
/// quadratic in the terms of a binary expression (100k nested parentheses
/// overflowed the stack of a reload; `x + x + ...` of 30k terms took
/// 15 s), so those never reach it.
fn precheck(selector: &str) -> Result<(), String> {
    if selector.len() > MAX_SELECTOR_BYTES {
        return Err(format!(
            "`match` of {} bytes is longer than the {MAX_SELECTOR_BYTES} a series selector may be",
            selector.len()
        ));
    }
    let mut quote = None;
    let mut escaped = false;
    let mut braces = 0;
    for c in selector.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        let fits = match c {
            '"' | '\'' | '`' => {
                quote = Some(c);
                true
            }
            '{' => {
                braces += 1;
                braces == 1
            }
            '}' => true,
            '=' | '!' | '~' | ',' => braces == 1,
            // `offset` and `@` are refused by name after parsing.
            '@' | '.' | '-' => braces == 0,
            c => c.is_alphanumeric() || c == '_' || c == ':' || c.is_whitespace(),
        };
        if !fits {
            let head: String = selector.chars().take(64).collect();
            return Err(format!(
                "`match` {head:?} is not a series selector (write `name{{label=\"value\"}}`): {c:?} has no place in one"
            ));
        }
    }
    Ok(())
}

/// A series selector (`name{label="value"}`) as the status API takes it:
/// the same checks as a rule's `match`, its regexes within `regex_budget`
/// bytes of automaton.
pub fn selector(text: &str, regex_budget: usize) -> Result<Selector, String> {
    let (names, labels) = selector_matchers(text)?;
    let mut left = regex_budget;
    for m in names.iter().chain(&labels) {
        left -= regex_bytes(m, left)?;
    }
    Ok(Selector { names, labels })
}

/// A PromQL series selector's matchers, split into those on the metric
/// name and those on other labels.
fn selector_matchers(selector: &str) -> Result<(Vec<Matcher>, Vec<Matcher>), String> {
    precheck(selector)?;
    let expr = promql_parser::parser::parse(selector).map_err(|e| {
        format!(
            "`match` {selector:?} is not a series selector: {}",
            one_line(&e)
        )
    })?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!(
            "`match` {selector:?} is not a series selector (write `name{{label=\"value\"}}`)"
        ));
    };
    if vs.offset.is_some() || vs.at.is_some() {
        return Err(format!(
            "`match` {selector:?}: offset and @ do not apply to pushed series"
        ));
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err(format!(
            "`match` {selector:?}: `or` in selectors is not supported; write one rule per alternative"
        ));
    }
    let mut names = Vec::new();
    let mut others = Vec::new();
    if let Some(name) = vs.name {
        names.push(Matcher::new(
            promql_parser::label::MatchOp::Equal,
            "__name__",
            &name,
        ));
    }
    for m in vs.matchers.matchers {
        if m.name == "__name__" {
            names.push(m);
        } else {
            others.push(m);
        }
    }
    Ok((names, others))
}

fn label_list(field: &str, mut names: Vec<String>) -> Result<Vec<String>, String> {
    for n in &names {
        if !is_label_name(n) || n.starts_with("__") {
            return Err(format!(
                "`{field}`: {n:?} is not a label name a series can carry"
            ));
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

fn duration(field: &str, text: &str) -> Result<Duration, String> {
    let d = promql_parser::util::parse_duration(text.trim())
        .map_err(|e| format!("`{field}` {text:?} is not a duration like 30s, 5m, 1h: {e}"))?;
    if d.is_zero() {
        return Err(format!("`{field}` must be longer than 0"));
    }
    if d.as_secs() >= u64::from(u32::MAX) {
        return Err(format!("`{field}` {text:?} is too long"));
    }
    Ok(d)
}
