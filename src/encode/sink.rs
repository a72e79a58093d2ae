//! A scrape being rendered into chunks, gzipped when asked, gathered for
//! keeping while small enough.

use super::out::{CHUNK, Out};

/// A scrape being rendered: its buffer goes to `emit` every [`CHUNK`]
/// bytes, through a gzip stream at the fastest level when asked (level 6
/// cost many times level 1 for a scrape that travels over a LAN;
/// bench/README.md, "Gzip level"); what it emits is gathered for keeping
/// while it stays within `--scrape-keep-bytes`.
pub(super) struct Sink<'a> {
    buf: Vec<u8>,
    gzip: Option<flate2::write::GzEncoder<Vec<u8>>>,
    emit: &'a mut dyn FnMut(bytes::Bytes) -> bool,
    /// False once `emit` refused, or the render failed.
    pub(super) open: bool,
    /// The render failed: what was emitted is not a whole scrape.
    pub(super) failed: bool,
    /// Everything emitted, while within `keep_bytes`.
    whole: Option<Vec<bytes::Bytes>>,
    whole_len: usize,
    keep_bytes: usize,
}

impl<'a> Sink<'a> {
    /// `keep`: gather what is emitted for keeping, up to that many bytes.
    pub(super) fn new(
        gzip: bool,
        emit: &'a mut dyn FnMut(bytes::Bytes) -> bool,
        keep: Option<usize>,
    ) -> Sink<'a> {
        Sink {
            // Grown as needed: most scrapes are small.
            buf: Vec::new(),
            gzip: gzip.then(|| {
                flate2::write::GzEncoder::new(
                    Vec::with_capacity(CHUNK),
                    flate2::Compression::fast(),
                )
            }),
            emit,
            open: true,
            failed: false,
            whole: keep.map(|_| Vec::new()),
            keep_bytes: keep.unwrap_or(0),
            whole_len: 0,
        }
    }

    /// Hands on the buffer (compressed first, when gzipped; the compressed
    /// bytes go on once they fill a chunk, or at the end).
    pub(super) fn spill(&mut self, last: bool) {
        use std::io::Write;
        let chunk = match &mut self.gzip {
            Some(gz) => {
                // Writing into a Vec cannot fail.
                let _ = gz.write_all(&self.buf);
                self.buf.clear();
                if !last && gz.get_ref().len() < CHUNK {
                    return;
                }
                std::mem::replace(gz.get_mut(), Vec::with_capacity(CHUNK + CHUNK / 4))
            }
            None => std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + CHUNK / 4)),
        };
        self.send(chunk.into());
    }

    /// The render failed: nothing more goes out, and what went out is not
    /// a whole scrape.
    pub(super) fn fail(&mut self) {
        self.open = false;
        self.failed = true;
    }

    pub(super) fn send(&mut self, chunk: bytes::Bytes) {
        if chunk.is_empty() || !self.open {
            return;
        }
        self.whole_len += chunk.len();
        if self.whole_len > self.keep_bytes {
            self.whole = None;
        }
        if let Some(whole) = &mut self.whole {
            whole.push(chunk.clone());
        }
        self.open = (self.emit)(chunk);
    }

    /// A kept family rendering: sent as it is (no copy) when plain and
    /// large, else copied into the buffer.
    pub(super) fn shared(&mut self, rendering: &bytes::Bytes) {
        if rendering.len() >= CHUNK / 4 {
            if !self.buf.is_empty() {
                self.spill(false);
            }
            match &mut self.gzip {
                None => self.send(rendering.clone()),
                // Straight into the compressor, not through the buffer.
                Some(gz) => {
                    use std::io::Write;
                    let _ = gz.write_all(rendering);
                    if gz.get_ref().len() >= CHUNK {
                        let chunk =
                            std::mem::replace(gz.get_mut(), Vec::with_capacity(CHUNK + CHUNK / 4));
                        self.send(chunk.into());
                    }
                }
            }
        } else {
            self.buf.extend_from_slice(rendering);
            self.series_done();
        }
    }

    /// Sends what is left; returns every chunk sent when they were within
    /// `--scrape-keep-bytes` and all went out.
    pub(super) fn finish(mut self) -> Option<Vec<bytes::Bytes>> {
        if let Some(gz) = self.gzip.take() {
            use std::io::Write;
            let mut gz = gz;
            let _ = gz.write_all(&self.buf);
            self.buf.clear();
            let tail = gz.finish().unwrap_or_default();
            self.send(tail.into());
        } else {
            let tail = std::mem::take(&mut self.buf);
            self.send(tail.into());
        }
        self.whole.filter(|_| self.open)
    }
}

impl Out for Sink<'_> {
    #[inline]
    fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    fn series_done(&mut self) {
        if self.buf.len() >= CHUNK {
            self.spill(false);
        }
    }
}

impl std::io::Write for Sink<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        self.series_done();
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
