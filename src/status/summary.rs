//! `/api/v1/status`: the gateway's settings, limits and how close it is
//! to each.

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use std::time::Duration;

use super::answer::json_response;
use crate::clock::unix_now;
use crate::gateway::Gateway;

/// limits and how close each is, memory, the last snapshot.
/// `GET /api/v1/status`: version, uptime, settings (secrets left out),
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
            "resident_memory_bytes": crate::telemetry::resident_memory_bytes(),
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
                "gauge_mode": config.gauge_mode.combine().as_str(),
                "series_ttl_seconds": secs(config.series_ttl),
                "start_times": match config.start_times {
                    crate::aggregate::StartTimes::Always => "always",
                    crate::aggregate::StartTimes::Given => "given",
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
