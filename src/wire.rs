//! The protobuf wire format, read and written by hand: varints, fixed64,
//! length-delimited slices. The reader works over borrowed bytes, where
//! decoding into prost's owned types would cost an allocation per string
//! (two per label); the writer appends fields to a `Vec<u8>`, for the
//! scrape, the snapshot, remote-write and OTLP/JSON transcoding.

/// A field's payload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wire<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

/// Reads fields from one message's bytes. Holds the bytes not read yet as
/// a slice that shrinks from the front: one length check per read instead
/// of a position and the buffer's bounds (every field of every pushed
/// series goes through here).
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader of `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { rest: buf }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Reads a varint (at most 10 bytes).
    #[inline]
    pub fn varint(&mut self) -> Result<u64, &'static str> {
        // One byte (tags, short lengths, small numbers) is the common
        // case: measured at about a tenth of OTLP decoding's instructions.
        if let [b, rest @ ..] = self.rest
            && *b < 0x80
        {
            self.rest = rest;
            return Ok(u64::from(*b));
        }
        self.varint_long()
    }

    #[inline(never)]
    fn varint_long(&mut self) -> Result<u64, &'static str> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let [b, rest @ ..] = self.rest else {
                return Err("truncated varint");
            };
            self.rest = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if *b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes")
    }

    /// Reads `n` bytes.
    #[inline]
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.rest.len() {
            return Err("length past the end");
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    /// Reads a varint length, then that many bytes.
    #[inline]
    pub fn delimited(&mut self) -> Result<&'a [u8], &'static str> {
        let n = self.varint()?;
        self.bytes(usize::try_from(n).map_err(|_| "length overflows")?)
    }

    /// The fields left, ending at the end or at the first malformed one
    /// (for bytes already walked once with [`Reader::field`]).
    pub fn fields(mut self) -> impl Iterator<Item = (u32, Wire<'a>)> {
        std::iter::from_fn(move || self.field().ok().flatten())
    }

    /// The next field, or `None` at the end.
    pub fn field(&mut self) -> Result<Option<(u32, Wire<'a>)>, &'static str> {
        if self.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| "field number too large")?;
        if number == 0 {
            return Err("field number 0");
        }
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => match self.rest.split_first_chunk::<8>() {
                Some((b, rest)) => {
                    self.rest = rest;
                    Wire::Fixed64(u64::from_le_bytes(*b))
                }
                None => return Err("truncated fixed64"),
            },
            2 => Wire::Bytes(self.delimited()?),
            5 => match self.rest.split_first_chunk::<4>() {
                Some((b, rest)) => {
                    self.rest = rest;
                    Wire::Fixed32(u32::from_le_bytes(*b))
                }
                None => return Err("truncated fixed32"),
            },
            _ => return Err("unsupported wire type (groups are not used here)"),
        };
        Ok(Some((number, wire)))
    }
}

/// A UTF-8 string field.
pub fn string(w: Wire<'_>) -> Result<&str, &'static str> {
    match w {
        Wire::Bytes(b) => std::str::from_utf8(b).map_err(|_| "string is not UTF-8"),
        _ => Err("string field with a non-length wire type"),
    }
}

// Writing.

/// Wire type of a varint.
pub const VARINT: u8 = 0;
/// Wire type of a fixed 64-bit value.
pub const FIXED64: u8 = 1;
/// Wire type of a length-delimited value.
pub const LEN: u8 = 2;

/// Appends `v` as a protobuf varint.
#[inline]
pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a field key (field numbers below 16).
#[inline]
pub fn key(out: &mut Vec<u8>, field: u8, wire: u8) {
    // Every field number here is below 16: one byte.
    out.push(field << 3 | wire);
}

/// Appends a `double` field.
#[inline]
pub fn double(out: &mut Vec<u8>, field: u8, v: f64) {
    key(out, field, FIXED64);
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a varint field.
#[inline]
pub fn uint(out: &mut Vec<u8>, field: u8, v: u64) {
    key(out, field, VARINT);
    varint(out, v);
}

/// Appends a length-delimited field.
#[inline]
pub fn bytes(out: &mut Vec<u8>, field: u8, b: &[u8]) {
    key(out, field, LEN);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Bytes of `v` as a varint.
#[inline]
pub fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Reads one varint from a stream; `None` at a clean end of input.
pub fn read_varint(r: &mut impl std::io::Read) -> std::io::Result<Option<u64>> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let mut b = [0u8];
        if r.read(&mut b)? == 0 {
            if i == 0 {
                return Ok(None);
            }
            return Err(std::io::Error::other("truncated varint"));
        }
        v |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] < 0x80 {
            return Ok(Some(v));
        }
    }
    Err(std::io::Error::other("varint too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_refuses_damage() {
        // field 1 varint 150, field 2 "hi", field 3 fixed64 1.5
        let mut buf = vec![0x08, 0x96, 0x01, 0x12, 2, b'h', b'i', 0x19];
        buf.extend_from_slice(&1.5f64.to_le_bytes());
        let mut r = Reader::new(&buf);
        assert_eq!(r.field().unwrap(), Some((1, Wire::Varint(150))));
        assert_eq!(string(r.field().unwrap().unwrap().1).unwrap(), "hi");
        assert_eq!(
            r.field().unwrap(),
            Some((3, Wire::Fixed64(1.5f64.to_bits())))
        );
        assert_eq!(r.field().unwrap(), None);
        assert!(Reader::new(&[0x12, 5, b'a']).field().is_err());
        assert!(
            Reader::new(&[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ])
            .field()
            .is_err()
        );
        assert!(Reader::new(&[0x0b]).field().is_err());
        assert!(
            Reader::new(&[
                0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ])
            .field()
            .is_err()
        );
    }
}
