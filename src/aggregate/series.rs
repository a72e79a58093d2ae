//! A family's series: the table pushes look series up in, and the pages
//! scrapes read without any lock.
//!
//! Series live in pages of up to [`PAGE`]: a page holds its series' keys
//! back to back in one buffer and the series themselves in one `Vec`, so a
//! series costs its key's bytes and a fixed-size slot, with no allocation
//! of its own. Pages are reference-counted: a scrape takes the pages of
//! every family (one count each) while the shard locks are held, and
//! renders after they are released; a push that changes a page a scrape
//! still holds copies that page alone (copy-on-write), so neither waits for
//! the other.
//!
//! Lookups go through a hash table of positions (page and slot packed in a
//! `u32`). Scrapes read series in key order: `order` holds the positions of
//! the series in key order; series added out of order are left after it
//! (the tail) and merged in by the next scrape, outside the locks (see
//! [`SeriesView::complete_order`]). Positions have 22 bits for the page:
//! room for 4 million pages, kept in proportion to the series by
//! repacking when drops leave them less than half full.

use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use super::stored::StoredSeries;

const PAGE_BITS: u32 = 10;
/// Series in one page: a push copies at most this many when it changes a
/// page a scrape holds.
pub(crate) const PAGE: usize = 1 << PAGE_BITS;

/// Up to [`PAGE`] series and their keys.
#[derive(Debug, Clone, Default)]
pub struct Page {
    keys: Vec<u8>,
    series: Vec<StoredSeries>,
}

impl Page {
    fn key(&self, slot: usize) -> &[u8] {
        let start = match slot {
            0 => 0,
            _ => self.series[slot - 1].key_end as usize,
        };
        &self.keys[start..self.series[slot].key_end as usize]
    }

    fn has_room(&self, key_len: usize) -> bool {
        self.series.len() < PAGE && self.keys.len() + key_len <= u32::MAX as usize
    }

    /// Gives back the growth slack of a page that takes no more series.
    fn seal(&mut self) {
        self.keys.shrink_to_fit();
        self.series.shrink_to_fit();
    }
}

fn position(page: usize, slot: usize) -> u32 {
    ((page as u32) << PAGE_BITS) | slot as u32
}

fn split(position: u32) -> (usize, usize) {
    (
        (position >> PAGE_BITS) as usize,
        position as usize & (PAGE - 1),
    )
}

fn key_at(pages: &[Arc<Page>], at: u32) -> &[u8] {
    let (page, slot) = split(at);
    pages[page].key(slot)
}

fn series_at(pages: &[Arc<Page>], at: u32) -> &StoredSeries {
    let (page, slot) = split(at);
    &pages[page].series[slot]
}

/// How many of the leading positions of `sorted` (in key order) have keys
/// below `key`: galloping out from the front, then a binary search, so a
/// tail of `t` series merges into an order of `n` in about
/// `t * log(n / t)` key comparisons, each a likely cache miss, instead of
/// `n + t` (10k new series into a million: 100k instead of a million).
fn below(pages: &[Arc<Page>], sorted: &[u32], key: &[u8]) -> usize {
    let less = |at: &u32| key_at(pages, *at) < key;
    let mut bound = 1;
    while bound <= sorted.len() && less(&sorted[bound - 1]) {
        bound *= 2;
    }
    // Every key before `bound / 2` is below (the last step checked the
    // one at `bound / 2 - 1`); the one at `bound - 1`, if any, is not.
    let from = bound / 2;
    from + sorted[from..bound.min(sorted.len())].partition_point(less)
}

/// The series of one stored family.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeriesTable {
    pages: Vec<Arc<Page>>,
    index: HashTable<u32>,
    /// Random per family: keys crafted to collide cannot be.
    hasher: RandomState,
    len: usize,
    /// Positions of the first `order.len()` series (in page order) sorted
    /// by key; the rest are the tail, not sorted yet.
    order: Arc<Vec<u32>>,
    /// Changes whenever series move (drops, repacking) or the table starts
    /// anew, so an order computed for one layout is never adopted for
    /// another. Series added keep it: they go after the others, whose
    /// positions stay, so an order of the first series stays true.
    layout: u64,
}

