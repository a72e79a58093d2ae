//! Series identity: label names, path labels, `--drop-label`, and the
//! [`SeriesKey`] byte encoding every decoder writes and every encoder reads.
//!
//! A key is the sorted label pairs as `name 0x00 value 0x00 ...`, with a NUL
//! inside a value written as `0x00 0x01` (a label name never starts with 0x01).
//! Byte order of keys is then the order of their sorted label pairs (but for
//! values holding NUL), so the store sorts series by sorting keys, and an
//! empty label set is the empty key. Labels with an empty value are left out,
//! as Prometheus treats `{a=""}` as no label `a`.

use super::kind::Kind;
use super::limits::Limits;
use std::borrow::Cow;

/// A series' identity within its family (see the module docs).
pub type SeriesKey = Box<[u8]>;

/// What each byte may be in a name, one table lookup per byte: every name
/// of every pushed series is checked, and the chains of range tests the
/// `is_ascii_*` methods make cost several times more.
const LABEL_START: u8 = 1;
/// A byte a label name may hold after its first (`[a-zA-Z0-9_]`).
const LABEL_REST: u8 = 2;
/// `:`, which metric names (not label names) may hold anywhere.
const COLON: u8 = 4;

static NAME_BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphabetic() || b == b'_' {
            t[c] = LABEL_START | LABEL_REST;
        } else if b.is_ascii_digit() {
            t[c] = LABEL_REST;
        } else if b == b':' {
            t[c] = COLON;
        }
        c += 1;
    }
    t
};

/// Whether `c` may start a label name (`[a-zA-Z_]`).
#[inline]
pub(crate) fn label_start(c: u8) -> bool {
    NAME_BYTES[c as usize] & LABEL_START != 0
}

/// Whether `c` may follow the first byte of a label name (`[a-zA-Z0-9_]`).
#[inline]
pub(crate) fn label_rest(c: u8) -> bool {
    NAME_BYTES[c as usize] & LABEL_REST != 0
}

/// Whether `c` may start a metric name (`[a-zA-Z_:]`).
#[inline]
pub(crate) fn metric_start(c: u8) -> bool {
    NAME_BYTES[c as usize] & (LABEL_START | COLON) != 0
}

/// Whether `c` may follow the first byte of a metric name (`[a-zA-Z0-9_:]`).
#[inline]
pub(crate) fn metric_rest(c: u8) -> bool {
    NAME_BYTES[c as usize] & (LABEL_REST | COLON) != 0
}

/// Whether `name` is a valid Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
#[inline]
pub fn is_label_name(name: &str) -> bool {
    match name.as_bytes() {
        [first, rest @ ..] => label_start(*first) && rest.iter().all(|&c| label_rest(c)),
        [] => false,
    }
}

/// Whether `name` is reserved for Prometheus' own use (`__name__`,
/// `__address__`...): a label a sender may not set, as a scraper would drop
/// or misread it.
#[inline]
pub fn is_reserved_label(name: &str) -> bool {
    name.starts_with("__")
}

/// The label the exposition formats write themselves on a family of `kind`
/// (`le` on histogram buckets, `quantile` on summary quantiles): a series
/// of that family may not carry it, or a bucket would get it twice.
pub fn format_label(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Histogram => Some("le"),
        Kind::Summary => Some("quantile"),
        _ => None,
    }
}

/// Checks a label name a sender gave: valid and not reserved. Inlined, the
/// reasons apart: it runs for every label of every pushed series.
#[inline]
fn check_name(name: &str) -> Result<(), String> {
    if is_label_name(name) && !is_reserved_label(name) {
        return Ok(());
    }
    Err(name_refusal(name))
}

#[cold]
fn name_refusal(name: &str) -> String {
    if is_reserved_label(name) {
        format!(
            "label name {} is reserved (names starting with __ are Prometheus' own)",
            truncate(name)
        )
    } else {
        format!("invalid label name {:?}", truncate(name))
    }
}

