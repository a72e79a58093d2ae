//! Text 0.0.4 and OpenMetrics 1.0: a line parser and the rules on what it
//! read.

use std::collections::{BTreeMap, HashSet};

use crate::{
    Dialect, Kind, check_buckets, check_counter, check_family_names, check_label_names,
    is_metric_name, sample_names,
};

/// Checks a Prometheus text 0.0.4 scrape.
pub fn check_text(body: &str) -> Result<(), String> {
    check(body, Dialect::Text)
}

/// Checks an OpenMetrics 1.0 text scrape.
pub fn check_openmetrics(body: &str) -> Result<(), String> {
    check(body, Dialect::OpenMetrics)
}

struct Sample {
    line: usize,
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

struct Family {
    name: String,
    kind: Kind,
    typed: bool,
    help: bool,
    unit: bool,
    samples: Vec<Sample>,
}

impl Family {
    fn new(name: &str) -> Family {
        Family {
            name: name.to_string(),
            kind: Kind::Untyped,
            typed: false,
            help: false,
            unit: false,
            samples: Vec::new(),
        }
    }
}

fn kind_of(word: &str, dialect: Dialect) -> Option<Kind> {
    Some(match (dialect, word) {
        (_, "counter") => Kind::Counter,
        (_, "gauge") => Kind::Gauge,
        (_, "histogram") => Kind::Histogram,
        (_, "summary") => Kind::Summary,
        (Dialect::Text, "untyped") => Kind::Untyped,
        (Dialect::OpenMetrics, "unknown") => Kind::Untyped,
        (Dialect::OpenMetrics, "gaugehistogram") => Kind::GaugeHistogram,
        (Dialect::OpenMetrics, "info") => Kind::Info,
        (Dialect::OpenMetrics, "stateset") => Kind::StateSet,
        _ => return None,
    })
}

fn parse_value(tok: &str, dialect: Dialect) -> Option<f64> {
    match tok {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if dialect == Dialect::Text && tok.eq_ignore_ascii_case("inf") => Some(f64::INFINITY),
        _ => {
            let digits = tok.trim_start_matches(['+', '-']);
            let ok = !digits.is_empty()
                && digits
                    .bytes()
                    .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
            if ok { tok.parse().ok() } else { None }
        }
    }
}

/// Parses `{a="1",b="2"}` (the opening brace already consumed); returns
/// the pairs and the rest after `}`.
type Labels = Vec<(String, String)>;

fn parse_labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut out = Vec::new();
    loop {
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((out, rest));
        }
        let end = s.find('=').ok_or_else(|| "label without '='".to_string())?;
        let name = &s[..end];
        s = s[end + 1..]
            .strip_prefix('"')
            .ok_or_else(|| format!("label {name}: value not quoted"))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let close = loop {
            match chars.next() {
                None => return Err(format!("label {name}: unterminated value")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("label {name}: bad escape {other:?}")),
                },
                Some((_, '\n')) => return Err(format!("label {name}: raw newline")),
                Some((_, c)) => value.push(c),
            }
        };
        out.push((name.to_string(), value));
        s = &s[close + 1..];
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
            // OpenMetrics and text allow no trailing comma before '}' here:
            // we never write one, so a strict reading refuses it.
            if s.starts_with('}') {
                return Err("trailing comma in label set".into());
            }
        } else if !s.starts_with('}') {
            return Err(format!("after label {name}: expected ',' or '}}'"));
        }
    }
}

