//! The status API (`/api/v1/...`) and the page that shows it (`/`): what
//! is stored, who pushed, what was refused and why, and how close the
//! gateway is to its limits. Reading is open like a scrape; the page's
//! actions (delete a group, wipe) go to the admin routes, which ask for
//! credentials.
//!
//! Every view is computed from a consistent view of the aggregate taken as
//! a scrape takes it (the shard locks held only to take it), and large ones
//! off the async workers, so polling the page never stalls pushes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Extension, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use foldhash::fast::RandomState;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Gateway;
use crate::activity::unix_now;
use crate::middleware::routing::OriginalPath;
use crate::model::labels;

/// Most entries one page of `/api/v1/families` or `/api/v1/groups` lists.
const MAX_PAGE: usize = 1000;
/// Most bytes of entries one page holds: a page ends early (its `next`
/// says where the following one starts) rather than pass it, since one
/// group's labels can be tens of KiB and a family's name 1 KiB or more.
const MAX_PAGE_BYTES: usize = 1 << 20;

/// One page's entries as a JSON array: at most `limit`, and no more once
/// they hold [`MAX_PAGE_BYTES`] (at least one, however large); and how many.
/// Written straight from the entries: a tree of `serde_json::Value`s
/// for a page of 1 MiB took several times that.
fn page_of<T: Serialize>(entries: impl Iterator<Item = T>, limit: usize) -> (Vec<u8>, usize) {
    let mut out = vec![b'['];
    let mut listed = 0;
    for entry in entries.take(limit) {
        if listed > 0 {
            if out.len() >= MAX_PAGE_BYTES {
                break;
            }
            out.push(b',');
        }
        // Writing to a Vec fails only for maps with non-string keys.
        let _ = serde_json::to_writer(&mut out, &entry);
        listed += 1;
    }
    out.push(b']');
    (out, listed)
}

/// A page's answer: `{"total", "offset", "limit", "next", <key>: entries}`.
fn page_answer(
    gw: &Gateway,
    key: &str,
    total: usize,
    offset: usize,
    limit: usize,
    page: (Vec<u8>, usize),
) -> Response {
    let (entries, listed) = page;
    let next = next_offset(offset, listed, total).map_or("null".to_string(), |n| n.to_string());
    let mut text =
        format!(r#"{{"total":{total},"offset":{offset},"limit":{limit},"next":{next},"{key}":"#)
            .into_bytes();
    text.extend_from_slice(&entries);
    text.extend_from_slice(b"}\n");
    answer(gw, text)
}

/// Where the page after one of `listed` entries from `offset` starts;
/// `None` after the last.
fn next_offset(offset: usize, listed: usize, total: usize) -> Option<usize> {
    let next = offset.saturating_add(listed);
    (next < total).then_some(next)
}

/// Longest HELP text a list view shows, in bytes (cut at a character
/// boundary and marked with `…`): a page of a thousand families with
/// HELP texts of megabytes would be as large.
const MAX_LISTED_HELP: usize = 256;

/// `text` cut to at most `most` bytes (and `…`).
fn cut(text: &str, most: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= most {
        return text.into();
    }
    let mut end = most;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
}
/// How long a computed cardinality view is served again: it reads every
/// series, so a page polling it every second reads them once per period.
const CARDINALITY_FRESH: Duration = Duration::from_secs(10);
/// Entries per list of `/api/v1/cardinality`, at most.
const MAX_TOP: usize = 100;

/// The status API's state, kept in the [`Gateway`].
#[derive(Debug)]
pub struct Views {
    /// The last cardinality counts.
    cardinality: CardinalityCache,
    /// What answers being sent may hold: an eighth of `--max-memory`, a
    /// budget of their own so that clients asking for pages and never
    /// reading them cannot take what pushes need.
    answers: Arc<crate::memory::Memory>,
}

impl Views {
    /// Empty, for a gateway of `max_memory` bytes.
    pub fn new(max_memory: usize) -> Views {
        Views {
            cardinality: CardinalityCache::default(),
            answers: crate::memory::Memory::new(max_memory / 8),
        }
    }
}

/// A JSON answer, its bytes held in the views' budget until the last of
/// them is written (the reservation is owned by the bytes, not the body,
/// which hyper drops as soon as it has taken them). A client that asks and
/// never reads holds its answer until `--write-timeout` cuts it: a
/// thousand such clients of one large page held hundreds of MiB nothing
/// counted. Refused (429) when that budget has no room for it.
fn answer(gw: &Gateway, text: Vec<u8>) -> Response {
    let mut held = gw.views().answers.reservation();
    if held.grow(text.len()).is_err() {
        let limit = gw.views().answers.limit();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, HeaderValue::from_static("1"))],
            format!(
                "status API answers not yet read hold their budget ({limit} bytes, an eighth of --max-memory)\n"
            ),
        )
            .into_response();
    }
    let body = bytes::Bytes::from_owner(Held { text, _held: held });
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// [`answer`] of a JSON value.
fn json_response(gw: &Gateway, v: &Value) -> Response {
    answer(gw, format!("{v}\n").into_bytes())
}