/// Whether `name` is a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(name: &str) -> bool {
    match name.as_bytes() {
        [first, rest @ ..] => metric_start(*first) && rest.iter().all(|&c| metric_rest(c)),
        [] => false,
    }
}

/// The label rules of one push: labels from the push path (or the gRPC
/// request's `labels`) that replace body labels of the same name, and the
/// names `--drop-label` removes.
#[derive(Debug, Clone, Default)]
pub struct LabelRules {
    /// Sorted by name, names unique and valid.
    fixed: Vec<(String, String)>,
    /// Sorted.
    drop: Vec<String>,
    limits: Limits,
    /// A label the gateway writes itself (`--replica-label` while
    /// remote-write is on): no series may carry it.
    owned: Option<std::sync::Arc<str>>,
}

impl LabelRules {
    /// Rules for a push with these path labels (validated: names valid and
    /// given once) and these dropped names. On error returns the reason.
    pub fn new(
        mut fixed: Vec<(String, String)>,
        drop: &[String],
        limits: Limits,
    ) -> Result<LabelRules, String> {
        if fixed.len() > limits.max_labels {
            return Err(format!(
                "{} labels given with the push, over the limit of {}",
                fixed.len(),
                limits.max_labels
            ));
        }
        for (name, value) in &fixed {
            check_name(name)?;
            check_lengths(name, value, &limits)?;
        }
        fixed.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = fixed.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(format!("label {} given twice", w[0].0));
        }
        let mut drop = drop.to_vec();
        drop.sort();
        fixed.retain(|(n, _)| drop.binary_search(n).is_err());
        Ok(LabelRules {
            fixed,
            drop,
            limits,
            owned: None,
        })
    }

    /// These rules, also refusing any series that carries `label` (one the
    /// gateway writes itself); on error, the reason.
    pub fn owning(mut self, label: Option<std::sync::Arc<str>>) -> Result<LabelRules, String> {
        if let Some(l) = &label
            && self.fixed.iter().any(|(n, _)| n.as_str() == &**l)
        {
            return Err(owned_refusal(l));
        }
        self.owned = label;
        Ok(self)
    }

    /// Writes the key of a series of a family of `kind` with these body
    /// labels into `out` (cleared first). Sorts `labels` in place. On error
    /// (a name invalid, reserved, given twice, or the label the format
    /// writes for `kind`) returns the reason, without the metric name.
    pub fn write_key<N: AsRef<str>, V: AsRef<str>>(
        &self,
        kind: Kind,
        labels: &mut [(N, V)],
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        out.clear();
        // Names mostly differ in their first byte: compared first, it spares
        // a call to memcmp per comparison (a tenth of a protobuf push's time).
        labels.sort_unstable_by(|a, b| {
            let (a, b) = (a.0.as_ref().as_bytes(), b.0.as_ref().as_bytes());
            match (a.first(), b.first()) {
                (Some(x), Some(y)) if x != y => x.cmp(y),
                _ => a.cmp(b),
            }
        });
        if labels.len() > self.limits.max_labels {
            return Err(format!(
                "series has {} labels, over the limit of {}",
                labels.len(),
                self.limits.max_labels
            ));
        }
        for (i, (name, value)) in labels.iter().enumerate() {
            let name = name.as_ref();
            check_name(name)?;
            check_lengths(name, value.as_ref(), &self.limits)?;
            if i > 0 && labels[i - 1].0.as_ref() == name {
                return Err(format!("label {name} given twice"));
            }
        }
        if let Some(owned) = &self.owned
            && labels.iter().any(|(n, _)| n.as_ref() == &**owned)
            && !self.is_dropped(owned)
        {
            return Err(owned_refusal(owned));
        }
        if let Some(own) = format_label(kind)
            && (labels.iter().any(|(n, _)| n.as_ref() == own)
                || self.fixed.iter().any(|(n, _)| n == own))
        {
            return Err(format_label_refusal(own, kind));
        }
        // Merge the two sorted lists; a fixed label wins over a body label.
        // Both sorted: one walk, so a series costs labels + path labels,
        // not their product.
        let mut written = 0;
        let mut fixed = self.fixed.iter().peekable();
        let mut last_fixed: Option<&str> = None;
        for (name, value) in labels.iter() {
            let name = name.as_ref();
            while let Some((fname, fvalue)) = fixed.next_if(|(f, _)| f.as_str() <= name) {
                written += push_pair(out, fname, fvalue);
                last_fixed = Some(fname);
            }
            if last_fixed == Some(name) || self.is_dropped(name) {
                continue;
            }
            written += push_pair(out, name, value.as_ref());
        }
        for (fname, fvalue) in fixed {
            written += push_pair(out, fname, fvalue);
        }
        // Path and request labels count as the body's do.
        if written > self.limits.max_labels || out.len() > self.limits.max_label_bytes {
            return Err(self.size_refusal(written, out.len()));
        }
        Ok(())
    }

    #[cold]
    fn size_refusal(&self, labels: usize, bytes: usize) -> String {
        if labels > self.limits.max_labels {
            format!(
                "series has {labels} labels with the path's, over the limit of {}",
                self.limits.max_labels
            )
        } else {
            format!(
                "series labels take {bytes} bytes, over the limit of {} (--max-label-bytes)",
                self.limits.max_label_bytes
            )
        }
    }

    /// The limits these rules check.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn is_dropped(&self, name: &str) -> bool {
        !self.drop.is_empty() && self.drop.iter().any(|d| d == name)
    }
}

