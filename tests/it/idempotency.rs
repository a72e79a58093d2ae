//! Exactly-once pushes with `Idempotency-Key` (HTTP) / `idempotency-key`
//! (gRPC metadata): a push sent again with its key applies nothing and is
//! answered as the first; the key with another request is refused (422);
//! a refused push frees its key; keys are remembered per the window.

use prom_aggregation_gateway::Config;

use crate::support::{Gateway, request, sample_value};

const BODY: &str = "# TYPE jobs_total counter\njobs_total 2\n";

async fn value(gw: &Gateway) -> Option<f64> {
    sample_value(&gw.scrape().await, "jobs_total{job=\"a\"}")
}

async fn keyed(gw: &Gateway, key: &str, body: &str) -> crate::support::Reply {
    gw.request(
        "POST",
        "/metrics/job/a",
        &[("idempotency-key", key)],
        body.to_string(),
    )
    .await
}

#[tokio::test]
async fn a_push_sent_again_with_its_key_counts_once() {
    let gw = Gateway::start().await;
    let first = keyed(&gw, "\"8e0f-1\"", BODY).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let again = keyed(&gw, "\"8e0f-1\"", BODY).await;
    assert_eq!(
        (again.status, again.body.clone()),
        (first.status, first.body)
    );
    assert_eq!(value(&gw).await, Some(2.0));
    // The key with another body, or another route: 422, nothing applied.
    let other = keyed(
        &gw,
        "\"8e0f-1\"",
        "# TYPE jobs_total counter\njobs_total 5\n",
    )
    .await;
    assert_eq!(other.status, 422, "{}", other.text());
    assert!(other.text().contains("Idempotency-Key"), "{}", other.text());
    let elsewhere = gw
        .request(
            "POST",
            "/metrics/job/b",
            &[("idempotency-key", "\"8e0f-1\"")],
            BODY,
        )
        .await;
    assert_eq!(elsewhere.status, 422);
    assert_eq!(value(&gw).await, Some(2.0));
    // Without a key, or with a new one, pushes add as always.
    gw.push_ok("/metrics/job/a", BODY).await;
    assert_eq!(keyed(&gw, "8e0f-2", BODY).await.status, 200);
    assert_eq!(value(&gw).await, Some(6.0));
    // A refused push frees its key: fixed, it is applied.
    let bad = keyed(&gw, "8e0f-3", "# TYPE jobs_total counter\njobs_total -1\n").await;
    assert_eq!(bad.status, 400);
    assert_eq!(keyed(&gw, "8e0f-3", BODY).await.status, 200);
    assert_eq!(value(&gw).await, Some(8.0));
    // Malformed keys are refused before anything is read.
    let long = "k".repeat(300);
    assert_eq!(keyed(&gw, &long, BODY).await.status, 400);
    assert_eq!(keyed(&gw, "\"\"", BODY).await.status, 400);
    assert_eq!(value(&gw).await, Some(8.0));
    assert_eq!(gw.self_metric("pag_idempotency_replays_total").await, 1.0);
    assert_eq!(gw.self_metric("pag_idempotency_keys").await, 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_copies_of_a_keyed_push_count_once() {
    let gw = Gateway::start().await;
    // A push large enough to be in flight while its copies arrive.
    let mut body = String::from("# TYPE jobs_total counter\n");
    for i in 0..20_000 {
        body.push_str(&format!("jobs_total{{i=\"{i}\"}} 1\n"));
    }
    let sends = (0..8).map(|_| {
        let (client, base, body) = (gw.client.clone(), gw.base.clone(), body.clone());
        tokio::spawn(async move {
            client
                .post(format!("{base}/metrics/job/a"))
                .header("idempotency-key", "same")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for s in sends {
        statuses.push(s.await.unwrap());
    }
    // Each copy is applied once, answered as applied, or told the first is
    // in flight (409, to retry).
    assert!(
        statuses.iter().all(|s| [200, 409].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&200), "{statuses:?}");
    let scrape = gw.scrape().await;
    assert_eq!(
        sample_value(&scrape, "jobs_total{i=\"7\",job=\"a\"}"),
        Some(1.0)
    );
}

fn grpc_push() -> prom_aggregation_gateway_client::PushRequest {
    request(
        vec![crate::support::counter("jobs_total", &[], 2.0)],
        &[("job", "a")],
    )
}

#[tokio::test]
async fn grpc_calls_take_the_key_as_metadata() {
    let gw = Gateway::start().await;
    let mut client = gw.grpc().await;
    let call = |key: &'static str| {
        let mut req = tonic::Request::new(grpc_push());
        req.metadata_mut()
            .insert("idempotency-key", key.parse().unwrap());
        req
    };
    let first = client.push(call("g-1")).await.unwrap().into_inner();
    let again = client.push(call("g-1")).await.unwrap().into_inner();
    assert_eq!(first.series, again.series);
    assert_eq!(value(&gw).await, Some(2.0));
    // The key with another request: refused.
    let mut changed = grpc_push();
    changed.metric_families = vec![crate::support::counter("jobs_total", &[], 3.0)];
    let mut req = tonic::Request::new(changed);
    req.metadata_mut()
        .insert("idempotency-key", "g-1".parse().unwrap());
    let e = client.push(req).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    // A stream names many pushes: a key on it is refused, not ignored.
    let mut req = tonic::Request::new(tokio_stream::iter(vec![grpc_push()]));
    req.metadata_mut()
        .insert("idempotency-key", "g-2".parse().unwrap());
    let e = client.push_stream(req).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert_eq!(value(&gw).await, Some(2.0));
}

#[tokio::test]
async fn keys_can_be_turned_off() {
    let gw = Gateway::start_with(Config {
        idempotency_window: None,
        ..Config::default()
    })
    .await;
    keyed(&gw, "k", BODY).await;
    keyed(&gw, "k", BODY).await;
    assert_eq!(value(&gw).await, Some(4.0));
}
