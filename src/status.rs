//! The status page and API: what is stored, who pushed, what was refused
//! and why, how close the gateway is to its limits. `activity` and
//! `views` are the state (kept in the gateway); the rest answers.

pub mod activity;
pub mod answer;
pub mod api;
pub mod cardinality;
pub mod page;
pub mod summary;
pub mod views;