#[cold]
fn owned_refusal(label: &str) -> String {
    format!("label {label} is the gateway's replica label (--replica-label) and may not be pushed")
}

#[cold]
fn format_label_refusal(own: &str, kind: Kind) -> String {
    format!(
        "label {own} is written by the format on a {} and may not be given",
        kind.as_str()
    )
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[inline]
fn check_lengths(name: &str, value: &str, limits: &Limits) -> Result<(), String> {
    if name.len() > limits.max_name_length || value.len() > limits.max_label_value_length {
        return Err(length_refusal(name, value, limits));
    }
    Ok(())
}

#[cold]
fn length_refusal(name: &str, value: &str, limits: &Limits) -> String {
    if name.len() > limits.max_name_length {
        format!(
            "label name {}... is {} bytes, over the limit of {}",
            truncate(name),
            name.len(),
            limits.max_name_length
        )
    } else {
        format!(
            "label {} has a {}-byte value, over the limit of {}",
            truncate(name),
            value.len(),
            limits.max_label_value_length
        )
    }
}

/// Appends a pair unless its value is empty; returns how many were
/// appended.
fn push_pair(out: &mut Vec<u8>, name: &str, value: &str) -> usize {
    if value.is_empty() {
        return 0;
    }
    let v = value.as_bytes();
    // One reservation for the pair, so the copies below do not each check
    // for room.
    out.reserve(name.len() + v.len() + 2);
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    // Values are short: a plain scan is cheaper than memchr's SIMD set-up.
    if !v.contains(&0) {
        out.extend_from_slice(v);
    } else {
        for &c in v {
            out.push(c);
            if c == 0 {
                out.push(1);
            }
        }
    }
    out.push(0);
    1
}

/// The label pairs of a key, in order: `(name, value)` as bytes.
pub fn pairs(key: &[u8]) -> Pairs<'_> {
    Pairs { rest: key }
}

