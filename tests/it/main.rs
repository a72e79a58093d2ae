//! Integration tests: a real gateway on an ephemeral loopback port, driven
//! over real sockets. One binary, one module per area.

mod api;
mod auth;
mod bad_input;
mod bounded;
mod chart;
mod concurrency;
mod conformance;
mod durability;
mod edges;
mod expiry;
mod grpc;
mod hostile;
mod idempotency;
mod interop;
mod limits;
mod otlp;
mod remote_write;
mod routes;
mod rules;
mod scrape_formats;
mod soak;
mod status_api;
mod support;
mod tls;
mod traces;
mod trust;
