//! Snapshots of the aggregate (`--persistence-file`): restored at start,
//! written every `--persistence-interval` when something changed, and once
//! more at shutdown.
//!
//! File layout, all little-endian:
//! `b"PAGSNAP\0"` | format version `u32` | payload length `u64` | CRC-32 of
//! the payload `u32` | payload. In versions 2 and 3 the payload is the
//! length of the sources section `u64` | the sources section | the
//! aggregate; in version 1 (still restored) the aggregate alone. The aggregate is
//! length-delimited `io.prometheus.client.MetricFamily` messages, the same
//! encoding as a protobuf scrape, so restoring is decoding a push and
//! applying it. The sources section holds the `total` rules' per-source
//! state (see `aggregate/sources.rs`): length-delimited records, each a
//! delimited `MetricFamily` (the family's name; one metric per source: the
//! output series' labels, the source's last value and creation time) then,
//! per metric, the source labels' key, the seconds until it is forgotten
//! (varint), its rule's name, each length-delimited, and (version 3) when
//! its last point was taken (varint nanoseconds, 0 unknown). Sources of
//! `latest` rules are written alike, their value a scalar. A file is written to `<file>.tmp`, fsynced, renamed over the
//! old one and the folder fsynced: a crash at any moment leaves the old or
//! the new snapshot, never a torn one.

use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::decode::{self, Options};
use crate::encode;
use crate::gateway::Gateway;
use crate::model::{LabelRules, Limits};

const MAGIC: &[u8; 8] = b"PAGSNAP\0";
const VERSION: u32 = 3;
const HEADER: usize = 8 + 4 + 8 + 4;

fn header(len: u64, crc: u32) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&len.to_le_bytes());
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Encodes a snapshot of the gateway's aggregate into memory (tests and
/// tools; the writer streams to the file instead).
pub fn encode(gw: &Gateway) -> Vec<u8> {
    let payload = gw.aggregator().read_snapshot(|families, sources, now| {
        let section = encode_sources(sources, now);
        let mut payload = (section.len() as u64).to_le_bytes().to_vec();
        payload.extend_from_slice(&section);
        payload.extend(encode::render_families(
            families,
            crate::format::Format::Protobuf,
        ));
        payload
    });
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&header(payload.len() as u64, crc32fast::hash(&payload)));
    out.extend_from_slice(&payload);
    out
}

/// A new temporary file beside `path`: a random name, created exclusively
/// (so never through a symlink or over another file), mode 0600.
fn create_temp(path: &Path) -> std::io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..8 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".tmp-{:016x}", h.finish()));
        let tmp = PathBuf::from(name);
        let mut opts = OpenOptions::new();
        opts.write(true).read(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}

