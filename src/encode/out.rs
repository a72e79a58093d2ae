//! Where renderers write, and the text formats' escaping.

/// Bytes a scrape renders ahead of the socket at a time.
pub const CHUNK: usize = 256 << 10;

/// Where a renderer writes: a buffer, which a scrape empties every
/// [`CHUNK`] bytes (a `Vec<u8>` is never emptied: it holds the whole).
pub(crate) trait Out {
    /// The buffer to append to.
    fn buf(&mut self) -> &mut Vec<u8>;
    /// Called after each series: hands the buffer on if it is full.
    fn series_done(&mut self) {}
}

impl Out for Vec<u8> {
    #[inline]
    fn buf(&mut self) -> &mut Vec<u8> {
        self
    }
}

/// Appends a label value (or HELP text) with the text format's escapes:
/// backslash, newline, and with `quote` also the double quote.
#[inline]
pub(crate) fn write_escaped(out: &mut Vec<u8>, s: &[u8], quote: bool) {
    let mut rest = s;
    loop {
        let found = if quote {
            memchr::memchr3(b'\\', b'\n', b'"', rest)
        } else {
            memchr::memchr2(b'\\', b'\n', rest)
        };
        let Some(i) = found else {
            out.extend_from_slice(rest);
            return;
        };
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(match rest[i] {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            _ => b"\\\"",
        });
        rest = &rest[i + 1..];
    }
}