/// An answer's bytes and their reservation, dropped together.
struct Held {
    text: Vec<u8>,
    _held: crate::memory::Reservation,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.text
    }
}

/// Unix seconds of a time on the aggregate's clock.
fn wall_time(gw: &Gateway, seconds: u32) -> f64 {
    let now = gw.aggregator().seconds();
    unix_now() - f64::from(now.saturating_sub(seconds))
}

/// `?match=&offset=&limit=` of `/api/v1/families`.
#[derive(Debug, Deserialize)]
pub struct FamiliesQuery {
    /// Only names holding this (case-insensitive).
    #[serde(rename = "match")]
    name: Option<String>,
    /// Families skipped (in name order).
    offset: Option<usize>,
    /// Families listed (default 100, at most 1000).
    limit: Option<usize>,
}

/// `GET /api/v1/families`: name, type, how it merges, series, HELP, last
/// update, a page at a time in name order.
pub async fn families(State(gw): State<Gateway>, Query(q): Query<FamiliesQuery>) -> Response {
    // Off the async workers: with many families a page costs milliseconds
    // that pushes must not wait behind.
    tokio::task::spawn_blocking(move || families_page(&gw, q))
        .await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn families_page(gw: &Gateway, q: FamiliesQuery) -> Response {
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let offset = q.offset.unwrap_or(0);
    let needle = q.name.unwrap_or_default().to_lowercase();
    let (views, _) = gw.aggregator().view();
    let mut views: Vec<_> = views
        .into_iter()
        .filter(|(name, _)| needle.is_empty() || name.to_lowercase().contains(&needle))
        .collect();
    views.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let rules = gw.rules();
    let gauge_mode = gw.aggregator().settings().gauge_mode;
    let entries = views.iter().skip(offset).map(|(name, view)| {
        let (names, whole) = rules.rules_for(name, view.kind);
        let default = match view.kind {
            crate::model::Kind::Gauge => gauge_mode_name(gauge_mode),
            _ => "sum",
        };
        let mode = match (whole, names.is_empty()) {
            (Some(m), _) => m.as_str(),
            (None, true) => default,
            (None, false) => "per series",
        };
        FamilyEntry {
            name,
            kind: view.kind.as_str(),
            mode,
            rules: names,
            series: view.len(),
            help: cut(&view.help, MAX_LISTED_HELP),
            last_update: wall_time(gw, view.updated()),
        }
    });
    let page = page_of(entries, limit);
    page_answer(gw, "families", views.len(), offset, limit, page)
}

/// `?match=&offset=&limit=` of `/api/v1/series`.
#[derive(Debug, Deserialize)]
pub struct SeriesQuery {
    /// A series selector: `name{label="value", other=~"re.*"}`; every
    /// series when left out.
    #[serde(rename = "match")]
    selector: Option<String>,
    /// Matching series skipped (in family, then key order).
    offset: Option<usize>,
    /// Series listed (default 100, at most 1000).
    limit: Option<usize>,
}

/// Bytes of regex automaton one `/api/v1/series` selector may build.
const SELECTOR_REGEX_BYTES: usize = 1 << 20;

/// `GET /api/v1/series?match=<selector>`: "why did this jump?" Each
/// matching output series with its value, start time, the rules of its
/// family, and the sources the gateway tracks for it (a `total` source's
/// last running total, a `latest` source's level; OTLP producers by their
/// identity), a page at a time.
pub async fn series(State(gw): State<Gateway>, Query(q): Query<SeriesQuery>) -> Response {
    // Without one, every series.
    let text = q
        .selector
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or("{__name__=~\".+\"}");
    let text = text.to_owned();
    // Off the async workers, the selector's regexes compiled too.
    tokio::task::spawn_blocking(
        move || match crate::rules::selector(&text, SELECTOR_REGEX_BYTES) {
            Ok(selector) => series_page(&gw, &selector, q.offset, q.limit),
            Err(e) => crate::error::Rejection::Invalid(e).into_response(),
        },
    )
    .await
    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn series_page(
    gw: &Gateway,
    selector: &crate::rules::Selector,
    offset: Option<usize>,
    limit: Option<usize>,
) -> Response {
    let limit = limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let offset = offset.unwrap_or(0);
    let rules = gw.rules();
    gw.aggregator().read_snapshot(|families, sources, now| {
        let matching = || {
            families
                .iter()
                .filter(|(name, _)| selector.matches_name(name))
                .flat_map(|(name, view)| {
                    view.series()
                        .filter(|(key, _)| selector.matches_key(key))
                        .map(move |(key, s)| (*name, *view, key, s))
                })
        };
        let total = matching().count();
        // The page's series, then their sources: one pass over each of
        // its families' sources, not one per series.
        let page: Vec<_> = matching().skip(offset).take(limit).collect();
        let mut of_output: std::collections::HashMap<(&str, &[u8]), ListedSources<'_>> = page
            .iter()
            .map(|(n, _, k, _)| ((*n, *k), (0, Vec::new())))
            .collect();
        let mut names: Vec<&str> = page.iter().map(|(n, ..)| *n).collect();
        names.dedup();
        for name in names {
            let Ok(at) = sources.binary_search_by(|(n, _)| (**n).cmp(name)) else {
                continue;
            };
            for row in sources[at].1.rows(now) {
                if let Some((total, listed)) = of_output.get_mut(&(name, row.output)) {
                    *total += 1;
                    if listed.len() < MAX_LISTED_SOURCES {
                        listed.push(SourceEntry::of(row));
                    }
                }
            }
        }
        let entries = page.into_iter().map(|(name, view, key, s)| {
            let (rule_names, _) = rules.rules_for(name, view.kind);
            let (sources_total, sources) = of_output.remove(&(name, key)).unwrap_or_default();
            SeriesEntry {
                family: name,
                kind: view.kind.as_str(),
                labels: KeyLabels(key),
                value: ValueEntry::Borrowed(&s.value),
                start_time: s.created().map(crate::model::created_seconds),
                rules: rule_names,
                sources_total,
                sources,
            }
        });
        let page = page_of(entries, limit);
        page_answer(gw, "series", total, offset, limit, page)
    })
}

/// One output series of `/api/v1/series`.
#[derive(Serialize)]
struct SeriesEntry<'a> {
    family: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    labels: KeyLabels<'a>,
    value: ValueEntry<'a>,
    /// Unix seconds (`_created`); none for gauges and untyped.
    start_time: Option<f64>,
    /// The rules that may take the family's series.
    rules: Vec<&'a str>,
    /// Sources tracked for it; the first [`MAX_LISTED_SOURCES`] listed.
    sources_total: usize,
    sources: Vec<SourceEntry<'a>>,
}

/// Sources one series of `/api/v1/series` lists, at most: a `latest`
/// output of thousands of live senders would be one entry of megabytes.
const MAX_LISTED_SOURCES: usize = 100;

/// How many sources an output series has, and the ones listed.
type ListedSources<'a> = (usize, Vec<SourceEntry<'a>>);

