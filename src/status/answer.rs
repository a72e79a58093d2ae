//! How the status API answers: pages of JSON entries cut by count and
//! bytes, each answer's bytes held in the API's own budget until sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use crate::clock::unix_now;
use crate::gateway::Gateway;

/// Most entries one page of `/api/v1/families` or `/api/v1/groups` lists.
pub(crate) const MAX_PAGE: usize = 1000;
/// Most bytes of entries one page holds: a page ends early (its `next`
/// says where the following one starts) rather than pass it, since one
/// group's labels can be tens of KiB and a family's name 1 KiB or more.
pub(crate) const MAX_PAGE_BYTES: usize = 1 << 20;

/// One page's entries as a JSON array: at most `limit`, and no more once
/// they hold [`MAX_PAGE_BYTES`] (at least one, however large); and how many.
/// Written straight from the entries: a tree of `serde_json::Value`s
/// for a page of 1 MiB took several times that.
pub(crate) fn page_of<T: Serialize>(
    entries: impl Iterator<Item = T>,
    limit: usize,
) -> (Vec<u8>, usize) {
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
pub(crate) fn page_answer(
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
pub(crate) fn next_offset(offset: usize, listed: usize, total: usize) -> Option<usize> {
    let next = offset.saturating_add(listed);
    (next < total).then_some(next)
}

/// Longest HELP text a list view shows, in bytes (cut at a character
/// boundary and marked with `…`): a page of a thousand families with
/// HELP texts of megabytes would be as large.
pub(crate) const MAX_LISTED_HELP: usize = 256;

/// `text` cut to at most `most` bytes (and `…`).
pub(crate) fn cut(text: &str, most: usize) -> std::borrow::Cow<'_, str> {
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
/// A JSON answer, its bytes held in the views' budget until the last of
/// them is written (the reservation is owned by the bytes, not the body,
/// which hyper drops as soon as it has taken them). A client that asks and
/// never reads holds its answer until `--write-timeout` cuts it: a
/// thousand such clients of one large page held hundreds of MiB nothing
/// counted. Refused (429) when that budget has no room for it.
pub(crate) fn answer(gw: &Gateway, text: Vec<u8>) -> Response {
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
pub(crate) fn json_response(gw: &Gateway, v: &Value) -> Response {
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
pub(crate) fn wall_time(gw: &Gateway, seconds: u32) -> f64 {
    let now = gw.aggregator().seconds();
    unix_now() - f64::from(now.saturating_sub(seconds))
}
