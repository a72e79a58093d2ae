//! The status API (`/api/v1/...`) and the page that shows it (`/`): what
//! is stored, who pushed, what was refused and why, and how close the
//! gateway is to its limits. Reading is open like a scrape; the page's
//! actions (delete a group, wipe) go to the admin routes, which ask for
//! credentials.
//!
//! Every view is computed from a consistent view of the aggregate taken as
//! a scrape takes it (the shard locks held only to take it), and large ones
//! off the async workers, so polling the page never stalls pushes.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::answer::{
    MAX_LISTED_HELP, MAX_PAGE, MAX_PAGE_BYTES, cut, json_response, page_answer, page_of, wall_time,
};
use crate::gateway::Gateway;
use crate::model::labels;
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
            crate::model::Kind::Gauge => gauge_mode.combine().as_str(),
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
/// path that deletes it, and what [`crate::status::activity::Group`] counts.
#[derive(Serialize)]
struct GroupEntry<'a> {
    labels: LabelMap<'a>,
    delete_path: Option<String>,
    #[serde(flatten)]
    group: &'a crate::status::activity::Group,
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
            "capacity": crate::status::activity::MAX_REFUSALS,
            "rejections": gw.activity().refusals(),
        }),
    )
}