/// One tracked source of an output series.
#[derive(Serialize)]
struct SourceEntry<'a> {
    /// The source's labels (`source_labels` of its rule).
    labels: KeyLabels<'a>,
    /// The OTLP producer's identity (hex), when it is one.
    producer: Option<String>,
    /// A `total` source's last running total; a `latest` source's level.
    value: ValueEntry<'static>,
    /// When its last point was taken (Unix seconds; OTLP only).
    last_point_time: Option<f64>,
    /// Seconds until it is forgotten without another push.
    forgotten_in_seconds: u32,
    rule: String,
    /// Restarts detected (its running total went down, or its start time
    /// moved later), and why the last one was taken for one.
    resets: u32,
    last_reset: Option<&'static str>,
    /// Points of it dropped as replays (not newer than its last one).
    replays: u32,
}

impl<'a> SourceEntry<'a> {
    fn of(row: crate::aggregate::sources::SourceRow<'a>) -> SourceEntry<'a> {
        // An OTLP producer's identity ends the source key: a label key
        // never holds it, so a key that does not read as labels has one.
        const PRODUCER: usize = 16;
        let (labels, producer) = if labels::is_key(row.source) || row.source.len() < PRODUCER {
            (row.source, None)
        } else {
            let (l, p) = row.source.split_at(row.source.len() - PRODUCER);
            (l, Some(p.iter().map(|b| format!("{b:02x}")).collect()))
        };
        SourceEntry {
            labels: KeyLabels(labels),
            producer,
            value: ValueEntry::owned(row.series.value),
            last_point_time: (row.time != 0).then(|| row.time as f64 / 1e9),
            forgotten_in_seconds: row.left,
            rule: row.rule.to_string(),
            resets: row.history.resets,
            last_reset: row.history.last_reset.map(|r| r.as_str()),
            replays: row.history.replays,
        }
    }
}

/// A value as JSON: a number (or `"NaN"`, `"+Inf"`, `"-Inf"`, as
/// Prometheus' API writes them), `{count, sum}` for histograms and
/// summaries.
enum ValueEntry<'a> {
    Borrowed(&'a crate::model::Value),
    Owned(crate::model::Value),
}

impl ValueEntry<'static> {
    fn owned(v: crate::model::Value) -> ValueEntry<'static> {
        ValueEntry::Owned(v)
    }
}

