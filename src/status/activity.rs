//! What senders did, for the status page and its API: each grouping key
//! pushed (the labels of the push path, or of a gRPC request) with its last
//! push and outcome, and a ring of the latest refused pushes with their
//! reasons. Both are bounded in entries and in bytes (grouping keys at most
//! [`MAX_GROUP_BYTES`], a reason cut to one short line), so no sender can
//! grow them; neither holds a body or a credential.

use std::collections::{HashMap, VecDeque};

use foldhash::fast::RandomState;
use parking_lot::Mutex;

use crate::clock::unix_now;
use crate::error::Rejection;
use crate::routes::Protocol;

/// Most grouping keys remembered; past it the one pushed to longest ago
/// is forgotten.
pub const MAX_GROUPS: usize = 10_000;
/// Most bytes the grouping keys (and their last errors) take; past it the
/// keys pushed to longest ago are forgotten. Keys come from senders, each up
/// to `--max-label-bytes`.
pub const MAX_GROUP_BYTES: usize = 16 << 20;
/// What a remembered grouping key costs beside its key and error text.
const GROUP_OVERHEAD: usize = 128;
/// Refused pushes kept, newest first.
pub const MAX_REFUSALS: usize = 200;
/// Longest reason (and route) kept, in bytes.
const MAX_TEXT: usize = 300;

/// `s` cut to at most `MAX_TEXT` bytes on a character boundary, on one
/// line.
fn one_line(s: &str) -> String {
    let mut end = s.len().min(MAX_TEXT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out: String = s[..end].replace(['\n', '\r'], " ");
    if end < s.len() {
        out.push('…');
    }
    out
}

/// One grouping key's pushes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Group {
    /// Its labels, sorted by name (listed by the status API as an object).
    #[serde(skip)]
    pub labels: Vec<(String, String)>,
    /// When it was first pushed (Unix seconds).
    pub first_push: f64,
    /// When it was last pushed, applied or not.
    pub last_push: f64,
    /// When a push of it was last applied.
    pub last_success: Option<f64>,
    /// Pushes of it, applied or not.
    pub pushes: u64,
    /// Pushes of it refused.
    pub refused: u64,
    /// Series its last applied push held.
    pub series: usize,
    /// The reason its last push was refused, when it was.
    pub last_error: Option<String>,
}

impl Group {
    fn record(&mut self, now: f64, outcome: Result<usize, &Rejection>) {
        self.last_push = now;
        self.pushes += 1;
        match outcome {
            Ok(series) => {
                self.last_success = Some(now);
                self.series = series;
                self.last_error = None;
            }
            Err(r) => {
                self.refused += 1;
                self.last_error = Some(one_line(&r.to_string()));
            }
        }
    }
}

/// One refused push.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refusal {
    /// When (Unix seconds).
    pub time: f64,
    /// `http` or `grpc`.
    pub protocol: &'static str,
    /// The request path, or the gRPC method.
    pub route: String,
    /// The HTTP status, or the gRPC status code's name.
    pub status: String,
    /// A short fixed code (`parse`, `too_many_series`, `unauthenticated`...).
    pub code: &'static str,
    /// The one-line reason the sender was given.
    pub reason: String,
}

/// The activity records of a gateway.
#[derive(Debug, Default)]
pub struct Activity {
    groups: Mutex<Groups>,
    refusals: Mutex<VecDeque<Refusal>>,
}

/// The grouping keys remembered (their labels left empty: they are read
/// back from the key when asked for) and the bytes they take.
#[derive(Debug, Default)]
struct Groups {
    by_key: HashMap<String, Group, RandomState>,
    bytes: usize,
}

fn group_bytes(key: &str, group: &Group) -> usize {
    GROUP_OVERHEAD + key.len() + group.last_error.as_ref().map_or(0, String::len)
}