impl SeriesTable {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn find(&self, key: &[u8]) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        self.index
            .find(hash, |&at| key_at(&self.pages, at) == key)
            .copied()
    }

    #[cfg(test)]
    pub(crate) fn get(&self, key: &[u8]) -> Option<&StoredSeries> {
        self.find(key).map(|at| series_at(&self.pages, at))
    }

    /// The series at `at` (from [`SeriesTable::find`]).
    pub(crate) fn at(&self, at: u32) -> &StoredSeries {
        series_at(&self.pages, at)
    }

    /// The series with this key, its page copied first if a scrape holds it.
    #[cfg(test)]
    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut StoredSeries> {
        let (page, slot) = split(self.find(key)?);
        Some(&mut Arc::make_mut(&mut self.pages[page]).series[slot])
    }

    /// The pages holding the series at `positions`, writable: each copied
    /// once if a scrape holds it (a reference-count check per page, not
    /// per series).
    pub(crate) fn writable(&mut self, positions: impl Iterator<Item = u32>) -> Writable<'_> {
        let mut wanted = vec![false; self.pages.len()];
        for at in positions {
            wanted[split(at).0] = true;
        }
        Writable {
            pages: self
                .pages
                .iter_mut()
                .zip(wanted)
                .map(|(page, wanted)| wanted.then(|| Arc::make_mut(page)))
                .collect(),
        }
    }

    /// Room for `more` series without growing the index.
    pub(crate) fn reserve(&mut self, more: usize) {
        let pages = &self.pages;
        let hasher = &self.hasher;
        self.index
            .reserve(more, |&at| hasher.hash_one(key_at(pages, at)));
    }

    /// Adds a series whose key is not stored; `layout` is a stamp no
    /// layout had before, taken if the table starts anew.
    pub(crate) fn insert(&mut self, key: &[u8], mut series: StoredSeries, layout: u64) {
        if self.len == 0 {
            self.layout = layout;
        }
        if self.pages.last().is_none_or(|p| !p.has_room(key.len())) {
            if let Some(last) = self.pages.last_mut().and_then(Arc::get_mut) {
                last.seal();
            }
            self.pages.push(Arc::default());
        }
        let page_no = self.pages.len() - 1;
        let page = Arc::make_mut(&mut self.pages[page_no]);
        page.keys.extend_from_slice(key);
        series.key_end = page.keys.len() as u32;
        let at = position(page_no, page.series.len());
        page.series.push(series);
        let pages = &self.pages;
        let hasher = &self.hasher;
        self.index.insert_unique(hasher.hash_one(key), at, |&q| {
            hasher.hash_one(key_at(pages, q))
        });
        // In key order and nothing waiting: extend the order now, unless a
        // scrape holds it (then the next scrape merges it in).
        if self.order.len() == self.len
            && self
                .order
                .last()
                .is_none_or(|&last| key_at(&self.pages, last) < key)
            && let Some(order) = Arc::get_mut(&mut self.order)
        {
            order.push(at);
        }
        self.len += 1;
    }

    /// Keeps the series `keep` says yes to, calling `dropped` with each
    /// other one; returns how many were dropped. Pages that lose series are
    /// rebuilt (copies: a scrape may hold them); the others stay as they are.
    pub(crate) fn retain(
        &mut self,
        mut keep: impl FnMut(&[u8], &StoredSeries) -> bool,
        mut dropped: impl FnMut(&[u8], &StoredSeries),
        layout: u64,
    ) -> usize {
        let mut count = 0;
        let mut kept = Vec::new();
        // Per page rebuilt: old slot -> new position, or none.
        let mut moved: Vec<Option<Vec<Option<u32>>>> = vec![None; self.pages.len()];
        for (page_no, moved) in moved.iter_mut().enumerate() {
            let page = &self.pages[page_no];
            kept.clear();
            kept.extend((0..page.series.len()).map(|s| keep(page.key(s), &page.series[s])));
            if kept.iter().all(|k| *k) {
                continue;
            }
            let mut rebuilt = Page::default();
            let mut map = Vec::with_capacity(kept.len());
            for (slot, &k) in kept.iter().enumerate() {
                let key = page.key(slot);
                let old = position(page_no, slot);
                let hash = self.hasher.hash_one(key);
                if k {
                    let new = position(page_no, rebuilt.series.len());
                    rebuilt.keys.extend_from_slice(key);
                    let mut s = page.series[slot].clone();
                    s.key_end = rebuilt.keys.len() as u32;
                    rebuilt.series.push(s);
                    if let Some(at) = self.index.find_mut(hash, |&at| at == old) {
                        *at = new;
                    }
                    map.push(Some(new));
                } else {
                    dropped(key, &page.series[slot]);
                    if let Ok(entry) = self.index.find_entry(hash, |&at| at == old) {
                        entry.remove();
                    }
                    count += 1;
                    map.push(None);
                }
            }
            rebuilt.seal();
            self.pages[page_no] = Arc::new(rebuilt);
            *moved = Some(map);
        }
        if count == 0 {
            return 0;
        }
        self.len -= count;
        let remap = |at: u32| {
            let (page, slot) = split(at);
            match &moved[page] {
                Some(map) => map[slot],
                None => Some(at),
            }
        };
        self.order = Arc::new(self.order.iter().filter_map(|&at| remap(at)).collect());
        if self.len == 0 {
            self.pages.clear();
        } else if self.len < self.pages.len() * PAGE / 2 {
            self.repack();
        }
        self.layout = layout;
        count
    }

    /// Moves the series into full pages, when drops left the pages less
    /// than half full: the pages (and the positions, which have 22 bits
    /// for the page) stay in proportion to the series, however many come
    /// and go over a family's life. Linear, after a drop that was too.
    fn repack(&mut self) {
        let old = std::mem::take(&mut self.pages);
        // Where each old page's series start in the new sequence.
        let mut starts = Vec::with_capacity(old.len());
        let mut next = 0;
        for page in &old {
            starts.push(next);
            next += page.series.len();
        }
        let moved = |at: u32| {
            let (page, slot) = split(at);
            let n = starts[page] + slot;
            position(n / PAGE, n % PAGE)
        };
        let mut pages: Vec<Arc<Page>> = Vec::with_capacity(self.len.div_ceil(PAGE));
        let mut page = Page::default();
        for old_page in &old {
            for slot in 0..old_page.series.len() {
                if page.series.len() == PAGE {
                    page.seal();
                    pages.push(Arc::new(std::mem::take(&mut page)));
                }
                page.keys.extend_from_slice(old_page.key(slot));
                let mut s = old_page.series[slot].clone();
                s.key_end = page.keys.len() as u32;
                page.series.push(s);
            }
        }
        page.seal();
        pages.push(Arc::new(page));
        let hasher = &self.hasher;
        let mut index = HashTable::with_capacity(self.len);
        for (page_no, page) in pages.iter().enumerate() {
            for slot in 0..page.series.len() {
                index.insert_unique(
                    hasher.hash_one(page.key(slot)),
                    position(page_no, slot),
                    |&q| hasher.hash_one(key_at(&pages, q)),
                );
            }
        }
        self.order = Arc::new(self.order.iter().map(|&at| moved(at)).collect());
        self.pages = pages;
        self.index = index;
    }

    /// The series in page order (not key order).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &StoredSeries)> {
        self.pages
            .iter()
            .flat_map(|p| (0..p.series.len()).map(move |s| (p.key(s), &p.series[s])))
    }

    /// What a scrape reads: the pages as they are now.
    pub(crate) fn view(&self) -> SeriesView {
        SeriesView {
            pages: self.pages.clone(),
            order: self.order.clone(),
            len: self.len,
            layout: self.layout,
        }
    }

    /// Takes an order completed on a view, if the series have not moved
    /// since the view was taken and it orders more of them than the
    /// table's own (series added since stay in the tail).
    pub(crate) fn adopt_order(&mut self, view: &SeriesView) {
        if view.layout == self.layout && view.order.len() > self.order.len() {
            self.order = view.order.clone();
        }
    }
}

