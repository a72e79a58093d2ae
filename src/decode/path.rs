//! Push path labels: `/metrics/<name>/<value>/...` (contract §2), as the
//! Pushgateway and its client libraries write them, including `<name>@base64`
//! values in base64url (padding optional; `=` alone is the empty value).

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};

use crate::error::Rejection;
use crate::model::labels::{is_label_name, is_reserved_label};

/// Parses what follows `/metrics` in a raw (percent-encoded) request path
/// into label pairs. `""` and `"/"` give no labels.
pub fn parse(raw: &str) -> Result<Vec<(String, String)>, Rejection> {
    let rest = raw.strip_prefix('/').unwrap_or(raw);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if !parts.len().is_multiple_of(2) {
        return Err(Rejection::invalid(format!(
            "push path has {} parts after /metrics: labels come as <name>/<value> pairs",
            parts.len()
        )));
    }
    let mut labels: Vec<(String, String)> = Vec::with_capacity(parts.len() / 2);
    for pair in parts.chunks(2) {
        let name = percent_decode(pair[0])?;
        let value = percent_decode(pair[1])?;
        let (name, value) = match name.strip_suffix("@base64") {
            Some(n) => (n.to_string(), base64_value(n, &value)?),
            None => (name, value),
        };
        if !is_label_name(&name) || is_reserved_label(&name) {
            return Err(Rejection::invalid(format!(
                "invalid label name {name:?} in push path{}",
                if is_reserved_label(&name) {
                    " (names starting with __ are reserved)"
                } else {
                    ""
                }
            )));
        }
        if labels.iter().any(|(n, _)| *n == name) {
            return Err(Rejection::invalid(format!(
                "label {name} given twice in push path"
            )));
        }
        labels.push((name, value));
    }
    Ok(labels)
}

fn percent_decode(s: &str) -> Result<String, Rejection> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Rejection::invalid(format!("push path part {s:?} is not UTF-8")))
}

fn base64_value(name: &str, value: &str) -> Result<String, Rejection> {
    if value == "=" || value.is_empty() {
        return Ok(String::new());
    }
    let engine = if value.ends_with('=') {
        &URL_SAFE
    } else {
        &URL_SAFE_NO_PAD
    };
    let bytes = engine.decode(value).map_err(|e| {
        Rejection::invalid(format!(
            "label {name}: invalid base64url value {value:?}: {e}"
        ))
    })?;
    String::from_utf8(bytes)
        .map_err(|_| Rejection::invalid(format!("label {name}: base64 value is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn ok(p: &str) -> Vec<(String, String)> {
        parse(p).unwrap()
    }

    #[test]
    fn pairs_and_base64() {
        assert!(ok("").is_empty());
        assert!(ok("/").is_empty());
        assert_eq!(
            ok("/job/a/x/y"),
            vec![("job".into(), "a".into()), ("x".into(), "y".into())]
        );
        assert_eq!(
            ok("/job@base64/L3Zhci90bXA"),
            vec![("job".into(), "/var/tmp".into())]
        );
        assert_eq!(
            ok("/job@base64/L3Zhci90bXA="),
            vec![("job".into(), "/var/tmp".into())]
        );
        assert_eq!(
            ok("/job/a/e@base64/="),
            vec![("job".into(), "a".into()), ("e".into(), "".into())]
        );
        assert_eq!(ok("/job/a%20b/"), vec![("job".into(), "a b".into())]);
    }

    #[test]
    fn bad_paths() {
        for p in [
            "/job",
            "/job/a/x",
            "/1x/a",
            "/a/1/a/2",
            "/j@base64/!!",
            "/a-b/c",
        ] {
            assert!(parse(p).is_err(), "{p}");
        }
    }
}