impl Groups {
    /// Forgets the key pushed to longest ago; whether there was one.
    fn evict_oldest(&mut self) -> bool {
        // O(groups), only when full: a rare push of a new key then.
        let oldest = self
            .by_key
            .iter()
            .min_by(|a, b| a.1.last_push.total_cmp(&b.1.last_push))
            .map(|(k, _)| k.clone());
        match oldest.and_then(|k| self.by_key.remove_entry(&k)) {
            Some((k, g)) => {
                self.bytes -= group_bytes(&k, &g);
                true
            }
            None => false,
        }
    }
}

/// A grouping key as an index key: its pairs sorted, each name and value
/// ended by a NUL (never in a label name; a value with one is read back
/// as far as it goes, which only shortens what the page shows). One
/// allocation per push: this runs on every push.
pub struct GroupKey(String);

impl GroupKey {
    /// The key of these labels (in any order).
    pub fn of(labels: &[(String, String)]) -> GroupKey {
        let len = labels.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
        let mut key = String::with_capacity(len);
        let mut push = |(n, v): &(String, String)| {
            key.push_str(n);
            key.push('\0');
            key.push_str(v);
            key.push('\0');
        };
        // Path labels are few: their order sorted on the stack, no
        // allocation but the key's.
        let mut order = [0u8; 16];
        if labels.len() <= order.len() {
            let order = &mut order[..labels.len()];
            for (i, o) in order.iter_mut().enumerate() {
                *o = i as u8;
            }
            order.sort_unstable_by(|&a, &b| labels[usize::from(a)].cmp(&labels[usize::from(b)]));
            order.iter().for_each(|&i| push(&labels[usize::from(i)]));
        } else {
            let mut refs: Vec<&(String, String)> = labels.iter().collect();
            refs.sort_unstable();
            refs.into_iter().for_each(push);
        }
        GroupKey(key)
    }

    /// The labels, sorted by name.
    pub fn labels(&self) -> Vec<(String, String)> {
        let mut parts = self.0.split('\0');
        let mut out = Vec::new();
        while let (Some(n), Some(v)) = (parts.next(), parts.next()) {
            out.push((n.to_string(), v.to_string()));
        }
        out
    }
}

impl Activity {
    /// Records a push of the grouping key `labels` that held `series`
    /// series and was applied, or refused for `outcome`'s reason.
    pub fn pushed(&self, key: GroupKey, outcome: Result<usize, &Rejection>) {
        let now = unix_now();
        let mut groups = self.groups.lock();
        let groups = &mut *groups;
        // An existing key (nearly every push): one lookup, no copy.
        if let Some(group) = groups.by_key.get_mut(key.0.as_str()) {
            let before = group_bytes(&key.0, group);
            group.record(now, outcome);
            groups.bytes = groups.bytes - before + group_bytes(&key.0, group);
            return;
        }
        let mut group = Group {
            labels: Vec::new(),
            first_push: now,
            last_push: now,
            last_success: None,
            pushes: 0,
            refused: 0,
            series: 0,
            last_error: None,
        };
        group.record(now, outcome);
        let bytes = group_bytes(&key.0, &group);
        while (groups.by_key.len() >= MAX_GROUPS || groups.bytes + bytes > MAX_GROUP_BYTES)
            && groups.evict_oldest()
        {}
        groups.bytes += bytes;
        groups.by_key.insert(key.0, group);
    }

    /// Forgets the grouping keys holding every one of `labels` (their
    /// series were deleted); all with no labels given.
    pub fn forget(&self, labels: &[(String, String)]) {
        let mut groups = self.groups.lock();
        let groups = &mut *groups;
        let mut freed = 0;
        groups.by_key.retain(|k, g| {
            let held = GroupKey(k.clone()).labels();
            let keep = !labels.iter().all(|pair| held.contains(pair));
            if !keep {
                freed += group_bytes(k, g);
            }
            keep
        });
        groups.bytes -= freed;
    }

    /// The grouping keys, most recently pushed first.
    pub fn groups(&self) -> Vec<Group> {
        self.groups_page(0, usize::MAX, usize::MAX).1
    }