impl Serialize for ValueEntry<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use crate::model::Value;
        use serde::ser::SerializeMap;
        let number = |v: f64| -> serde_json::Value {
            if v.is_finite() {
                json!(v)
            } else if v.is_nan() {
                json!("NaN")
            } else if v > 0.0 {
                json!("+Inf")
            } else {
                json!("-Inf")
            }
        };
        let v = match self {
            ValueEntry::Borrowed(v) => *v,
            ValueEntry::Owned(v) => v,
        };
        let (count, sum) = match v {
            Value::Scalar(x) => return number(*x).serialize(s),
            Value::Histogram(h) => (h.count, h.sum),
            Value::Native(h) => (h.count, h.sum),
            Value::Summary { count, sum } => (*count, *sum),
        };
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("count", &number(count))?;
        m.serialize_entry("sum", &number(sum))?;
        m.end()
    }
}

/// One family of `/api/v1/families`.
#[derive(Serialize)]
struct FamilyEntry<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    mode: &'a str,
    rules: Vec<&'a str>,
    series: usize,
    help: std::borrow::Cow<'a, str>,
    last_update: f64,
}

fn gauge_mode_name(mode: crate::aggregate::GaugeMode) -> &'static str {
    use crate::aggregate::GaugeMode;
    match mode {
        GaugeMode::Sum => "sum",
        GaugeMode::Last => "last",
        GaugeMode::Max => "max",
        GaugeMode::Min => "min",
    }
}

/// `?offset=&limit=` of `/api/v1/groups`.
#[derive(Debug, Deserialize)]
pub struct GroupsQuery {
    /// Groups skipped (most recent first).
    offset: Option<usize>,
    /// Groups listed (default 100, at most 1000).
    limit: Option<usize>,
}

