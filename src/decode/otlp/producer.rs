//! Who produced a running total: a digest of its resource's attributes
//! and its instrumentation scope.

use crate::model::SeriesKey;

/// A resource's attributes, digested once when a cumulative metric of it
/// first needs its producer (not once per scope: a resource of many
/// attributes and many scopes costs its attributes once).
pub(super) struct ResourceIdentity<'b> {
    pub(super) attributes: Vec<&'b [u8]>,
    pub(super) digest: Option<ring::digest::Context>,
}

impl ResourceIdentity<'_> {
    pub(super) fn digest(&mut self) -> &ring::digest::Context {
        self.digest.get_or_insert_with(|| {
            // Sorted: the same attributes name the same producer in any
            // order.
            self.attributes.sort_unstable();
            let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
            for a in &self.attributes {
                digest.update(&(a.len() as u64).to_le_bytes());
                digest.update(a);
            }
            digest
        })
    }
}

/// A running total's producer: the resource's attributes and the scope,
/// digested when a cumulative metric first needs it.
pub(super) struct Producer<'r, 'b> {
    pub(super) resource: &'r mut ResourceIdentity<'b>,
    pub(super) scope: &'b [u8],
    pub(super) id: Option<SeriesKey>,
}

/// Bytes of a producer's identity: a SHA-256 digest cut to 128 bits, so a
/// collision between producers is out of reach by chance (and a sender
/// able to craft one could as well push into the series directly).
pub(super) const PRODUCER_ID_BYTES: usize = 16;

impl Producer<'_, '_> {
    pub(super) fn id(&mut self) -> &SeriesKey {
        self.id.get_or_insert_with(|| {
            let mut digest = self.resource.digest().clone();
            digest.update(&[0xFF]);
            digest.update(self.scope);
            digest.finish().as_ref()[..PRODUCER_ID_BYTES].into()
        })
    }
}
