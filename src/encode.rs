//! Encode stage: the aggregate out, in the format the scraper asks for
//! (contract §2, "Scrape"). One file per format, as client_rust's `encoding`.

pub mod cache;
pub(crate) mod openmetrics;
pub mod out;
pub mod protobuf;
pub mod render;
mod sink;
pub(crate) mod text;

pub use cache::{Cache, FamilyRenderings, Rendering, SERIES_BYTES, STREAMS};
pub use out::CHUNK;
#[cfg(test)]
pub(crate) use render::sample_lines;
pub use render::{render, render_families};