/// `GET /api/v1/groups`: each grouping key pushed, most recent first, a
/// page at a time.
pub async fn groups(State(gw): State<Gateway>, Query(q): Query<GroupsQuery>) -> Response {
    tokio::task::spawn_blocking(move || groups_page(&gw, q))
        .await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn groups_page(gw: &Gateway, q: GroupsQuery) -> Response {
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let offset = q.offset.unwrap_or(0);
    // The labels of a group are in its entry twice (as labels, and in
    // base64 in its delete path): half a page of them fills a page.
    let (total, groups) = gw.activity().groups_page(offset, limit, MAX_PAGE_BYTES / 2);
    let entries = groups.iter().map(|g| GroupEntry {
        labels: LabelMap(&g.labels),
        delete_path: delete_path(&g.labels),
        group: g,
    });
    let page = page_of(entries, limit);
    page_answer(gw, "groups", total, offset, limit, page)
}

/// One grouping key of `/api/v1/groups`: its labels as an object, the
/// path that deletes it, and what [`crate::activity::Group`] counts.
#[derive(Serialize)]
struct GroupEntry<'a> {
    labels: LabelMap<'a>,
    delete_path: Option<String>,
    #[serde(flatten)]
    group: &'a crate::activity::Group,
}

/// Label pairs as a JSON object, in their order.
struct LabelMap<'a>(&'a [(String, String)]);

impl Serialize for LabelMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(n, v)| (n, v)))
    }
}

/// A series key's labels as an object.
struct KeyLabels<'a>(&'a [u8]);

impl Serialize for KeyLabels<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(labels::pairs(self.0).map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        }))
    }
}

/// The `DELETE` path that drops a grouping key's series (values in
/// base64url, so any value fits in a path segment); `None` for the empty
/// key (a wipe does that).
fn delete_path(pairs: &[(String, String)]) -> Option<String> {
    use base64::Engine;
    if pairs.iter().all(|(_, v)| v.is_empty()) {
        return None;
    }
    let mut path = String::from("metrics");
    for (n, v) in pairs {
        path.push('/');
        path.push_str(n);
        path.push_str("@base64/");
        if v.is_empty() {
            path.push('=');
        } else {
            path.push_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v));
        }
    }
    Some(path)
}

/// `GET /api/v1/rejections`: the latest refused pushes, newest first.
pub async fn rejections(State(gw): State<Gateway>) -> Response {
    json_response(
        &gw,
        &json!({
            "capacity": crate::activity::MAX_REFUSALS,
            "rejections": gw.activity().refusals(),
        }),
    )
}

/// `?limit=` of `/api/v1/cardinality`.
#[derive(Debug, Deserialize)]
pub struct CardinalityQuery {
    /// Entries per list (default 10, at most 100).
    limit: Option<usize>,
}

/// A computed cardinality view and when it was computed. An async lock:
/// callers waiting for a count in progress hold no thread.
#[derive(Debug, Default)]
pub struct CardinalityCache(tokio::sync::Mutex<Option<(Instant, Arc<Counts>)>>);

/// The counts the cardinality view lists from.
#[derive(Debug, Default)]
pub struct Counts {
    series: usize,
    families: Vec<(Arc<str>, usize)>,
    label_names: Vec<(String, usize, usize)>,
    pairs: Vec<(String, String, usize)>,
}