/// Series of a table made writable by [`SeriesTable::writable`].
pub(crate) struct Writable<'a> {
    pages: Vec<Option<&'a mut Page>>,
}

impl Writable<'_> {
    /// The series at `at`, if its page was made writable.
    pub(crate) fn get(&mut self, at: u32) -> Option<&mut StoredSeries> {
        let (page, slot) = split(at);
        self.pages.get_mut(page)?.as_mut()?.series.get_mut(slot)
    }
}

/// The series of a family as a scrape took them (see the module docs).
#[derive(Debug, Clone, Default)]
pub(crate) struct SeriesView {
    pages: Vec<Arc<Page>>,
    order: Arc<Vec<u32>>,
    len: usize,
    layout: u64,
}

impl SeriesView {
    /// Whether [`SeriesView::complete_order`] has work to do.
    pub(crate) fn needs_order(&self) -> bool {
        self.order.len() < self.len
    }

    /// Sorts the tail and merges it into the order: the series added out
    /// of key order since the last scrape. Runs outside the locks.
    pub(crate) fn complete_order(&mut self) {
        if !self.needs_order() {
            return;
        }
        let pages = &self.pages;
        // The tail: the last `len - order.len()` series, in page order,
        // each with its key, so the sort compares keys without looking
        // them up through the pages at every comparison (24 bytes a series
        // instead of 4 while it sorts; figures and the alternative tried in
        // bench/README.md, "Views out of key order").
        let tail_len = self.len - self.order.len();
        let mut tail: Vec<(&[u8], u32)> = Vec::with_capacity(tail_len);
        let mut skip = self.len - tail_len;
        for (page_no, page) in pages.iter().enumerate() {
            let n = page.series.len();
            if skip >= n {
                skip -= n;
                continue;
            }
            tail.extend((skip..n).map(|slot| (page.key(slot), position(page_no, slot))));
            skip = 0;
        }
        tail.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let sorted = &self.order[..];
        let mut merged = Vec::with_capacity(self.len);
        let mut i = 0;
        if tail.len() * 8 < sorted.len() {
            // A short tail: runs of the order copied whole between its
            // series (see `below`).
            for &(key, at) in &tail {
                let run = below(pages, &sorted[i..], key);
                merged.extend_from_slice(&sorted[i..i + run]);
                i += run;
                merged.push(at);
            }
        } else {
            // Interleaved throughout, as likely as not: one comparison per
            // series (galloping measured 22 % slower on 90k new series
            // falling between 10k).
            let mut j = 0;
            while i < sorted.len() && j < tail.len() {
                if key_at(pages, sorted[i]) < tail[j].0 {
                    merged.push(sorted[i]);
                    i += 1;
                } else {
                    merged.push(tail[j].1);
                    j += 1;
                }
            }
            merged.extend(tail[j..].iter().map(|t| t.1));
        }
        merged.extend_from_slice(&sorted[i..]);
        self.order = Arc::new(merged);
    }

