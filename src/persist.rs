//! Snapshots of the aggregate (`--persistence-file`): restored at start,
//! written every `--persistence-interval` when something changed, and once
//! more at shutdown.
//!
//! File layout, all little-endian:
//! `b"PAGSNAP\0"` | format version `u32` | payload length `u64` | CRC-32 of
//! the payload `u32` | payload. The payload is the aggregate as
//! length-delimited `io.prometheus.client.MetricFamily` messages, the same
//! encoding as a protobuf scrape, so restoring is decoding a push and
//! applying it. A file is written to `<file>.tmp`, fsynced, renamed over the
//! old one and the folder fsynced: a crash at any moment leaves the old or
//! the new snapshot, never a torn one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::Gateway;
use crate::decode::{self, Options};
use crate::encode;
use crate::model::{LabelRules, Limits};

const MAGIC: &[u8; 8] = b"PAGSNAP\0";
const VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 8 + 4;

/// Encodes a snapshot of the gateway's aggregate.
pub fn encode(gw: &Gateway) -> Vec<u8> {
    let families = gw.aggregator().snapshot();
    let refs: Vec<_> = families.iter().map(|(n, f)| (n.as_str(), f)).collect();
    let payload = encode::render_families(&refs, encode::Format::Protobuf);
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".tmp");
    PathBuf::from(p)
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync dir).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

/// Checks a snapshot file's framing and returns its payload.
fn payload<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a [u8], String> {
    let bad = |why: &str| format!("snapshot {} is unusable: {why}", path.display());
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(bad("not a prom-aggregation-gateway snapshot (bad header)"));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
    if version != VERSION {
        return Err(bad(&format!(
            "format version {version}, this build reads {VERSION}"
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
    Ok(body)
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
    let result = payload(path, &bytes).and_then(|body| {
        // What was stored passed the limits once; limits lowered since must
        // not make it unreadable, but --max-series still holds.
        let unlimited = Limits {
            max_labels: usize::MAX,
            max_name_length: usize::MAX,
            max_label_value_length: usize::MAX,
            max_series_per_push: usize::MAX,
        };
        let rules = LabelRules::new(Vec::new(), &[], unlimited).unwrap_or_default();
        let opts = Options {
            labels: &rules,
            gauge_nan_ok: true,
        };
        let push = decode::protobuf::delimited(body, &opts)
            .map_err(|e| format!("snapshot {} is unusable: {e}", path.display()))?;
        gw.aggregator()
            .apply(push)
            .map(|a| a.created)
            .map_err(|e| format!("snapshot {} cannot be restored: {e}", path.display()))
    });
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

/// Writes a snapshot now (off the async workers); records the outcome.
pub async fn save(gw: &Gateway) {
    let Some(path) = gw.config().persistence_file.clone() else {
        return;
    };
    let gw2 = gw.clone();
    let started = Instant::now();
    let result = tokio::task::spawn_blocking(move || {
        let generation = gw2.aggregator().generation();
        let bytes = encode(&gw2);
        write_atomic(&path, &bytes).map(|_| (generation, bytes.len()))
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    match result {
        Ok((generation, len)) => {
            gw.telemetry().snapshot(Ok(len), started.elapsed());
            gw.saved_generation(generation);
        }
        Err(e) => {
            tracing::error!("snapshot write failed: {e}");
            gw.telemetry().snapshot(Err(()), started.elapsed());
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
        let mut tick = tokio::time::interval(gw.config().persistence_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tick.tick() => {
                    if gw.unsaved_changes() {
                        save(&gw).await;
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_detects_damage() {
        let path = Path::new("snap.bin");
        let mut good = Vec::new();
        good.extend_from_slice(MAGIC);
        good.extend_from_slice(&VERSION.to_le_bytes());
        good.extend_from_slice(&3u64.to_le_bytes());
        good.extend_from_slice(&crc32fast::hash(b"abc").to_le_bytes());
        good.extend_from_slice(b"abc");
        assert_eq!(payload(path, &good).unwrap(), b"abc");
        let mut flipped = good.clone();
        flipped[HEADER] ^= 1;
        assert!(payload(path, &flipped).unwrap_err().contains("checksum"));
        assert!(
            payload(path, &good[..good.len() - 1])
                .unwrap_err()
                .contains("truncated")
        );
        assert!(
            payload(path, &good[..10])
                .unwrap_err()
                .contains("bad header")
        );
        let mut v2 = good.clone();
        v2[8] = 2;
        assert!(payload(path, &v2).unwrap_err().contains("version 2"));
        assert!(payload(path, &good).is_ok());
        assert!(payload(path, b"").unwrap_err().contains("snap.bin"));
    }
}
