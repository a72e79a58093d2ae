//! The `--rules` file: read at start, then again on SIGHUP and whenever
//! it changes; a refused file keeps the rules in force.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::gateway::Gateway;
use crate::hangup::Hangups;
use crate::rules;

/// The rules file and what it held at the last read.
#[derive(Debug)]
pub struct RulesFile {
    path: PathBuf,
    /// The file as last read (its bytes, or why it could not be read), to
    /// tell a change.
    last_read: parking_lot::Mutex<Option<Result<Vec<u8>, String>>>,
}

impl RulesFile {
    /// The file at `path`, not read yet.
    pub fn new(path: PathBuf) -> RulesFile {
        RulesFile {
            path,
            last_read: Default::default(),
        }
    }

    /// Reads the `--rules` file and puts its rules in force, unless it is
    /// unchanged since the last read and `force` is false. A file that
    /// cannot be read or is invalid changes nothing; the error says why.
    /// Returns whether new rules were put in force.
    pub fn load(&self, gateway: &Gateway, force: bool) -> Result<bool, rules::LoadError> {
        let path = &self.path;
        let shown = path.display().to_string();
        let read = read_limited(path, RULES_FILE_LIMIT).map_err(|e| e.to_string());
        let mut last = self.last_read.lock();
        // Unchanged since the last look: nothing to do, and a failure
        // already counted and logged is not again, until it changes.
        if !force && last.as_ref() == Some(&read) {
            return Ok(false);
        }
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(e) => {
                *last = Some(Err(e.clone()));
                gateway.telemetry().rules_loaded(Err(()));
                return Err(rules::LoadError(format!("rules file {shown}: {e}")));
            }
        };
        let result = std::str::from_utf8(&bytes)
            .map_err(|_| rules::LoadError(format!("rules file {shown}: not UTF-8 text")))
            .and_then(|text| gateway.parse_rules(&shown, text));
        // A refused file is remembered too: it is reported once, not at
        // every check, until it changes again.
        *last = Some(Ok(bytes));
        match result {
            Ok(set) => {
                gateway.telemetry().rules_loaded(Ok(set.rules().len()));
                tracing::info!(file = %shown, rules = set.rules().len(), "rules loaded");
                gateway.set_rules(set);
                Ok(true)
            }
            Err(e) => {
                gateway.telemetry().rules_loaded(Err(()));
                Err(e)
            }
        }
    }
}

/// Largest rules file read.
const RULES_FILE_LIMIT: u64 = 4 << 20;

/// Reads a regular file of at most `limit` bytes. Opened without
/// blocking and refused unless it is a regular file: a FIFO put in its
/// place would block the read until someone wrote to it (the reloads
/// stopped, and so did the shutdown, which waits for them).
fn read_limited(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > limit {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            limit >> 20
        )));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            limit >> 20
        )));
    }
    Ok(bytes)
}

/// Re-reads the rules file on SIGHUP and when it changes (checked every
/// `--rules-check-interval`); a refused file keeps the rules in force.
pub fn spawn(
    file: Arc<RulesFile>,
    gateway: Gateway,
    period: Duration,
    mut stop: tokio::sync::watch::Receiver<()>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut hangups = Hangups::new();
        loop {
            let force = tokio::select! {
                _ = stop.changed() => return,
                _ = hangups.next() => true,
                _ = tokio::time::sleep(period) => false,
            };
            let (gw, file) = (gateway.clone(), file.clone());
            // Shutdown does not wait for a read that hangs (a file on a
            // stalled mount).
            let loaded = tokio::select! {
                _ = stop.changed() => return,
                loaded = tokio::task::spawn_blocking(move || file.load(&gw, force)) => loaded,
            };
            if let Ok(Err(e)) = loaded {
                tracing::error!("{e}; the rules in force are kept");
            }
        }
    })
}