    /// Series in the view.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The series in key order, once the order is complete (in page order
    /// for the tail before).
    pub(crate) fn iter(&self) -> Ordered<'_> {
        debug_assert!(!self.needs_order());
        Ordered {
            view: self,
            next: 0,
        }
    }
}

/// The series of a view in key order. Series added out of key order sit
/// anywhere in the pages, so reading them in key order misses the cache at
/// nearly every series: the iterator reads a few series ahead of the one it
/// gives (a slot [`SLOT_AHEAD`] ahead, a key [`KEY_AHEAD`] ahead), so the
/// misses overlap instead of following one another (safe code has no
/// prefetch instruction; a load whose value is not waited for does the
/// same; figures in bench/README.md, "Views out of key order"). New
/// series are also stored in key order per push (`Shard::merge`), which
/// does most.
pub(crate) struct Ordered<'a> {
    view: &'a SeriesView,
    next: usize,
}

const SLOT_AHEAD: usize = 16;
const KEY_AHEAD: usize = 8;

impl<'a> Iterator for Ordered<'a> {
    type Item = (&'a [u8], &'a StoredSeries);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let order = &self.view.order;
        let pages = &self.view.pages;
        let &at = order.get(self.next)?;
        if let Some(&ahead) = order.get(self.next + SLOT_AHEAD) {
            let (page, slot) = split(ahead);
            std::hint::black_box(pages[page].series[slot].key_end);
        }
        if let Some(&ahead) = order.get(self.next + KEY_AHEAD) {
            let (page, slot) = split(ahead);
            let page = &pages[page];
            let end = page.series[slot].key_end as usize;
            std::hint::black_box(page.keys.get(end.wrapping_sub(1)).copied());
        }
        self.next += 1;
        Some((key_at(pages, at), series_at(pages, at)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.view.order.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Ordered<'_> {}

#[cfg(test)]
mod tests;