    /// How many grouping keys there are, and a page of them, most recently
    /// pushed first: from `offset`, at most `limit`, and no more once their
    /// labels hold `most_bytes` (at least one). Only the page is copied.
    pub fn groups_page(
        &self,
        offset: usize,
        limit: usize,
        most_bytes: usize,
    ) -> (usize, Vec<Group>) {
        let groups = self.groups.lock();
        let mut order: Vec<_> = groups.by_key.iter().collect();
        order.sort_by(|a, b| b.1.last_push.total_cmp(&a.1.last_push));
        let mut bytes = 0;
        let mut page = Vec::new();
        for (k, g) in order.into_iter().skip(offset).take(limit) {
            if !page.is_empty() && bytes >= most_bytes {
                break;
            }
            let labels = GroupKey(k.clone()).labels();
            bytes += labels.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>();
            page.push(Group {
                labels,
                ..g.clone()
            });
        }
        (groups.by_key.len(), page)
    }

    /// Bytes the grouping keys take now.
    pub fn group_bytes(&self) -> usize {
        self.groups.lock().bytes
    }

    /// Records a refused push to `route`.
    pub fn refused(&self, protocol: Protocol, route: &str, rejection: &Rejection) {
        let status = match protocol {
            Protocol::Grpc => format!("{:?}", rejection.grpc_code()),
            Protocol::Http => rejection.status().as_u16().to_string(),
        };
        let refusal = Refusal {
            time: unix_now(),
            protocol: match protocol {
                Protocol::Grpc => "grpc",
                Protocol::Http => "http",
            },
            route: one_line(route),
            status,
            code: rejection.reason(),
            reason: one_line(&rejection.to_string()),
        };
        let mut ring = self.refusals.lock();
        if ring.len() >= MAX_REFUSALS {
            ring.pop_back();
        }
        ring.push_front(refusal);
    }

    /// The latest refused pushes, newest first.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.refusals.lock().iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn groups_by_sorted_labels_and_forgets_on_delete() {
        let a = Activity::default();
        let key = |pairs: &[(&str, &str)]| GroupKey::of(&l(pairs));
        a.pushed(key(&[("job", "a"), ("instance", "1")]), Ok(3));
        a.pushed(key(&[("instance", "1"), ("job", "a")]), Ok(4));
        a.pushed(key(&[("job", "b")]), Err(&Rejection::invalid("bad\nline")));
        let groups = a.groups();
        assert_eq!(groups.len(), 2);
        let ga = groups.iter().find(|g| g.labels.len() == 2).unwrap();
        assert_eq!((ga.pushes, ga.series, ga.refused), (2, 4, 0));
        assert_eq!(ga.labels, l(&[("instance", "1"), ("job", "a")]));
        let gb = groups.iter().find(|g| g.labels.len() == 1).unwrap();
        assert_eq!(gb.last_error.as_deref(), Some("bad line"));
        a.forget(&l(&[("job", "a")]));
        assert_eq!(a.groups().len(), 1);
    }

    #[test]
    fn bounded() {
        let a = Activity::default();
        for i in 0..MAX_GROUPS + 5 {
            a.pushed(GroupKey::of(&l(&[("job", &i.to_string())])), Ok(1));
        }
        assert_eq!(a.groups().len(), MAX_GROUPS);
        // Large keys: bounded in bytes, the oldest forgotten first.
        let a = Activity::default();
        let big = "v".repeat(16 << 10);
        for i in 0..2000 {
            a.pushed(GroupKey::of(&l(&[("job", &format!("{i}{big}"))])), Ok(1));
        }
        assert!(a.group_bytes() <= MAX_GROUP_BYTES, "{}", a.group_bytes());
        let groups = a.groups();
        assert!(
            groups.len() < 2000 && groups.len() > 900,
            "{}",
            groups.len()
        );
        assert!(groups[0].labels[0].1.starts_with("1999"));
        a.forget(&[]);
        assert_eq!(a.group_bytes(), 0);
        for _ in 0..MAX_REFUSALS + 5 {
            a.refused(Protocol::Http, &"/x".repeat(1000), &Rejection::Timeout);
        }
        let r = a.refusals();
        assert_eq!(r.len(), MAX_REFUSALS);
        assert!(r[0].route.len() <= MAX_TEXT + 3);
        assert_eq!(r[0].status, "408");
    }
}
