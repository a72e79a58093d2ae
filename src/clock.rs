//! The clock of everything that waits or ages in the gateway: series TTL
//! (`--series-ttl`), the expiry sweep and the snapshot writer's interval.
//! Normally the system's monotonic clock; a manual clock, moved only by
//! [`Clock::advance`], lets tests of time-dependent behaviour run without
//! waiting real seconds.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A monotonic clock, counting from when it was made. Cheap to clone;
/// clones share the time.
#[derive(Debug, Clone)]
pub struct Clock(Arc<Source>);

#[derive(Debug)]
enum Source {
    System(Instant),
    /// The time, as moved by `advance`; sleepers wait for it to change.
    Manual {
        made: SystemTime,
        now: tokio::sync::watch::Sender<Duration>,
    },
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::system()
    }
}

impl Clock {
    /// The system's monotonic clock.
    pub fn system() -> Clock {
        Clock(Arc::new(Source::System(Instant::now())))
    }

    /// A clock at zero that moves only when [`Clock::advance`]d.
    pub fn manual() -> Clock {
        Clock(Arc::new(Source::Manual {
            made: SystemTime::now(),
            now: tokio::sync::watch::Sender::new(Duration::ZERO),
        }))
    }

    /// Time since the clock was made.
    pub fn elapsed(&self) -> Duration {
        match &*self.0 {
            Source::System(start) => start.elapsed(),
            Source::Manual { now, .. } => *now.borrow(),
        }
    }

    /// The wall-clock time now, in nanoseconds since the epoch: when a
    /// series is created, for its start time. A manual clock reads the
    /// system's time when it was made, moved on by what it was advanced.
    pub fn wall(&self) -> i64 {
        let since_epoch = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64)
        };
        match &*self.0 {
            Source::System(_) => since_epoch(SystemTime::now()),
            Source::Manual { made, now } => since_epoch(*made)
                .saturating_add(now.borrow().as_nanos().min(i64::MAX as u128) as i64),
        }
    }

    /// Moves a manual clock on by `by`, waking whoever sleeps past it; a
    /// system clock cannot be moved (nothing happens).
    pub fn advance(&self, by: Duration) {
        if let Source::Manual { now, .. } = &*self.0 {
            now.send_modify(|t| *t += by);
        }
    }

    /// Waits until `period` has passed on this clock.
    pub async fn sleep(&self, period: Duration) {
        match &*self.0 {
            Source::System(_) => tokio::time::sleep(period).await,
            Source::Manual { now, .. } => {
                let mut rx = now.subscribe();
                let until = *rx.borrow() + period;
                // The sender lives as long as the clock, so this only ends
                // when the time has come.
                let _ = rx.wait_for(|t| *t >= until).await;
            }
        }
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_moves_only_when_advanced() {
        let clock = Clock::manual();
        assert_eq!(clock.elapsed(), Duration::ZERO);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep(Duration::from_secs(10)).await }
        });
        // The sleep counts from when it first runs: let it start at zero.
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(9));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1));
        sleeper.await.unwrap();
        assert_eq!(clock.elapsed(), Duration::from_secs(10));
    }
}
