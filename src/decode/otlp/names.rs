//! OTLP names to Prometheus names, as Prometheus' own OTLP receiver
//! translates them by default (underscore escaping with suffixes): a
//! metric name's characters outside `[a-zA-Z0-9_:]` become `_` (runs of
//! them one), the unit is appended as a word (`_seconds`, `_bytes`,
//! `_meters_per_second`), a monotonic sum ends in `_total`, a gauge of
//! unit `1` in `_ratio`; an attribute key's invalid characters become `_`,
//! and a key starting with a digit or a single `_` gets a `key` prefix.

/// The unit words of the UCUM units OpenTelemetry uses.
fn unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tebibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        _ => return None,
    })
}

/// The word of a unit after `/` (`m/s` is meters per second).
fn per_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// What the name of a metric ends in, beside its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suffix {
    /// A monotonic sum: `_total`.
    Total,
    /// A gauge (or non-monotonic sum) of unit `1`: `_ratio`.
    Ratio,
    /// Nothing more.
    None,
}

/// Splits `s` into its runs of `[a-zA-Z0-9]`... keeping `_` and `:`
/// inside words: the words of a name.
fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .flat_map(|w| w.split('_'))
        .filter(|w| !w.is_empty())
}

/// The unit's words (`seconds`, `meters_per_second`), empty for none or
/// for an annotation only (`{requests}`).
fn unit_words(unit: &str) -> Vec<String> {
    // Annotations in braces say what is counted: not part of the name.
    let mut bare = String::with_capacity(unit.len());
    let mut depth = 0usize;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 => bare.push(c),
            _ => {}
        }
    }
    let bare = bare.trim();
    if bare.is_empty() || bare == "1" {
        return Vec::new();
    }
    let (main, per) = match bare.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (bare, None),
    };
    let mut out: Vec<String> = Vec::new();
    if !main.is_empty() {
        match unit_word(main) {
            Some(w) => out.push(w.to_string()),
            None => out.extend(words(main).map(str::to_string)),
        }
    }
    if let Some(per) = per.filter(|p| !p.is_empty()) {
        out.push("per".into());
        match per_unit_word(per) {
            Some(w) => out.push(w.to_string()),
            None => out.extend(words(per).map(str::to_string)),
        }
    }
    out
}

/// The Prometheus name of an OTLP metric `name` of `unit`; `None` when
/// nothing of the name is left.
pub fn metric_name(name: &str, unit: &str, suffix: Suffix) -> Option<String> {
    let mut parts: Vec<&str> = words(name).collect();
    if parts.is_empty() {
        return None;
    }
    let unit = unit_words(unit);
    if suffix == Suffix::Total {
        // `_total` goes last, once.
        parts.retain(|w| *w != "total");
    }
    let mut out = parts.join("_");
    let tail: Vec<&str> = unit.iter().map(String::as_str).collect();
    if !tail.is_empty() && !out.ends_with(&tail.join("_")) {
        out.push('_');
        out.push_str(&tail.join("_"));
    }
    match suffix {
        Suffix::Total => out.push_str("_total"),
        Suffix::Ratio if !out.ends_with("_ratio") && out != "ratio" => out.push_str("_ratio"),
        _ => {}
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    Some(out)
}

/// The Prometheus label name of an attribute key (borrowed when it is one
/// already, as most are).
pub fn label_name(key: &str) -> std::borrow::Cow<'_, str> {
    // A single leading `_` gets the prefix; `__` (reserved) is kept, and
    // refused later.
    let single_underscore = key.starts_with('_') && !key.starts_with("__");
    let valid = key.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && !single_underscore;
    if valid {
        return std::borrow::Cow::Borrowed(key);
    }
    let mut out: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out.insert_str(0, "key");
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_prometheus_translates_them() {
        let n = |name, unit, s| metric_name(name, unit, s).unwrap();
        assert_eq!(
            n("http.server.duration", "ms", Suffix::None),
            "http_server_duration_milliseconds"
        );
        assert_eq!(
            n("http.server.request.count", "{request}", Suffix::Total),
            "http_server_request_count_total"
        );
        assert_eq!(n("requests_total", "1", Suffix::Total), "requests_total");
        assert_eq!(n("total.requests", "", Suffix::Total), "requests_total");
        assert_eq!(
            n("cpu.utilization", "1", Suffix::Ratio),
            "cpu_utilization_ratio"
        );
        assert_eq!(n("speed", "m/s", Suffix::None), "speed_meters_per_second");
        assert_eq!(n("io", "By", Suffix::Total), "io_bytes_total");
        assert_eq!(n("latency_seconds", "s", Suffix::None), "latency_seconds");
        assert_eq!(n("queue--depth", "", Suffix::None), "queue_depth");
        assert_eq!(n("2xx.count", "", Suffix::Total), "_2xx_count_total");
        assert_eq!(
            n("odd", "furlongs/fortnight", Suffix::None),
            "odd_furlongs_per_fortnight"
        );
        assert_eq!(metric_name("...", "s", Suffix::None), None);
        assert_eq!(label_name("http.method"), "http_method");
        assert_eq!(label_name("2fa"), "key_2fa");
        assert_eq!(label_name("_private"), "key_private");
        assert_eq!(label_name("__reserved"), "__reserved");
    }
}
