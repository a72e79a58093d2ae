//! Code generated from `proto/` by `build.rs`.
#![allow(missing_docs, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/pb.rs"));
