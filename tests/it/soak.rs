//! Load with faults around it: 64 senders over HTTP text, HTTP protobuf and
//! gRPC, while scrapes, deletes of other series and snapshot writes run; no
//! increment may be lost. `PAG_SOAK_PUSHES` sets pushes per sender (default
//! 60; the long run in the issue note used 2000).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prom_aggregation_gateway::Config;
use prost::Message;

use crate::support::{Gateway, sample_value};
use crate::support::{counter, histogram, request};

use crate::support::ACCEPT_PROTOBUF as PROTO_CT;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_senders_with_scrapes_deletes_and_snapshots_lose_nothing() {
    let pushes: usize = std::env::var("PAG_SOAK_PUSHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    const SENDERS: usize = 64;
    let dir = crate::support::TempDir::new("soak");
    let config = Config {
        persistence_file: Some(dir.path.join("soak.snap")),
        persistence_interval: Duration::from_millis(50),
        ..Config::default()
    };
    let gw = Arc::new(Gateway::start_with(config).await);
    let done = Arc::new(AtomicBool::new(false));

    // Background faults: scrapes (each must parse, and the shared counter
    // never goes down), deletes of a victim job, a churn of victim pushes.
    let scraper = {
        let (gw, done) = (gw.clone(), done.clone());
        tokio::spawn(async move {
            let mut last = 0.0;
            let mut scrapes = 0;
            while !done.load(Ordering::Relaxed) {
                let text = gw.scrape().await;
                prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
                let now = sample_value(&text, "soak_total{job=\"load\"}").unwrap_or(0.0);
                assert!(now >= last, "counter went down: {last} -> {now}");
                last = now;
                scrapes += 1;
            }
            scrapes
        })
    };
    let churn = {
        let (gw, done) = (gw.clone(), done.clone());
        tokio::spawn(async move {
            let mut deletes = 0;
            while !done.load(Ordering::Relaxed) {
                gw.push_ok(
                    "/metrics/job/victim",
                    "# TYPE soak_total counter\nsoak_total 1\n",
                )
                .await;
                let r = gw.request("DELETE", "/metrics/job/victim", &[], "").await;
                assert_eq!(r.status, 202);
                deletes += 1;
            }
            deletes
        })
    };

    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let gw = gw.clone();
        senders.push(tokio::spawn(async move {
            let mut grpc = gw.grpc().await;
            let families = || vec![counter("soak_total", &[], 1.0), histogram("soak_seconds", &[(0.5, 1)], 2, 1.5)];
            for _ in 0..pushes {
                match s % 3 {
                    0 => gw.push_ok("/metrics/job/load", "# TYPE soak_total counter\nsoak_total 1\n# TYPE soak_seconds histogram\nsoak_seconds_bucket{le=\"0.5\"} 1\nsoak_seconds_bucket{le=\"+Inf\"} 2\nsoak_seconds_sum 1.5\nsoak_seconds_count 2\n").await,
                    1 => {
                        let mut body = Vec::new();
                        for f in families() {
                            f.encode_length_delimited(&mut body).unwrap();
                        }
                        let r = gw.request("PUT", "/metrics/job/load", &[("content-type", PROTO_CT)], body).await;
                        assert_eq!(r.status, 200, "{}", r.text());
                    }
                    _ => {
                        grpc.push(request(families(), &[("job", "load")])).await.unwrap();
                    }
                }
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let scrapes = scraper.await.unwrap();
    let deletes = churn.await.unwrap();
    assert!(
        scrapes > 0 && deletes > 0,
        "faults did not run: {scrapes} scrapes, {deletes} deletes"
    );
    let n = (SENDERS * pushes) as f64;
    let text = gw.scrape().await;
    assert_eq!(
        sample_value(&text, "soak_total{job=\"load\"}"),
        Some(n),
        "{text}"
    );
    assert_eq!(
        sample_value(&text, "soak_seconds_count{job=\"load\"}"),
        Some(2.0 * n)
    );
    assert_eq!(
        sample_value(&text, "soak_seconds_bucket{job=\"load\",le=\"0.5\"}"),
        Some(n)
    );
    assert_eq!(
        sample_value(&text, "soak_seconds_sum{job=\"load\"}"),
        Some(1.5 * n)
    );
    let m = gw.request("GET", "/-/metrics", &[], "").await.text();
    let writes = sample_value(&m, "pag_snapshot_writes_total{result=\"ok\"}").unwrap_or(0.0);
    assert!(writes >= 1.0, "no snapshot written during the load:\n{m}");
}
