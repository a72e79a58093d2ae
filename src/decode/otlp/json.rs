//! OTLP/JSON to the OTLP protobuf encoding, streamed: each JSON value is
//! written as its protobuf field as it is read (a serde `DeserializeSeed`
//! per message schema), so no JSON tree is built — a request costs about
//! its protobuf size, not the several times its JSON size a tree would —
//! and the protobuf decoder then reads it as any export. Only the fields
//! the decoder reads are declared; others are skipped. Keys are the
//! lowerCamelCase names of the OTLP/JSON spec (snake_case is accepted
//! too); 64-bit integers come as numbers or strings, doubles may be
//! `"NaN"`, `"Infinity"`, `"-Infinity"`, enums integers (or names).

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::Rejection;
use crate::wire::{FIXED64, LEN, VARINT, key, varint};

mod schema;

use schema::{Field, Kind, MAX_DEPTH, REQUEST};

/// The protobuf encoding of an OTLP/JSON `ExportMetricsServiceRequest`,
/// or why the JSON is not one. Every byte written is passed to `charge`
/// first (in steps of [`Budget::STEP`]), so the memory the protobuf takes
/// is reserved as it is written: a few KiB of gzip JSON of packed zeros
/// write 8 bytes of protobuf for every 2 of JSON, and is refused by the
/// budget before it holds them, not after.
pub fn to_protobuf(
    json: &[u8],
    charge: &dyn Fn(usize) -> Result<(), Rejection>,
) -> Result<Vec<u8>, Rejection> {
    let capacity = json.len() / 2;
    charge(capacity)?;
    let budget = Budget {
        charge,
        held: Cell::new(0),
        charged: Cell::new(capacity),
        refused: Cell::new(None),
    };
    let mut out = Vec::with_capacity(capacity);
    let mut de = serde_json::Deserializer::from_slice(json);
    let done = Message {
        schema: REQUEST,
        out: &mut out,
        depth: 0,
        budget: &budget,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    if let Some(refused) = budget.refused.take() {
        return Err(refused);
    }
    done.map_err(|e| {
        Rejection::Invalid(format!(
            "not a valid OTLP/JSON ExportMetricsServiceRequest: {e}"
        ))
    })?;
    Ok(out)
}

/// Where the transcoder charges the bytes it writes. A nested message is
/// written into a buffer of its own, then copied into its parent's and
/// dropped: what is held at once is the output so far and the chain of
/// buffers of the message being read. That is counted (`held`), and its
/// highest mark charged.
struct Budget<'c> {
    charge: &'c dyn Fn(usize) -> Result<(), Rejection>,
    held: Cell<usize>,
    charged: Cell<usize>,
    /// Why `charge` refused, to be answered instead of a JSON error.
    refused: Cell<Option<Rejection>>,
}

impl Budget<'_> {
    /// Charged at least this many bytes at a time: the shared counter is
    /// touched once per step, not once per value.
    const STEP: usize = 4 << 10;

    /// Counts `bytes` about to be written, charging what passes the mark.
    fn take<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        let held = self.held.get() + bytes;
        self.held.set(held);
        let charged = self.charged.get();
        if held <= charged {
            return Ok(());
        }
        let step = (held - charged).max(Self::STEP);
        self.charged.set(charged + step);
        (self.charge)(step).map_err(|r| {
            self.refused.set(Some(r));
            E::custom("over the byte budget")
        })
    }

    /// Counts a buffer of `bytes` emptied or dropped.
    fn release(&self, bytes: usize) {
        self.held.set(self.held.get().saturating_sub(bytes));
    }
}

/// [`Budget::STEP`], for the tests of what is charged.
#[cfg(test)]
pub(crate) const STEP_FOR_TESTS: usize = Budget::STEP;

/// The most bytes a varint, a 64-bit value or a field key takes.
const SCALAR_BYTES: usize = 11;

/// One message: its fields appended to `out`.
struct Message<'o> {
    schema: &'static [Field],
    out: &'o mut Vec<u8>,
    depth: usize,
    budget: &'o Budget<'o>,
}