/// `GET /api/v1/cardinality`: the families with the most series, the
/// label names with the most distinct values, the `name=value` pairs in
/// the most series (as Prometheus' TSDB status shows them). Computed off
/// the async workers from a consistent view, at most once per 10 s.
pub async fn cardinality(State(gw): State<Gateway>, Query(q): Query<CardinalityQuery>) -> Response {
    let limit = q.limit.unwrap_or(10).clamp(1, MAX_TOP);
    // One count at a time; the others wait for it and share it.
    let mut cached = gw.views().cardinality.0.lock().await;
    let counts = match &*cached {
        Some((at, counts)) if at.elapsed() < CARDINALITY_FRESH => counts.clone(),
        _ => {
            let gw2 = gw.clone();
            let Ok(counts) = tokio::task::spawn_blocking(move || Arc::new(count(&gw2))).await
            else {
                return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
            };
            *cached = Some((Instant::now(), counts.clone()));
            counts
        }
    };
    drop(cached);
    let families: Vec<Value> = counts
        .families
        .iter()
        .take(limit)
        .map(|(n, s)| json!({"name": &**n, "series": s}))
        .collect();
    let names: Vec<Value> = counts
        .label_names
        .iter()
        .take(limit)
        .map(|(n, values, series)| json!({"name": n, "values": values, "series": series}))
        .collect();
    let pairs: Vec<Value> = counts
        .pairs
        .iter()
        .take(limit)
        .map(|(n, v, s)| json!({"name": n, "value": v, "series": s}))
        .collect();
    json_response(
        &gw,
        &json!({
            "series": counts.series,
            "families": families,
            "label_names": names,
            "label_pairs": pairs,
        }),
    )
}

/// Counts over every stored series: by hashes first (a label value is not
/// copied per series), then the texts of the pairs listed.
fn count(gw: &Gateway) -> Counts {
    use std::hash::BuildHasher;
    let (views, _) = gw.aggregator().view();
    let hasher = RandomState::default();
    // Per label name: hashes of its distinct values, and series holding it.
    let mut names: HashMap<
        Vec<u8>,
        (std::collections::HashSet<u64, RandomState>, usize),
        RandomState,
    > = HashMap::default();
    let mut pairs: HashMap<u64, usize, RandomState> = HashMap::default();
    let mut families: Vec<(Arc<str>, usize)> = Vec::with_capacity(views.len());
    let mut series = 0;
    for (name, view) in &views {
        families.push((name.clone(), view.len()));
        series += view.len();
        for (key, _) in view.series() {
            for (n, pair) in labels::raw_pairs(key) {
                let value_hash = hasher.hash_one(pair);
                let entry = match names.get_mut(n) {
                    Some(e) => e,
                    None => names.entry(n.to_vec()).or_default(),
                };
                entry.0.insert(value_hash);
                entry.1 += 1;
                *pairs.entry(value_hash).or_default() += 1;
            }
        }
    }
    families.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    families.truncate(MAX_TOP);
    let mut label_names: Vec<(String, usize, usize)> = names
        .into_iter()
        .map(|(n, (values, series))| {
            (
                String::from_utf8_lossy(&n).into_owned(),
                values.len(),
                series,
            )
        })
        .collect();
    label_names.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    label_names.truncate(MAX_TOP);
    // The most frequent pairs by hash, then their texts from the series.
    let mut top: Vec<(u64, usize)> = pairs.into_iter().collect();
    top.sort_unstable_by_key(|b| std::cmp::Reverse(b.1));
    top.truncate(MAX_TOP);
    let wanted: HashMap<u64, usize, RandomState> = top.iter().copied().collect();
    let mut texts: HashMap<u64, (String, String), RandomState> = HashMap::default();
    'out: for (_, view) in &views {
        for (key, _) in view.series() {
            for (n, pair) in labels::raw_pairs(key) {
                let h = hasher.hash_one(pair);
                if wanted.contains_key(&h) && !texts.contains_key(&h) {
                    let value = labels::raw_value(pair, n).unwrap_or_default();
                    texts.insert(
                        h,
                        (
                            String::from_utf8_lossy(n).into_owned(),
                            String::from_utf8_lossy(&labels::unescape(value)).into_owned(),
                        ),
                    );
                    if texts.len() == wanted.len() {
                        break 'out;
                    }
                }
            }
        }
    }
    let mut pairs: Vec<(String, String, usize)> = top
        .into_iter()
        .filter_map(|(h, n)| texts.remove(&h).map(|(name, value)| (name, value, n)))
        .collect();
    pairs.sort_unstable_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
    Counts {
        series,
        families,
        label_names,
        pairs,
    }
}