/// Iterator over a key's label pairs; see [`pairs`].
#[derive(Debug, Clone)]
pub struct Pairs<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], Cow<'a, [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        // Names and values are a few bytes: a plain scan costs less than
        // memchr's SIMD set-up (memchr was a sixth of a protobuf scrape's
        // instructions).
        let n = self.rest.iter().position(|&c| c == 0)?;
        let name = &self.rest[..n];
        let vstart = n + 1;
        let mut end = vstart;
        let mut escaped = false;
        loop {
            match self.rest[end..].iter().position(|&c| c == 0) {
                Some(i) => {
                    end += i;
                    if self.rest.get(end + 1) == Some(&1) {
                        escaped = true;
                        end += 2;
                    } else {
                        break;
                    }
                }
                None => {
                    end = self.rest.len();
                    break;
                }
            }
        }
        let raw = &self.rest[vstart..end];
        self.rest = self.rest.get(end + 1..).unwrap_or(&[]);
        let value = if escaped {
            unescape(raw)
        } else {
            Cow::Borrowed(raw)
        };
        Some((name, value))
    }
}

/// The value of label `name` in a key as it is stored there (a NUL in it
/// still written `0x00 0x01`; see [`unescape`]), if the key has it. Keys
/// are sorted by name: the search stops at the first name past it.
pub fn raw_value<'a>(key: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut rest = key;
    while !rest.is_empty() {
        let n = memchr::memchr(0, rest)?;
        let found = &rest[..n] == name;
        if !found && &rest[..n] > name {
            return None;
        }
        // The value ends at the first NUL not followed by 0x01.
        let mut end = n + 1;
        while end < rest.len() && !(rest[end] == 0 && rest.get(end + 1) != Some(&1)) {
            end += if rest[end] == 0 { 2 } else { 1 };
        }
        if found {
            return Some(&rest[n + 1..end.min(rest.len())]);
        }
        rest = rest.get(end + 1..).unwrap_or(&[]);
    }
    None
}

/// A value from [`raw_value`] as it was given.
pub fn unescape(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.contains(&0) {
        return Cow::Borrowed(raw);
    }
    let mut v = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        v.push(raw[i]);
        i += if raw[i] == 0 { 2 } else { 1 };
    }
    Cow::Owned(v)
}

/// The label pairs of a key, in order, as `(name, the pair's bytes in
/// the key)`: copying the bytes of some pairs, in order, makes the key of
/// those labels.
pub fn raw_pairs(key: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = key;
    std::iter::from_fn(move || {
        let before = rest;
        let mut it = pairs(rest);
        let (name, _) = it.next()?;
        rest = it.rest;
        Some((name, &before[..before.len() - rest.len()]))
    })
}

/// Whether `key` reads whole as a key's label pairs: every name a label
/// name, every value UTF-8, each pair ended by its NUL.
pub fn is_key(key: &[u8]) -> bool {
    let mut it = pairs(key);
    let mut read = 0;
    loop {
        let before = it.rest.len();
        let Some((name, value)) = it.next() else {
            return read == key.len();
        };
        if !std::str::from_utf8(name).is_ok_and(is_label_name)
            || std::str::from_utf8(&value).is_err()
            || key.get(read + before - it.rest.len() - 1) != Some(&0)
        {
            return false;
        }
        read += before - it.rest.len();
    }
}

/// A key as `{a="1",b="2"}` (`{}` when empty), for error messages.
pub fn describe(key: &[u8]) -> String {
    let pairs: Vec<String> = pairs(key)
        .map(|(n, v)| {
            format!(
                "{}={:?}",
                String::from_utf8_lossy(n),
                String::from_utf8_lossy(&v)
            )
        })
        .collect();
    format!("{{{}}}", pairs.join(","))
}

/// Whether the key's labels include every pair of `matchers` (names sorted
/// or not); used by `DELETE /metrics/<labels>`.
pub fn contains_all(key: &[u8], matchers: &[(String, String)]) -> bool {
    matchers.iter().all(|(mname, mvalue)| {
        let found = pairs(key).find(|(n, _)| *n == mname.as_bytes());
        match found {
            Some((_, v)) => *v == *mvalue.as_bytes(),
            None => mvalue.is_empty(),
        }
    })
}

#[cfg(test)]
mod tests;
