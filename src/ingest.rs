//! The push pipeline every transport shares: the push's label rules, then
//! decode, then validate-and-apply, each in its own span. HTTP and gRPC
//! differ only in how they get the bytes or messages to `decode`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use tracing::info_span;

use crate::aggregate::GaugeMode;
use crate::decode::{Options, Spend};
use crate::error::Rejection;
use crate::gateway::Gateway;
use crate::memory::Reservation;
use crate::model::{LabelRules, Push};

/// What one push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ingested {
    /// Series touched.
    pub series: usize,
    /// Samples applied.
    pub samples: usize,
}

/// When a request must have its answer (`--request-timeout` after it
/// arrived); in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(pub Instant);

/// The in-flight cap of HTTP pushes, in their extensions: a push takes
/// its slot once its body has arrived, so a body arriving slowly holds a
/// connection and its bytes, never a slot a ready push needs (a thousand
/// connections each sending one byte of a body held every slot).
#[derive(Debug, Clone)]
pub struct PushSlots(pub std::sync::Arc<tokio::sync::Semaphore>);

impl PushSlots {
    /// A slot until the push is answered, or 503 past the cap.
    pub fn take(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Rejection> {
        self.0
            .clone()
            .try_acquire_owned()
            .map_err(|_| Rejection::Overloaded)
    }
}

/// A push's one decision: applied, or answered as timed out (or never
/// answered, its caller gone), never both. The aggregator asks
/// [`Ticket::commit`] under its locks just before changing anything; once
/// it says yes the push is applied and answered as such, and once the
/// deadline has passed or the request was dropped it says no for good.
#[derive(Debug, Clone)]
pub struct Ticket {
    deadline: Option<Instant>,
    state: Arc<AtomicU8>,
}

const PENDING: u8 = 0;
const COMMITTED: u8 = 1;
const ABANDONED: u8 = 2;

/// Held by the request's future: dropping it (the client went away, or a
/// layer gave up on the request) abandons a push not yet committed.
#[derive(Debug)]
pub struct TicketGuard(Arc<AtomicU8>);

impl Drop for TicketGuard {
    fn drop(&mut self) {
        let _ = self
            .0
            .compare_exchange(PENDING, ABANDONED, Ordering::AcqRel, Ordering::Acquire);
    }
}

impl Ticket {
    /// A ticket valid until `deadline` (none: no deadline), and the guard
    /// that abandons it when dropped.
    pub fn new(deadline: Option<Instant>) -> (Ticket, TicketGuard) {
        let state = Arc::new(AtomicU8::new(PENDING));
        (
            Ticket {
                deadline,
                state: state.clone(),
            },
            TicketGuard(state),
        )
    }

    /// Yes (once) if the deadline has not passed and the request is still
    /// waiting for its answer; else [`Rejection::Timeout`], for good.
    pub fn commit(&self) -> Result<(), Rejection> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = self.state.compare_exchange(
                PENDING,
                ABANDONED,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
        match self
            .state
            .compare_exchange(PENDING, COMMITTED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(()),
            Err(_) => Err(Rejection::Timeout),
        }
    }
}

impl Gateway {
    /// The label pushes may not carry: the replica label, while
    /// remote-write is on (the output adds it to every series).
    fn owned_label(&self) -> Option<std::sync::Arc<str>> {
        let settings = self.config().remote_write.as_ref()?;
        settings.replica.as_ref().map(|(l, _)| l.clone())
    }

    /// Decodes an OTLP `ExportMetricsServiceRequest` (protobuf) by this
    /// gateway's settings: what both OTLP transports hand to
    /// [`Gateway::ingest`].
    pub fn decode_otlp(&self, body: &[u8], opts: &Options<'_>) -> Result<Push, Rejection> {
        let settings = crate::decode::otlp::Settings {
            gauge_mode: self.aggregator().settings().gauge_mode,
            promote: &self.config().otlp_promote,
        };
        crate::decode::otlp::request(body, opts, &settings)
    }

    /// Runs a push (`push`: all a transport does for one, from reading the
    /// request to [`Gateway::ingest`]) and records it in the self-metrics:
    /// the one place every protocol's pushes are counted and timed.
    ///
    /// A refused push is kept in the ring of refusals with `route` (the
    /// request path, or the gRPC method).
    pub async fn recorded(
        &self,
        protocol: crate::routes::Protocol,
        route: &str,
        push: impl std::future::Future<Output = Result<Ingested, Rejection>>,
    ) -> Result<Ingested, Rejection> {
        let started = Instant::now();
        let result = push.await;
        self.telemetry().push(
            protocol,
            result.as_ref().map(|i| i.samples),
            started.elapsed(),
        );
        if let Err(e) = &result {
            self.activity().refused(protocol, route, e);
        }
        result
    }

