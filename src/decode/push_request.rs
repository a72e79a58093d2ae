//! The gRPC `aggregation_gateway.v1.PushRequest` (contract §3): `families`
//! (field 1, `MetricFamily` messages, decoded as the HTTP protobuf body's
//! are) and `labels` (field 2, a map applied to every series as path labels
//! are). Read from its bytes with the borrowing decoder, not through
//! prost's owned types (two allocations per label).

use super::options::Options;
use super::protobuf::{self, Origin, Scratch};
use crate::error::Rejection;
use crate::model::Push;
use crate::wire;

fn malformed(e: &str) -> Rejection {
    Rejection::invalid(format!("malformed PushRequest: {e}"))
}

/// The request's families.
pub fn families(bytes: &[u8], opts: &Options<'_>) -> Result<Push, Rejection> {
    let mut r = wire::Reader::new(bytes);
    let mut scratch = Scratch::default();
    let mut families = Vec::new();
    let mut n = 0;
    while let Some((field, w)) = r.field().map_err(malformed)? {
        if let (1, wire::Wire::Bytes(b)) = (field, w) {
            n += 1;
            if let Some(f) = protobuf::family(b, opts, &mut scratch, Origin::PushRequest(n))? {
                families.push(f);
            }
        }
    }
    Ok(Push::new(families))
}

/// The request's `labels` map, read before the families need it; more than
/// `max` entries are refused as soon as they are seen.
pub fn labels(bytes: &[u8], max: usize) -> Result<Vec<(String, String)>, Rejection> {
    let mut labels = Vec::new();
    let mut r = wire::Reader::new(bytes);
    while let Some((field, w)) = r.field().map_err(malformed)? {
        if let (2, wire::Wire::Bytes(entry)) = (field, w) {
            let (mut k, mut v) = ("", "");
            let mut e = wire::Reader::new(entry);
            while let Some((f, w)) = e.field().map_err(malformed)? {
                match f {
                    1 => k = wire::string(w).map_err(malformed)?,
                    2 => v = wire::string(w).map_err(malformed)?,
                    _ => {}
                }
            }
            if labels.len() == max {
                return Err(Rejection::invalid(format!(
                    "PushRequest labels number over the limit of {max} (--max-labels)"
                )));
            }
            labels.push((k.to_string(), v.to_string()));
        }
    }
    Ok(labels)
}