/// Writes the aggregate as a snapshot at `path`: streamed into a new
/// temporary file family by family while the aggregate is read (no copy of
/// it in memory), read back and checked with the restore's own decoder,
/// fsynced, renamed over `path`, the folder fsynced. On any failure the
/// temporary file is removed and `path` is untouched. Returns the size.
pub fn write_snapshot(gw: &Gateway, path: &Path) -> std::io::Result<u64> {
    let (tmp, file) = create_temp(path)?;
    let result = write_into(gw, file).and_then(|(file, len)| {
        verify(&file, len)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)?.sync_all()?;
        Ok(len)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Streams header and payload into `file`; the header, which needs the
/// payload's length and CRC, is written last over a placeholder.
fn write_into(gw: &Gateway, file: File) -> std::io::Result<(File, u64)> {
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(&[0u8; HEADER])?;
    let (len, crc) = gw.aggregator().read_snapshot(|families, sources, now| {
        let mut sink = Crc {
            out: &mut out,
            crc: crc32fast::Hasher::new(),
        };
        let section = encode_sources(sources, now);
        sink.write_all(&(section.len() as u64).to_le_bytes())?;
        sink.write_all(&section)?;
        let mut len = 8 + section.len() as u64;
        let mut scratch = Vec::new();
        for (name, f) in families {
            len += encode::protobuf::write_family_streaming(name, f, &mut sink, &mut scratch)?;
        }
        Ok::<_, std::io::Error>((len, sink.crc.finalize()))
    })?;
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&header(len, crc))?;
    Ok((file, len))
}

/// Feeds what is written to a CRC as well.
struct Crc<'a, W: Write> {
    out: &'a mut W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Crc<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Reads a written snapshot back and decodes it with the options
/// [`restore`] uses, one series at a time (each `Metric` of a family
/// message is checked as a family of its own with the same name, help and
/// type): a snapshot the next start would refuse is never put in place,
/// and checking it holds one series in memory, not the file.
fn verify(file: &File, len: u64) -> std::io::Result<()> {
    let bad = |why: String| std::io::Error::other(format!("snapshot would not restore: {why}"));
    let mut f = file;
    f.seek(SeekFrom::Start(HEADER as u64))?;
    let mut r = BufReader::with_capacity(1 << 20, f.take(len));
    let rules = restore_rules();
    let opts = restore_options(&rules);
    let mut section_len = [0u8; 8];
    r.read_exact(&mut section_len)?;
    let mut section = Vec::new();
    (&mut r)
        .take(u64::from_le_bytes(section_len))
        .read_to_end(&mut section)?;
    if section.len() as u64 != u64::from_le_bytes(section_len) {
        return Err(bad("truncated sources section".into()));
    }
    // A snapshot just written: this build's format.
    read_sources(&section, VERSION, &opts, |_| {}).map_err(bad)?;
    let (mut head, mut one) = (Vec::new(), Vec::new());
    let mut scratch = decode::protobuf::Scratch::default();
    let mut n = 0;
    while let Some(size) = crate::wire::read_varint(&mut r)? {
        n += 1;
        let mut family = (&mut r).take(size);
        head.clear();
        let mut metrics = 0;
        while let Some(tag) = crate::wire::read_varint(&mut family)? {
            let mut framed = Vec::new();
            crate::wire::varint(&mut framed, tag);
            let value = crate::wire::read_varint(&mut family)?
                .ok_or_else(|| bad("truncated field".into()))?;
            crate::wire::varint(&mut framed, value);
            if tag & 7 == 2 {
                // Length-delimited: `value` is the length.
                let start = framed.len();
                (&mut family).take(value).read_to_end(&mut framed)?;
                if (framed.len() - start) as u64 != value {
                    return Err(bad("truncated field".into()));
                }
            } else if tag & 7 != 0 {
                return Err(bad(format!("unexpected wire type in family message {n}")));
            }
            if tag >> 3 != 4 {
                head.extend_from_slice(&framed);
                continue;
            }
            metrics += 1;
            one.clear();
            one.extend_from_slice(&head);
            one.extend_from_slice(&framed);
            decode::protobuf::family(
                &one,
                &opts,
                &mut scratch,
                decode::protobuf::Origin::Delimited(n),
            )
            .map_err(|e| bad(e.to_string()))?;
        }
        if metrics == 0 {
            return Err(bad(format!("family message {n} holds no series")));
        }
    }
    Ok(())
}

/// Label rules for restoring: what was stored passed the limits once;
/// limits lowered since must not make it unreadable (`--max-series` still
/// holds).
fn restore_rules() -> LabelRules {
    let unlimited = Limits {
        max_labels: usize::MAX,
        max_name_length: usize::MAX,
        max_label_value_length: usize::MAX,
        max_series_per_push: usize::MAX,
        max_label_bytes: usize::MAX,
        max_native_buckets: usize::MAX,
        max_buckets: usize::MAX,
    };
    LabelRules::new(Vec::new(), &[], unlimited).unwrap_or_default()
}

fn restore_options(rules: &LabelRules) -> Options<'_> {
    Options {
        labels: rules,
        gauge_nan_ok: true,
        spend: None,
        windows: None,
    }
}

/// What kind a source's value is written as (its family's kind is not
/// kept with it; the value tells all the restore needs).
fn kind_of(value: &crate::model::Value) -> crate::model::Kind {
    use crate::model::{Kind, Value};
    match value {
        Value::Scalar(_) => Kind::Untyped,
        Value::Histogram(_) | Value::Native(_) => Kind::Histogram,
        Value::Summary { .. } => Kind::Summary,
    }
}

/// The sources section (see the module docs).
fn encode_sources(sources: &crate::aggregate::SourcesView, now: u32) -> Vec<u8> {
    use crate::model::Kind;
    let mut out = Vec::new();
    for (family, s) in sources {
        let rows: Vec<_> = s.rows(now).collect();
        for kind in [Kind::Untyped, Kind::Histogram, Kind::Summary] {
            let of_kind: Vec<_> = rows
                .iter()
                .filter(|r| kind_of(&r.series.value) == kind)
                .collect();
            if of_kind.is_empty() {
                continue;
            }
            let mut record = Vec::new();
            encode::protobuf::write_series(
                family,
                kind,
                of_kind.iter().map(|r| (r.output, &r.series)),
                &mut record,
            );
            for r in &of_kind {
                crate::wire::varint(&mut record, r.source.len() as u64);
                record.extend_from_slice(r.source);
                crate::wire::varint(&mut record, u64::from(r.left));
                crate::wire::varint(&mut record, r.rule.len() as u64);
                record.extend_from_slice(r.rule.as_bytes());
                crate::wire::varint(&mut record, r.time);
            }
            crate::wire::varint(&mut out, record.len() as u64);
            out.extend_from_slice(&record);
        }
    }
    out
}

