//! What decoding a push needs besides its bytes, and the checks every
//! decoder makes of a value.

use crate::error::Rejection;
use crate::model::{Kind, LabelRules};

/// What decoding a push needs besides its bytes.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// Path labels and `--drop-label`.
    pub labels: &'a LabelRules,
    /// Whether a NaN gauge value is accepted: not when gauges are summed, as
    /// one NaN would poison the sum for good.
    pub gauge_nan_ok: bool,
    /// Where the bytes of the decoded push are charged as it is built;
    /// none: not charged (tests, snapshots).
    pub spend: Option<&'a Spend>,
    /// Where delta points' windows are claimed, so a window counted
    /// already is dropped (OTLP); none: every delta is added.
    pub windows: Option<&'a crate::aggregate::windows::Claims<'a>>,
}

impl Options<'_> {
    /// Charges a decoded series of a key of `key_len` bytes and `extra`
    /// bytes of buckets, before it is kept; refuses past the budget or
    /// `--max-series-per-push`.
    #[inline]
    pub(crate) fn charge(
        &self,
        key_len: usize,
        value: &crate::model::Value,
    ) -> Result<(), Rejection> {
        self.charge_bytes(crate::model::cost::series_bytes(key_len, value), 1)
    }

    /// Charges `bytes` of a push being decoded that hold `series` new
    /// series (text series are built a sample at a time).
    #[inline]
    pub(crate) fn charge_bytes(&self, bytes: usize, series: usize) -> Result<(), Rejection> {
        match self.spend {
            Some(spend) => spend.add(bytes, series),
            None => Ok(()),
        }
    }

    /// Charges a decoded family, as [`Options::charge`] does a series.
    pub(crate) fn charge_family(&self, name: &str, help: &str) -> Result<(), Rejection> {
        self.charge_bytes(crate::model::cost::family_bytes(name, help), 0)
    }
}

/// The byte budget of one decode: charged in steps of [`Spend::STEP`], so
/// the shared counter is touched once per step, not once per series.
#[derive(Debug)]
pub struct Spend {
    reservation: std::cell::RefCell<crate::memory::Reservation>,
    pending: std::cell::Cell<usize>,
    series: std::cell::Cell<usize>,
    max_series: usize,
    /// Charged so far, and the most allowed for the input's size.
    total: std::cell::Cell<usize>,
    allowance: usize,
    input: usize,
}

impl Spend {
    const STEP: usize = 64 << 10;

    /// Charges to `reservation` the decoding of `input` bytes, refusing a
    /// push past `max_series` series, or held as more than
    /// [`crate::model::cost::push_allowance`] bytes, as soon as it gets
    /// there.
    pub fn new(reservation: crate::memory::Reservation, max_series: usize, input: usize) -> Spend {
        Spend {
            reservation: std::cell::RefCell::new(reservation),
            pending: std::cell::Cell::new(0),
            series: std::cell::Cell::new(0),
            max_series,
            total: std::cell::Cell::new(0),
            allowance: crate::model::cost::push_allowance(input),
            input,
        }
    }

    /// Adds `series` series of `bytes` in all, reserving a step ahead
    /// whenever what is reserved runs out.
    #[inline]
    pub fn add(&self, bytes: usize, series: usize) -> Result<(), Rejection> {
        let count = self.series.get() + series;
        self.series.set(count);
        if count > self.max_series {
            return Err(Rejection::PushTooLarge {
                count,
                limit: self.max_series,
            });
        }
        let total = self.total.get() + bytes;
        self.total.set(total);
        if total > self.allowance {
            return Err(Rejection::PushTooDense {
                input: self.input,
                limit: self.allowance,
            });
        }
        let pending = self.pending.get() + bytes;
        if pending <= Self::STEP {
            self.pending.set(pending);
            return Ok(());
        }
        self.pending.set(0);
        self.reservation.borrow_mut().grow(pending)
    }
}

/// Checks a counter, gauge or untyped value (contract §4); returns the reason.
pub(crate) fn check_scalar(kind: Kind, v: f64, opts: &Options<'_>) -> Result<(), String> {
    match kind {
        Kind::Counter if v.is_nan() => Err("counter value is NaN".into()),
        Kind::Counter if v < 0.0 => Err(format!("counter value {v} is negative")),
        Kind::Untyped if v.is_nan() => Err("untyped value is NaN (it would poison the sum)".into()),
        Kind::Gauge if v.is_nan() && !opts.gauge_nan_ok => {
            Err("gauge value is NaN (it would poison the sum; see --gauge-mode)".into())
        }
        _ => Ok(()),
    }
}

/// Checks a summary's `_count` and `_sum`; returns the reason. The count
/// must be a whole number protobuf's `uint64` holds, as a scrape in
/// protobuf (and a snapshot) writes it so.
pub(crate) fn check_summary(count: f64, sum: f64) -> Result<(), String> {
    if !crate::model::is_count(count) || count.fract() != 0.0 || count >= 1.8446744073709552e19 {
        return Err(format!(
            "_count is {count}, not a count (a whole number of observations)"
        ));
    }
    if sum.is_nan() {
        return Err("_sum is NaN".into());
    }
    Ok(())
}