    /// Decodes a push with `decode` under these path (or request) labels and
    /// applies it all or nothing, if `ticket` still allows it once the push
    /// is validated.
    ///
    /// `reservation` holds the request's bytes (body, decompressed body);
    /// the decoded push is charged to it as it is built, up to what `input`
    /// bytes sent (decompressed body and path) allow, and all is given back
    /// when the push is applied or refused.
    ///
    /// The outcome is recorded under the grouping key `path_labels` (see
    /// [`crate::status::activity`]).
    pub fn ingest(
        &self,
        path_labels: Vec<(String, String)>,
        ticket: &Ticket,
        reservation: Reservation,
        input: usize,
        decode: impl FnOnce(&Options<'_>) -> Result<Push, Rejection>,
    ) -> Result<Ingested, Rejection> {
        let group = crate::status::activity::GroupKey::of(&path_labels);
        let result = self.ingest_inner(path_labels, ticket, reservation, input, decode);
        if self.config().push_time_metrics {
            self.record_push_time(&group, result.is_ok());
        }
        self.activity()
            .pushed(group, result.as_ref().map(|i| i.series));
        result
    }

    /// `--push-time-metrics`: sets the group's `push_time_seconds` (or
    /// `push_failure_time_seconds`) gauge to now, kept by its last value.
    /// Best effort: refused (a limit reached, or a sender's family of that
    /// name and another type), it is left out, never the push.
    fn record_push_time(&self, group: &crate::status::activity::GroupKey, applied: bool) {
        use crate::model::{Family, Kind, Series, Value};
        let config = self.config();
        let Ok(labels) = LabelRules::new(group.labels(), &config.drop_labels, config.limits) else {
            return;
        };
        let mut key = Vec::new();
        if labels
            .write_key::<&str, &str>(Kind::Gauge, &mut [], &mut key)
            .is_err()
        {
            return;
        }
        let (name, help) = if applied {
            (
                "push_time_seconds",
                "When a push of this group was last applied (Unix seconds).",
            )
        } else {
            (
                "push_failure_time_seconds",
                "When a push of this group was last refused (Unix seconds).",
            )
        };
        let push = Push::new(vec![Family {
            name: name.into(),
            help: help.into(),
            kind: Kind::Gauge,
            series: vec![Series {
                key: key.into(),
                value: Value::Scalar(crate::clock::unix_now()),
                created: None,
            }],
        }]);
        let routes = crate::rules::Routes {
            families: vec![crate::rules::FamilyRoute::Whole(crate::rules::PUSH_TIME)],
        };
        let _ = self
            .aggregator()
            .apply_routed(push, &routes, &self.rules(), || Ok(()));
    }

    fn ingest_inner(
        &self,
        path_labels: Vec<(String, String)>,
        ticket: &Ticket,
        reservation: Reservation,
        input: usize,
        decode: impl FnOnce(&Options<'_>) -> Result<Push, Rejection>,
    ) -> Result<Ingested, Rejection> {
        let config = self.config();
        let rule_set = self.rules();
        let rules = LabelRules::new(path_labels, &config.drop_labels, config.limits)
            .and_then(|r| r.owning(self.owned_label()))
            .map_err(Rejection::Invalid)?;
        let spend = Spend::new(reservation, config.limits.max_series_per_push, input);
        // Delta windows this push counts: kept only when it is applied.
        let windows = self.aggregator().delta_claims();
        let opts = Options {
            labels: &rules,
            // With rules a gauge may be kept last/max/min; the aggregator
            // refuses a NaN that would be added.
            gauge_nan_ok: self.aggregator().settings().gauge_mode != GaugeMode::Sum
                || !rule_set.is_empty(),
            spend: Some(&spend),
            windows: Some(&windows),
        };
        let span =
            info_span!(target: crate::trace::STAGE, "decode", series = tracing::field::Empty);
        let mut push = span.in_scope(|| decode(&opts))?;
        let series = push.series_count();
        span.record("series", series);
        if series > config.limits.max_series_per_push {
            return Err(Rejection::PushTooLarge {
                count: series,
                limit: config.limits.max_series_per_push,
            });
        }
        if let Some(f) = push
            .families
            .iter()
            .find(|f| f.name.len() > config.limits.max_name_length)
        {
            return Err(Rejection::invalid(format!(
                "metric name {}... is {} bytes, over the limit of {}",
                &f.name[..32.min(f.name.len())],
                f.name.len(),
                config.limits.max_name_length
            )));
        }
        let samples = push.sample_count();
        let commit = || {
            ticket.commit()?;
            windows.commit();
            Ok(())
        };
        let applied = if rule_set.is_empty() && push.producers.is_empty() {
            self.aggregator().apply_if(push, commit)?
        } else {
            let routes = info_span!(target: crate::trace::STAGE, "route")
                .in_scope(|| rule_set.route(&mut push));
            self.aggregator()
                .apply_routed(push, &routes, &rule_set, commit)?
        };
        Ok(Ingested {
            series: applied.series,
            samples,
        })
    }
}

/// Runs CPU-heavy work off the async workers when it is large, keeping the
/// caller's span.
pub(crate) async fn run_sized<T: Send + 'static>(
    large: bool,
    work: impl FnOnce() -> Result<T, Rejection> + Send + 'static,
) -> Result<T, Rejection> {
    if !large {
        return work();
    }
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .unwrap_or(Err(Rejection::Internal))
}