/// One source read back from a snapshot.
struct SourceRecord<'a> {
    family: &'a str,
    series: crate::model::Series,
    source: &'a [u8],
    left: u32,
    rule: &'a str,
    time: u64,
}

/// [`read_varint`] on a slice, which it advances.
fn take_varint(r: &mut &[u8]) -> Result<u64, String> {
    crate::wire::read_varint(r)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "truncated varint".into())
}

fn take_bytes<'a>(r: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let len = usize::try_from(take_varint(r)?).map_err(|_| "length too large")?;
    if len > r.len() {
        return Err("truncated field".into());
    }
    let (field, rest) = r.split_at(len);
    *r = rest;
    Ok(field)
}

/// Decodes the sources section, calling `each` with every source.
fn read_sources(
    mut section: &[u8],
    version: u32,
    opts: &Options<'_>,
    mut each: impl FnMut(SourceRecord<'_>),
) -> Result<(), String> {
    let mut scratch = decode::protobuf::Scratch::default();
    let mut n = 0;
    while !section.is_empty() {
        n += 1;
        let mut record =
            take_bytes(&mut section).map_err(|e| format!("sources record {n}: {e}"))?;
        let fail = |e: String| format!("sources record {n}: {e}");
        let message = take_bytes(&mut record).map_err(fail)?;
        let family = decode::protobuf::family(
            message,
            opts,
            &mut scratch,
            decode::protobuf::Origin::Delimited(n),
        )
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("no sources".into()))?;
        let name = family.name;
        for series in family.series {
            let source = take_bytes(&mut record).map_err(fail)?;
            let left = take_varint(&mut record).map_err(fail)?;
            let rule = std::str::from_utf8(take_bytes(&mut record).map_err(fail)?)
                .map_err(|_| fail("rule name is not UTF-8".into()))?;
            // Format 3 keeps when each source's last point was taken.
            let time = if version >= 3 {
                take_varint(&mut record).map_err(fail)?
            } else {
                0
            };
            each(SourceRecord {
                family: &name,
                series,
                source,
                left: left.min(u64::from(u32::MAX)) as u32,
                rule,
                time,
            });
        }
        if !record.is_empty() {
            return Err(fail("trailing bytes".into()));
        }
    }
    Ok(())
}

/// Checks a snapshot file's framing and returns its format version and
/// payload.
fn payload<'a>(path: &Path, bytes: &'a [u8]) -> Result<(u32, &'a [u8]), String> {
    let bad = |why: &str| format!("snapshot {} is unusable: {why}", path.display());
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(bad("not a prom-aggregation-gateway snapshot (bad header)"));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
    if !(1..=VERSION).contains(&version) {
        return Err(bad(&format!(
            "format version {version}, this build reads 1 to {VERSION}"
        )));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().unwrap_or_default());
    let crc = u32::from_le_bytes(bytes[20..24].try_into().unwrap_or_default());
    let body = &bytes[HEADER..];
    if body.len() as u64 != len {
        return Err(bad(&format!(
            "truncated: {} of {len} payload bytes",
            body.len()
        )));
    }
    if crc32fast::hash(body) != crc {
        return Err(bad("checksum mismatch (file corrupt)"));
    }
    Ok((version, body))
}

/// Restores the snapshot at `--persistence-file` into the (empty) aggregate.
/// A missing file is a first start; a corrupt one is an error naming the
/// file, unless `--persistence-discard-corrupt` says to start empty.
pub fn restore(gw: &Gateway) -> Result<usize, String> {
    let config = gw.config();
    let Some(path) = &config.persistence_file else {
        return Ok(0);
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("cannot read snapshot {}: {e}", path.display())),
    };
    let result = restore_bytes(gw, path, &bytes);
    match result {
        Err(e) if config.persistence_discard_corrupt => {
            tracing::warn!("{e}; starting empty (--persistence-discard-corrupt)");
            Ok(0)
        }
        Err(e) => Err(format!(
            "{e}; fix or move the file, or start with --persistence-discard-corrupt to start empty"
        )),
        ok => ok,
    }
}