fn check(body: &str, dialect: Dialect) -> Result<(), String> {
    let om = dialect == Dialect::OpenMetrics;
    if !body.is_empty() && !body.ends_with('\n') {
        return Err("body does not end with a newline".into());
    }
    let mut families: Vec<Family> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut eof = false;
    let lines: Vec<&str> = body.split_terminator('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let at = |e: String| format!("line {n}: {e}");
        if eof {
            return Err(at("content after # EOF".into()));
        }
        if line.is_empty() {
            if om {
                return Err(at("empty line".into()));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            if om && *line == "# EOF" {
                eof = true;
                continue;
            }
            let mut parts = rest.trim_start_matches(' ').splitn(3, ' ');
            let word = parts.next().unwrap_or("");
            let metadata = matches!(word, "HELP" | "TYPE") || (om && word == "UNIT");
            if !metadata {
                if om {
                    return Err(at(format!("unknown comment {line:?}")));
                }
                continue;
            }
            let name = parts.next().unwrap_or("");
            let arg = parts.next().unwrap_or("");
            if !is_metric_name(name) {
                return Err(at(format!("# {word} with invalid name {name:?}")));
            }
            let same = families
                .last()
                .is_some_and(|f| f.name == name && f.samples.is_empty());
            if !same {
                if !seen.insert(name.to_string()) {
                    return Err(at(format!("family {name} appears twice")));
                }
                families.push(Family::new(name));
            }
            let f = families.last_mut().expect("pushed above");
            match word {
                "HELP" => {
                    if f.help {
                        return Err(at(format!("second HELP for {name}")));
                    }
                    f.help = true;
                    check_help(arg, om).map_err(at)?;
                }
                "TYPE" => {
                    if f.typed {
                        return Err(at(format!("second TYPE for {name}")));
                    }
                    f.typed = true;
                    f.kind =
                        kind_of(arg, dialect).ok_or_else(|| at(format!("unknown type {arg:?}")))?;
                }
                _ => {
                    if f.unit {
                        return Err(at(format!("second UNIT for {name}")));
                    }
                    f.unit = true;
                }
            }
            continue;
        }
        // A sample.
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(line.len());
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(at(format!("invalid sample name {name:?}")));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            let (l, r) = parse_labels(r).map_err(at)?;
            labels = l;
            rest = r;
        }
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("expected one space before the value".into()))?;
        let mut toks = rest.splitn(2, ' ');
        let vtok = toks.next().unwrap_or("");
        let value =
            parse_value(vtok, dialect).ok_or_else(|| at(format!("invalid value {vtok:?}")))?;
        if let Some(after) = toks.next() {
            // A timestamp (and in OpenMetrics an exemplar): we never write
            // either, so only a well-formed timestamp is let through.
            if after.parse::<f64>().is_err() {
                return Err(at(format!("unexpected text after the value: {after:?}")));
            }
        }
        check_label_names(
            &format!("sample {name}"),
            labels.iter().map(|(n, _)| n.as_str()),
        )
        .map_err(at)?;
        let fits = |f: &Family| {
            sample_names(&f.name, f.kind, dialect)
                .iter()
                .any(|s| s == name)
        };
        match families.last() {
            Some(f) if fits(f) => {}
            _ => {
                // A sample without metadata is a family of its own, untyped
                // (OpenMetrics: unknown), named as the sample.
                if !seen.insert(name.to_string()) {
                    return Err(at(format!(
                        "sample {name} belongs to no current family (family interleaved or repeated)"
                    )));
                }
                families.push(Family::new(name));
            }
        }
        let f = families.last_mut().expect("pushed above");
        f.samples.push(Sample {
            line: n,
            name: name.to_string(),
            labels,
            value,
        });
    }
    if om && !eof {
        return Err("no # EOF line".into());
    }
    check_family_names(families.iter().map(|f| (f.name.as_str(), f.kind)), dialect)?;
    for f in &families {
        check_family(f, dialect)?;
    }
    Ok(())
}