impl<'de> DeserializeSeed<'de> for Message<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Message<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.depth > MAX_DEPTH {
            return Err(de::Error::custom("nested too deep"));
        }
        while let Some(name) = map.next_key::<Cow<'de, str>>()? {
            match self
                .schema
                .iter()
                .find(|f| f.json == name || f.snake == name)
            {
                Some(field) => map.next_value_seed(Value {
                    field,
                    out: self.out,
                    depth: self.depth,
                    budget: self.budget,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// One field's value, written as that field.
struct Value<'o> {
    field: &'static Field,
    out: &'o mut Vec<u8>,
    depth: usize,
    budget: &'o Budget<'o>,
}

impl<'de> DeserializeSeed<'de> for Value<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let (number, out, depth, budget) = (self.field.number, self.out, self.depth, self.budget);
        match self.field.kind {
            Kind::Message(schema) => {
                let mut body = Vec::new();
                d.deserialize_map(Message {
                    schema: schema(),
                    out: &mut body,
                    depth: depth + 1,
                    budget,
                })?;
                delimited(out, number, &body, budget)?;
                budget.release(body.len());
            }
            Kind::Messages(schema) => d.deserialize_seq(Messages {
                schema: schema(),
                number,
                out,
                depth: depth + 1,
                budget,
            })?,
            Kind::String => {
                let s = Cow::<'de, str>::deserialize(d)?;
                delimited(out, number, s.as_bytes(), budget)?;
            }
            Kind::Bool => {
                let b = bool::deserialize(d)?;
                budget.take(SCALAR_BYTES)?;
                key(out, number, VARINT);
                varint(out, u64::from(b));
            }
            Kind::Varint => {
                let v = d.deserialize_any(Integer)?;
                budget.take(SCALAR_BYTES)?;
                key(out, number, VARINT);
                varint(out, v);
            }
            Kind::Sint32 => {
                let v = d.deserialize_any(Integer)? as i64;
                let v = i32::try_from(v).map_err(|_| de::Error::custom("sint32 out of range"))?;
                budget.take(SCALAR_BYTES)?;
                key(out, number, VARINT);
                varint(out, u64::from(((v << 1) ^ (v >> 31)) as u32));
            }
            Kind::Fixed64 => {
                let v = d.deserialize_any(Integer)?;
                budget.take(SCALAR_BYTES)?;
                key(out, number, FIXED64);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Kind::Double => {
                let v = d.deserialize_any(Double)?;
                budget.take(SCALAR_BYTES)?;
                key(out, number, FIXED64);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Kind::PackedFixed64 | Kind::PackedDouble | Kind::PackedVarint => {
                let mut body = Vec::new();
                d.deserialize_seq(Packed {
                    kind: self.field.kind,
                    out: &mut body,
                    budget,
                })?;
                delimited(out, number, &body, budget)?;
                budget.release(body.len());
            }
            Kind::Bytes => {
                use base64::Engine;
                let s = Cow::<'de, str>::deserialize(d)?;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .map_err(|_| de::Error::custom("bytesValue is not base64"))?;
                delimited(out, number, &raw, budget)?;
            }
        }
        Ok(())
    }
}

use serde::Deserialize;

/// Appends a length-delimited field, charged first.
fn delimited<E: de::Error>(
    out: &mut Vec<u8>,
    number: u8,
    body: &[u8],
    budget: &Budget<'_>,
) -> Result<(), E> {
    budget.take(body.len() + SCALAR_BYTES)?;
    key(out, number, LEN);
    varint(out, body.len() as u64);
    out.extend_from_slice(body);
    Ok(())
}

/// A repeated message field: each element as one field entry.
struct Messages<'o> {
    schema: &'static [Field],
    number: u8,
    out: &'o mut Vec<u8>,
    depth: usize,
    budget: &'o Budget<'o>,
}

impl<'de> Visitor<'de> for Messages<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut body = Vec::new();
        loop {
            body.clear();
            let seed = Message {
                schema: self.schema,
                out: &mut body,
                depth: self.depth,
                budget: self.budget,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            delimited(self.out, self.number, &body, self.budget)?;
            self.budget.release(body.len());
        }
    }
}

/// A repeated number field, packed.
struct Packed<'o> {
    kind: Kind,
    out: &'o mut Vec<u8>,
    budget: &'o Budget<'o>,
}

impl<'de> Visitor<'de> for Packed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of numbers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            self.budget.take(SCALAR_BYTES)?;
            match self.kind {
                Kind::PackedDouble => match seq.next_element_seed(DoubleSeed)? {
                    Some(v) => self.out.extend_from_slice(&v.to_le_bytes()),
                    None => return Ok(()),
                },
                Kind::PackedFixed64 => match seq.next_element_seed(IntegerSeed)? {
                    Some(v) => self.out.extend_from_slice(&v.to_le_bytes()),
                    None => return Ok(()),
                },
                _ => match seq.next_element_seed(IntegerSeed)? {
                    Some(v) => varint(self.out, v),
                    None => return Ok(()),
                },
            }
        }
    }
}

/// An integer as a number or a decimal string; negative ones as their
/// two's complement (as protobuf writes `int64`).
struct Integer;

impl Visitor<'_> for Integer {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer, or a string holding one")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        Ok(v as u64)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
            Ok(v as i64 as u64)
        } else {
            Err(E::custom(format!("{v} is not an integer")))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        if let Ok(n) = v.parse::<u64>() {
            return Ok(n);
        }
        if let Ok(n) = v.parse::<i64>() {
            return Ok(n as u64);
        }
        // Enums by name: the temporality ones are the only enums read.
        match v {
            "AGGREGATION_TEMPORALITY_UNSPECIFIED" => Ok(0),
            "AGGREGATION_TEMPORALITY_DELTA" => Ok(1),
            "AGGREGATION_TEMPORALITY_CUMULATIVE" => Ok(2),
            _ => Err(E::custom(format!("{v:?} is not an integer"))),
        }
    }
}

struct IntegerSeed;

impl<'de> DeserializeSeed<'de> for IntegerSeed {
    type Value = u64;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_any(Integer)
    }
}

/// A double as a number, or `"NaN"`, `"Infinity"`, `"-Infinity"` (or a
/// number in a string).
struct Double;

impl Visitor<'_> for Double {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        match v {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => v
                .parse()
                .map_err(|_| E::custom(format!("{v:?} is not a number"))),
        }
    }
}

struct DoubleSeed;

impl<'de> DeserializeSeed<'de> for DoubleSeed {
    type Value = f64;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<f64, D::Error> {
        d.deserialize_any(Double)
    }
}

#[cfg(test)]
mod tests;
