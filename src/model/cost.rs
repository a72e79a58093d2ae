//! What senders' data costs in memory, as charged to the byte budget
//! (`--max-memory`): one estimate, used both while a push is decoded and
//! when it is stored, so what a push was admitted for is what it holds.

use super::value::Value;

/// What a stored series costs beside its key and its value's heap parts:
/// its slot in a page, in the index and in the key order, and slack for
/// tables grown by doubling (a unit test in the store checks it covers
/// them).
pub const SERIES_OVERHEAD: usize = 112;

/// What a stored family costs beside its series: the map entry, the
/// claims of its names, and the allocator's rounding.
pub const FAMILY_OVERHEAD: usize = 512;

/// Bytes a series with this key and value is charged.
pub fn series_bytes(key_len: usize, value: &Value) -> usize {
    SERIES_OVERHEAD + key_len + value.heap_bytes()
}

/// Bytes a family with this name and help is charged (its name is held
/// by the shard's map and, several times over, by the claims).
pub fn family_bytes(name: &str, help: &str) -> usize {
    FAMILY_OVERHEAD + 8 * name.len() + help.len()
}

/// The most a push of `input` bytes (decompressed body and path) may be
/// charged once decoded: 10 per byte sent plus 1 MiB. Real pushes hold
/// about 2 to 4 per byte; a push of many tiny families or series, or one
/// whose path labels are copied into every series, would hold far more.
pub fn push_allowance(input: usize) -> usize {
    input.saturating_mul(10).saturating_add(1 << 20)
}
