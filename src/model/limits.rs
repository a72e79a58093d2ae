//! What one push may hold.

/// Limits on what one push may hold (contract §1): a push over
/// any of them is refused whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `--max-labels`: labels on one series.
    pub max_labels: usize,
    /// `--max-name-length`: bytes in a metric or label name.
    pub max_name_length: usize,
    /// `--max-label-value-length`: bytes in a label value.
    pub max_label_value_length: usize,
    /// `--max-series-per-push`: series in one push.
    pub max_series_per_push: usize,
    /// `--max-label-bytes`: label names and values on one series.
    pub max_label_bytes: usize,
    /// `--max-native-buckets`: buckets of one native histogram.
    pub max_native_buckets: usize,
    /// `--max-buckets`: buckets of one classic histogram (and the
    /// distinct bounds of a family, checked when applied).
    pub max_buckets: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_labels: 64,
            max_name_length: 256,
            max_label_value_length: 4096,
            max_series_per_push: 200_000,
            max_label_bytes: 16 << 10,
            max_native_buckets: 160,
            max_buckets: 256,
        }
    }
}