/// Restores a snapshot's bytes (read from `path`, named in errors) into the
/// (empty) aggregate; returns how many series it created.
pub fn restore_bytes(gw: &Gateway, path: &Path, bytes: &[u8]) -> Result<usize, String> {
    let (version, mut body) = payload(path, bytes)?;
    let unusable = |e: String| format!("snapshot {} is unusable: {e}", path.display());
    let rules = restore_rules();
    let opts = restore_options(&rules);
    let mut sources = &[][..];
    if version >= 2 {
        let len = body
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .filter(|&l| l <= (body.len() - 8) as u64)
            .ok_or_else(|| unusable("truncated sources section".into()))?;
        sources = &body[8..8 + len as usize];
        body = &body[8 + len as usize..];
    }
    let mut push = decode::protobuf::delimited(body, &opts).map_err(|e| unusable(e.to_string()))?;
    // Snapshots of earlier versions kept text clients' `<name>_created`
    // gauges as families of their own.
    let folded = crate::model::fold_created_families(&mut push);
    if folded > 0 {
        tracing::info!(
            families = folded,
            "creation-time gauges of an earlier version folded into their metrics"
        );
    }
    let restored = gw.aggregator().restore(push);
    let mut tracked = 0usize;
    // A source of a `latest` rule in force is a level again; of a rule no
    // longer in force, a total (it expires as one).
    let rules = gw.rules();
    let gauge_mode = gw.aggregator().settings().gauge_mode;
    read_sources(sources, version, &opts, |r| {
        tracked += 1;
        let level = rules
            .by_name(r.rule)
            .filter(|rule| rule.mode == crate::rules::Mode::Latest)
            .map(|rule| match rule.name.as_str() {
                crate::rules::LEVELS_NAME => gauge_mode.combine(),
                _ => rule.combine,
            });
        gw.aggregator().restore_source(
            r.family,
            &r.series.key,
            r.source,
            r.series.value,
            r.series.created,
            r.left,
            gw.telemetry().rule_stats(r.rule),
            level,
            r.time,
        );
    })
    .map_err(unusable)?;
    if tracked > 0 {
        tracing::info!(sources = tracked, "total rules' sources restored");
    }
    let memory = gw.memory();
    if memory.used() > memory.limit() {
        tracing::warn!(
            held = memory.used(),
            limit = memory.limit(),
            "the restored snapshot holds more than --max-memory: pushes that add series are refused until it is under"
        );
    }
    restored
        .map(|a| a.created)
        .map_err(|e| format!("snapshot {} cannot be restored: {e}", path.display()))
}

/// Writes a snapshot now (off the async workers); records the outcome and
/// returns the error, if any.
pub async fn save(gw: &Gateway) -> Result<(), String> {
    let Some(path) = gw.config().persistence_file.clone() else {
        return Ok(());
    };
    let gw2 = gw.clone();
    let started = Instant::now();
    let shown = path.display().to_string();
    let result = tokio::task::spawn_blocking(move || {
        let generation = gw2.aggregator().generation();
        write_snapshot(&gw2, &path).map(|len| (generation, len as usize))
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    match result {
        Ok((generation, len)) => {
            gw.telemetry().snapshot(Ok(len), started.elapsed());
            gw.snapshot_written(crate::gateway::SnapshotOutcome {
                time: crate::clock::unix_now(),
                bytes: len,
                error: None,
            });
            gw.saved_generation(generation);
            Ok(())
        }
        Err(e) => {
            let e = format!("snapshot write to {shown} failed: {e}");
            tracing::error!("{e}");
            gw.telemetry().snapshot(Err(()), started.elapsed());
            gw.snapshot_written(crate::gateway::SnapshotOutcome {
                time: crate::clock::unix_now(),
                bytes: 0,
                error: Some(e.clone()),
            });
            Err(e)
        }
    }
}

/// Writes a snapshot every interval in which the aggregate changed, until
/// `stop` fires.
pub fn spawn_writer(
    gw: Gateway,
    mut stop: tokio::sync::watch::Receiver<()>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let clock = gw.config().clock.clone();
        let interval = gw.config().persistence_interval;
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = clock.sleep(interval) => {
                    if gw.unsaved_changes() {
                        // Failures are logged and counted; the next tick retries.
                        let _ = save(&gw).await;
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests;
