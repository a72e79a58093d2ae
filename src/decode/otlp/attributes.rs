//! Attributes as labels: `KeyValue`s walked off the wire, `AnyValue`s
//! rendered within the label value limit.

use std::borrow::Cow;

use super::names;
use crate::wire::{self, Reader, Wire};

const MAX_DEPTH: usize = 8;

/// The labels of one point: borrowed from the request where they can be.
pub(super) type Labels<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// The fields of a message; the first malformed one ends the walk with
/// its error (the request is then refused whole, so nothing read before it
/// is kept).
pub(super) fn walk(bytes: &[u8]) -> impl Iterator<Item = Result<(u32, Wire<'_>), &'static str>> {
    let mut r = Reader::new(bytes);
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let next = r.field().transpose();
        failed = matches!(next, Some(Err(_)));
        next
    })
}

/// A `KeyValue`: its key, and its `AnyValue`'s bytes, not yet rendered.
pub(super) fn key_and_value(bytes: &[u8]) -> Result<(&str, &[u8]), &'static str> {
    let (mut key, mut value): (&str, &[u8]) = ("", &[]);
    for item in walk(bytes) {
        let (field, w) = item?;
        match (field, w) {
            (1, w) => key = wire::string(w)?,
            (2, Wire::Bytes(v)) => value = v,
            _ => {}
        }
    }
    Ok((key, value))
}

/// Why a rendered attribute value is refused past its limit.
pub(super) const TOO_LONG: &str = "attribute value longer than --max-label-value-length";

/// An `AnyValue` as a label value of at most `most` bytes: strings as they
/// are, booleans and numbers as written, bytes in base64, arrays and maps
/// as JSON (as Prometheus renders them). A rendering is refused as soon as
/// it passes `most`, before more is allocated: each level of nesting
/// escapes the level below, so an unbounded rendering doubles per level
/// (a 1 KiB request once rendered to 400 MiB).
pub(super) fn any_value(
    bytes: &[u8],
    depth: usize,
    most: usize,
) -> Result<Cow<'_, str>, &'static str> {
    if depth > MAX_DEPTH {
        return Err("attribute value nested too deep");
    }
    let mut out = Cow::Borrowed("");
    for item in walk(bytes) {
        let (field, w) = item?;
        out = match (field, w) {
            (1, w) => Cow::Borrowed(wire::string(w)?),
            (2, Wire::Varint(v)) => Cow::Owned((v != 0).to_string()),
            (3, Wire::Varint(v)) => Cow::Owned((v as i64).to_string()),
            (4, Wire::Fixed64(v)) => Cow::Owned(crate::model::float::go(f64::from_bits(v))),
            (5, Wire::Bytes(array)) => {
                let mut json = Rendering::new(most);
                json.raw(b"[")?;
                let mut first = true;
                for item in walk(array) {
                    let (f, w) = item?;
                    if let (1, Wire::Bytes(item)) = (f, w) {
                        if !first {
                            json.raw(b",")?;
                        }
                        first = false;
                        json.string(&any_value(item, depth + 1, most)?)?;
                    }
                }
                json.raw(b"]")?;
                Cow::Owned(json.finish()?)
            }
            (6, Wire::Bytes(list)) => {
                // As a JSON object with sorted keys, the last of a key
                // kept: the pairs' renderings are held until sorted, so
                // they are held to `most` together.
                let mut pairs: Vec<(&str, Cow<'_, str>)> = Vec::new();
                let mut held = 2;
                for item in walk(list) {
                    let (f, w) = item?;
                    if let (1, Wire::Bytes(kv)) = (f, w) {
                        let (k, v) = key_and_value(kv)?;
                        let v = any_value(v, depth + 1, most)?;
                        held += k.len() + v.len() + 6;
                        if held > most {
                            return Err(TOO_LONG);
                        }
                        pairs.push((k, v));
                    }
                }
                pairs.sort_by(|a, b| a.0.cmp(b.0));
                let mut json = Rendering::new(most);
                json.raw(b"{")?;
                let mut first = true;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if pairs.get(i + 1).is_some_and(|next| next.0 == *k) {
                        continue;
                    }
                    if !first {
                        json.raw(b",")?;
                    }
                    first = false;
                    json.string(k)?;
                    json.raw(b":")?;
                    json.string(v)?;
                }
                json.raw(b"}")?;
                Cow::Owned(json.finish()?)
            }
            (7, Wire::Bytes(b)) => {
                use base64::Engine;
                if b.len().div_ceil(3) * 4 > most {
                    return Err(TOO_LONG);
                }
                Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b))
            }
            _ => continue,
        };
    }
    Ok(out)
}

/// A JSON rendering that refuses to grow past `most` bytes.
pub(super) struct Rendering {
    pub(super) out: Vec<u8>,
    pub(super) most: usize,
}

impl Rendering {
    pub(super) fn new(most: usize) -> Rendering {
        Rendering {
            out: Vec::new(),
            most,
        }
    }

    pub(super) fn raw(&mut self, b: &[u8]) -> Result<(), &'static str> {
        std::io::Write::write_all(self, b).map_err(|_| TOO_LONG)
    }

    /// `s` as a JSON string, escaped as serde_json escapes it.
    pub(super) fn string(&mut self, s: &str) -> Result<(), &'static str> {
        serde_json::to_writer(&mut *self, s).map_err(|_| TOO_LONG)
    }

    pub(super) fn finish(self) -> Result<String, &'static str> {
        String::from_utf8(self.out).map_err(|_| "attribute value is not UTF-8")
    }
}

impl std::io::Write for Rendering {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + b.len() > self.most {
            return Err(std::io::Error::other(TOO_LONG));
        }
        self.out.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The labels of a point being read, and the longest rendered attribute
/// value they take (`--max-label-value-length`).
pub(super) struct Attributes<'l, 'a> {
    pub(super) labels: &'l mut Labels<'a>,
    pub(super) most: usize,
}

/// Appends the label of one attribute `KeyValue`.
pub(super) fn attribute<'a>(
    bytes: &'a [u8],
    attrs: &mut Attributes<'_, 'a>,
) -> Result<(), &'static str> {
    let (key, value) = match string_attribute(bytes) {
        Some((key, value)) => (key, Cow::Borrowed(value)),
        None => {
            let (key, value) = key_and_value(bytes)?;
            (key, any_value(value, 0, attrs.most)?)
        }
    };
    attrs.labels.push((names::label_name(key), value));
    Ok(())
}

/// A `KeyValue` laid out as every SDK writes a string attribute (key, then
/// a value holding only `string_value`), read without the general walk: the
/// most frequent message of an export. `None` for anything else.
pub(super) fn string_attribute(bytes: &[u8]) -> Option<(&str, &str)> {
    // Lengths below 128 (one byte); longer ones take the general path.
    let short = |b: &[u8], tag: u8| -> Option<(usize, usize)> {
        match b {
            [t, n, ..] if *t == tag && *n < 0x80 && b.len() >= 2 + usize::from(*n) => {
                Some((2, 2 + usize::from(*n)))
            }
            _ => None,
        }
    };
    let (start, end) = short(bytes, 0x0A)?;
    let key = &bytes[start..end];
    let rest = &bytes[end..];
    let (vstart, vend) = short(rest, 0x12)?;
    if vend != rest.len() {
        return None;
    }
    let any = &rest[vstart..vend];
    let (sstart, send) = short(any, 0x0A)?;
    if send != any.len() {
        return None;
    }
    Some((
        std::str::from_utf8(key).ok()?,
        std::str::from_utf8(&any[sstart..send]).ok()?,
    ))
}