fn check_help(text: &str, om: bool) -> Result<(), String> {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\') | Some('n') => {}
                Some('"') if om => {}
                other => {
                    if om {
                        return Err(format!("bad escape in HELP: {other:?}"));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The rules on one family's samples.
fn check_family(f: &Family, dialect: Dialect) -> Result<(), String> {
    let om = dialect == Dialect::OpenMetrics;
    let mut series: HashSet<(String, Vec<(String, String)>)> = HashSet::new();
    // Histogram series: labels without `le` -> buckets, count, sum seen.
    type Key = Vec<(String, String)>;
    type Parts = (Vec<(f64, f64)>, Option<f64>, bool);
    let mut hist: BTreeMap<Key, Parts> = BTreeMap::new();
    for s in &f.samples {
        let what = format!("line {}: {}", s.line, s.name);
        let mut sorted = s.labels.clone();
        sorted.sort();
        if !series.insert((s.name.clone(), sorted)) {
            return Err(format!("{what}: series written twice"));
        }
        let suffix = &s.name[f.name.len()..];
        let has = |l: &str| s.labels.iter().any(|(n, _)| n == l);
        match f.kind {
            Kind::Counter => {
                let value_sample = if om {
                    suffix == "_total"
                } else {
                    suffix.is_empty()
                };
                if value_sample {
                    check_counter(&what, s.value)?;
                }
            }
            Kind::Histogram | Kind::GaugeHistogram => {
                let rest: Key = s
                    .labels
                    .iter()
                    .filter(|(n, _)| n != "le")
                    .cloned()
                    .collect();
                let entry = hist.entry(rest).or_insert((Vec::new(), None, false));
                match suffix {
                    "_bucket" => {
                        let le = s
                            .labels
                            .iter()
                            .find(|(n, _)| n == "le")
                            .ok_or_else(|| format!("{what}: bucket without le"))?;
                        let bound = parse_value(&le.1, dialect)
                            .ok_or_else(|| format!("{what}: invalid le {:?}", le.1))?;
                        if om && !le.1.contains(['.', 'e', 'I', 'N']) {
                            return Err(format!(
                                "{what}: le {:?} is not a float in canonical form",
                                le.1
                            ));
                        }
                        entry.0.push((bound, s.value));
                    }
                    "_count" | "_gcount" => {
                        if has("le") {
                            return Err(format!("{what}: le on a count"));
                        }
                        entry.1 = Some(s.value);
                    }
                    _ => {
                        if has("le") {
                            return Err(format!("{what}: le outside a bucket"));
                        }
                        entry.2 = true;
                    }
                }
            }
            Kind::Summary => {
                if suffix.is_empty() {
                    if !has("quantile") {
                        return Err(format!("{what}: quantile sample without quantile"));
                    }
                } else if has("quantile") {
                    return Err(format!("{what}: quantile label on {suffix}"));
                } else if suffix == "_count" && (s.value.is_nan() || s.value < 0.0) {
                    return Err(format!("{what}: count {}", s.value));
                }
            }
            _ => {}
        }
    }
    for (labels, (buckets, count, _)) in &hist {
        let what = format!("histogram {}{labels:?}", f.name);
        check_buckets(&what, buckets, *count, true)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_and_refuses_each_rule() {
        check_text("# HELP a x\n# TYPE a counter\na{b=\"1\"} 1\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n").unwrap();
        check_openmetrics("# TYPE a counter\na_total 1\na_created 1.5\n# EOF\n").unwrap();
        for bad in [
            "a{__x=\"1\"} 1\n",
            "a{b=\"1\",b=\"2\"} 1\n",
            "a 1\na 2\n",
            "# TYPE a counter\na -1\n",
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\nh_sum 1\n",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n# TYPE h_sum gauge\nh_sum 1\n",
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count{le=\"1\"} 1\n",
            "a 1\nb 1\na 2\n",
        ] {
            assert!(check_text(bad).is_err(), "{bad}");
        }
        for bad in [
            "# TYPE a counter\na_total 1\n",
            "# TYPE a counter\na_total 1\n# TYPE a_created gauge\na_created 1\n# EOF\n",
            "# TYPE a counter\na_total 1\n# TYPE a_total counter\na_total_total 1\n# EOF\n",
            "# TYPE a counter\na_total 1\n# TYPE a gauge\na 1\n# EOF\n",
        ] {
            assert!(check_openmetrics(bad).is_err(), "{bad}");
        }
    }
}
