//! Remote-write output: every `--remote-write-interval`, one consistent
//! snapshot of the aggregate (a view taken under the shard locks, so never
//! half a push; one timestamp for every sample) is encoded once per
//! protocol in use and handed to each target's sender.
//!
//! `aggregate -> remote_write::encode -> remote_write::send`: the producer
//! (`produce`) takes the view and the series dropped since the last send
//! (for staleness markers), encodes on the blocking pool, and publishes
//! the snapshot on a `watch` channel, which holds only the newest: a
//! sender still busy with an older snapshot (a receiver down or slow)
//! moves to the newest at its next retry. Values are cumulative, so a
//! skipped snapshot loses nothing; its staleness markers are carried over.
//! Pushes never wait for any of it.

pub mod config;
pub mod encode;
mod send;
mod snapshot;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use config::{Protocol, Settings, Target};

use crate::gateway::Gateway;
use snapshot::Snapshot;

/// Starts the producer and one sender per target; they end after a last
/// send once `stop` fires.
pub(crate) fn spawn(
    gateway: Gateway,
    settings: Arc<Settings>,
    stop: tokio::sync::watch::Receiver<()>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    let (tx, rx) = tokio::sync::watch::channel(None);
    let wake = Arc::new(tokio::sync::Notify::new());
    let mut senders = Vec::new();
    for target in &settings.targets {
        let stats = gateway.telemetry().remote_write_stats(&target.name);
        senders.push(Arc::new(send::Sender::new(target.clone(), stats)?));
    }
    let mut tasks = Vec::new();
    for sender in &senders {
        let (sender, rx, wake) = (sender.clone(), rx.clone(), wake.clone());
        tasks.push(tokio::spawn(async move { sender.run(rx, wake).await }));
    }
    tasks.push(tokio::spawn(produce(
        gateway, settings, senders, tx, stop, wake,
    )));
    Ok(tasks)
}

/// Takes and publishes a snapshot every interval (and at once when a
/// sender falls back to 1.0), then a last one at stop.
async fn produce(
    gateway: Gateway,
    settings: Arc<Settings>,
    senders: Vec<Arc<send::Sender>>,
    tx: tokio::sync::watch::Sender<Option<Arc<Snapshot>>>,
    mut stop: tokio::sync::watch::Receiver<()>,
    wake: Arc<tokio::sync::Notify>,
) {
    // What the receivers have had: at start, what a snapshot restored
    // (those series are not new to them).
    let mut sent = gateway.aggregator().read(encode::series_ids);
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = wake.notified() => false,
            _ = stop.changed() => true,
        };
        let protocols: Vec<Protocol> = senders.iter().map(|s| s.protocol()).collect();
        let (g, s) = (gateway.clone(), settings.clone());
        let taken = tokio::task::spawn_blocking(move || take(&g, &s, &protocols, sent)).await;
        match taken {
            Ok((snapshot, now_sent)) => {
                sent = now_sent;
                tx.send_replace(Some(Arc::new(snapshot)));
            }
            Err(e) => {
                tracing::error!(error = %e, "remote-write snapshot failed");
                sent = encode::SeriesIds::default();
            }
        }
        if last {
            // Dropping `tx` tells the senders this snapshot is the last.
            return;
        }
    }
}

/// Takes the dropped series and a view of the aggregate, and encodes them;
/// `sent` is every series sent before, and the series of this snapshot
/// are given back for the next.
fn take(
    gateway: &Gateway,
    settings: &Settings,
    protocols: &[Protocol],
    mut sent: encode::SeriesIds,
) -> (Snapshot, encode::SeriesIds) {
    let started = Instant::now();
    let aggregator = gateway.aggregator();
    let (dropped, lost) = aggregator.take_dropped();
    // A dropped series pushed again is a new one: it starts from zero.
    for d in &dropped {
        sent.remove(&encode::series_id(&d.family, &d.key));
    }
    let timestamp_ms = now_ms();
    let replica = settings.replica.as_ref().map(|(l, v)| (&**l, v.as_str()));
    let options = |protocol| encode::Options {
        protocol,
        max_samples: settings.max_samples_per_send,
        replica,
        timestamp_ms,
    };
    let (v1, v2, now_sent) = aggregator.read(|families| {
        let encoded = |p| {
            protocols
                .contains(&p)
                .then(|| encode::encode(families, &dropped, &sent, options(p)))
        };
        (
            encoded(Protocol::V1),
            encoded(Protocol::V2),
            encode::series_ids(families),
        )
    });
    let bytes = v1.as_ref().map_or(0, encode::Encoded::bytes)
        + v2.as_ref().map_or(0, encode::Encoded::bytes);
    gateway
        .telemetry()
        .remote_write_snapshot(started.elapsed(), bytes, dropped.len(), lost);
    let snapshot = Snapshot {
        timestamp_ms,
        v1,
        v2,
    };
    (snapshot, now_sent)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64
}