/// `GET /api/v1/status`: version, uptime, settings (secrets left out),
/// limits and how close each is, memory, the last snapshot.
pub async fn status(State(gw): State<Gateway>) -> Response {
    let agg = gw.aggregator();
    let config = gw.config();
    let series = agg.series_count();
    let used = agg.memory().used();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    let snapshot = gw.last_snapshot().map(|s| {
        json!({
            "time": s.time,
            "bytes": s.bytes,
            "ok": s.error.is_none(),
            "error": s.error,
        })
    });
    let remote_write: Vec<Value> = config
        .remote_write
        .iter()
        .flat_map(|rw| rw.targets.iter())
        .map(|t| json!({"name": t.name, "protocol": format!("{:?}", t.protocol)}))
        .collect();
    let l = &config.limits;
    json_response(
        &gw,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": gw.uptime().as_secs_f64(),
            "started": unix_now() - gw.uptime().as_secs_f64(),
            "series": series,
            "families": agg.family_count(),
            "max_series": agg.settings().max_series,
            "memory_bytes": used,
            "max_memory_bytes": agg.memory().limit(),
            "resident_memory_bytes": super::http::resident_memory_bytes(),
            "limits": {
                "series": {"used": series, "limit": config.max_series, "ratio": ratio(series, config.max_series)},
                "memory_bytes": {"used": used, "limit": config.max_memory, "ratio": ratio(used, config.max_memory)},
            },
            "snapshot": snapshot,
            "settings": {
                "listen": config.listen.to_string(),
                "grpc_listen": config.grpc_listen.map(|a| a.to_string()),
                "lifecycle_listen": config.lifecycle_listen.map(|a| a.to_string()),
                "tls": config.tls.is_some(),
                "auth_users": config.auth_users.len(),
                "admin_users": config.admin_users.len(),
                "cors": config.cors,
                "gauge_mode": gauge_mode_name(config.gauge_mode),
                "series_ttl_seconds": secs(config.series_ttl),
                "start_times": match config.start_times {
                    crate::config::StartTimes::Always => "always",
                    crate::config::StartTimes::Given => "given",
                },
                "idempotency_window_seconds": secs(config.idempotency_window),
                "rules_file": config.rules_file.as_ref().map(|p| p.display().to_string()),
                "rules": gw.rules().rules().len(),
                "persistence_file": config.persistence_file.as_ref().map(|p| p.display().to_string()),
                "persistence_interval_seconds": config.persistence_interval.as_secs_f64(),
                "remote_write": remote_write,
                "drop_labels": config.drop_labels,
                "otlp_promote_resource_attributes": config.otlp_promote,
                "max_body_bytes": config.max_body_bytes,
                "max_in_flight": config.max_in_flight,
                "max_connections": config.max_connections,
                "request_timeout_seconds": config.request_timeout.as_secs_f64(),
                "max_labels": l.max_labels,
                "max_name_length": l.max_name_length,
                "max_label_value_length": l.max_label_value_length,
                "max_label_bytes": l.max_label_bytes,
                "max_series_per_push": l.max_series_per_push,
                "max_buckets": l.max_buckets,
                "max_native_buckets": l.max_native_buckets,
            },
        }),
    )
}

/// The page's policy: nothing from anywhere but the gateway, no inline
/// script or style, no framing, no form posts.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// `GET /`: the status page. Under a route prefix sent without its
/// trailing `/`, a redirect to it first: the page's links are relative.
pub async fn page(original: Option<Extension<OriginalPath>>) -> Response {
    if let Some(Extension(OriginalPath(path))) = original
        && !path.ends_with('/')
    {
        let to = format!("{path}/");
        if let Ok(location) = HeaderValue::from_str(&to) {
            return (
                StatusCode::PERMANENT_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response();
        }
    }
    asset(
        "text/html; charset=utf-8",
        include_str!("../web/index.html"),
    )
}

/// `GET /static/app.js`.
pub async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../web/app.js"),
    )
}

/// `GET /static/app.css`.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", include_str!("../web/app.css"))
}

/// `GET /static/favicon.svg`: the page's icon (browsers ask for one).
pub async fn icon() -> Response {
    asset("image/svg+xml", include_str!("../web/favicon.svg"))
}
