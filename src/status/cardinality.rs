//! `/api/v1/cardinality`: where the series are, counted off the async
//! workers and kept a while.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use foldhash::fast::RandomState;
use serde::Deserialize;
use serde_json::{Value, json};

use super::answer::json_response;
use super::views::Counts;
use crate::gateway::Gateway;
use crate::model::labels;

/// How long a computed cardinality view is served again: it reads every
/// series, so a page polling it every second reads them once per period.
const CARDINALITY_FRESH: Duration = Duration::from_secs(10);
/// Entries per list of `/api/v1/cardinality`, at most.
const MAX_TOP: usize = 100;

#[derive(Debug, Deserialize)]
/// `?limit=` of `/api/v1/cardinality`.
pub struct CardinalityQuery {
    /// Entries per list (default 10, at most 100).
    limit: Option<usize>,
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
