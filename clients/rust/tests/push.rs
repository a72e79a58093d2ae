//! The client against a real gateway on a loopback port.

use prom_aggregation_gateway::transport::Listeners;
use prom_aggregation_gateway_client::{Client, PushRequest, families};

async fn gateway(config: prom_aggregation_gateway::Config) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listeners = Listeners {
        main: listener,
        grpc: None,
        lifecycle: None,
    };
    tokio::spawn(prom_aggregation_gateway::serve(
        config,
        listeners,
        std::future::pending(),
    ));
    format!("http://{addr}")
}

async fn scrape(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn push_push_stream_and_auth() {
    let config = prom_aggregation_gateway::Config {
        auth_users: vec![(
            "svc".into(),
            prom_aggregation_gateway::config::Secret::Plain("pw".into()),
        )],
        ..Default::default()
    };
    let base = gateway(config).await;
    let mut anonymous = Client::connect(base.clone()).await.unwrap();
    let err = anonymous
        .push(
            vec![families::counter("c_total", "", &[], 1.0)],
            [("job", "t")],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);

    let mut client = Client::connect(base.clone())
        .await
        .unwrap()
        .with_basic_auth("svc", "pw")
        .gzip();
    let touched = client
        .push(
            vec![
                families::counter("c_total", "A counter", &[("k", "v")], 2.0),
                families::histogram("h", "", &[], &[(1.0, 1)], 2, 3.0),
            ],
            [("job", "t")],
        )
        .await
        .unwrap();
    assert_eq!(touched, 2);
    let batches = vec![
        PushRequest {
            metric_families: vec![families::counter("c_total", "", &[("k", "v")], 3.0)],
            labels: [("job".to_string(), "t".to_string())].into(),
        };
        2
    ];
    assert_eq!(
        client
            .push_stream(tokio_stream::iter(batches))
            .await
            .unwrap(),
        2
    );
    let text = scrape(&base).await;
    assert!(text.contains("c_total{job=\"t\",k=\"v\"} 8\n"), "{text}");
    assert!(
        text.contains("h_bucket{job=\"t\",le=\"+Inf\"} 2\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_with_its_key_counts_once_even_sent_concurrently() {
    let base = gateway(Default::default()).await;
    let client = Client::connect(base.clone())
        .await
        .unwrap()
        .with_retries(20, std::time::Duration::from_millis(50));
    let labels: Vec<(String, String)> = (0..20_000)
        .map(|i| ("i".to_string(), i.to_string()))
        .collect();
    let family = prom_aggregation_gateway_client::MetricFamily {
        metric: labels
            .iter()
            .map(|(k, v)| families::counter("once_total", "", &[(k, v)], 1.0).metric[0].clone())
            .collect(),
        ..families::counter("once_total", "", &[], 1.0)
    };
    // Copies of one push, sent together: one is applied, the others are
    // told it is in flight (ABORTED), retry with the key and are answered
    // as it was.
    let copies: Vec<_> = (0..4)
        .map(|_| {
            let (mut client, family) = (client.clone(), family.clone());
            tokio::spawn(async move {
                client
                    .push_with_key(vec![family], [("job", "k")], "job-42")
                    .await
                    .unwrap()
            })
        })
        .collect();
    for c in copies {
        assert_eq!(c.await.unwrap(), 20_000);
    }
    // Without a key of its own, each push gets a new one.
    let mut client = client;
    for _ in 0..2 {
        let fresh = vec![families::counter("fresh_total", "", &[], 1.0)];
        client.push(fresh, [("job", "f")]).await.unwrap();
    }
    let text = scrape(&base).await;
    assert!(text.contains("once_total{i=\"7\",job=\"k\"} 1\n"), "{text}");
    assert!(text.contains("fresh_total{job=\"f\"} 2\n"), "{text}");
    assert_ne!(
        prom_aggregation_gateway_client::new_idempotency_key(),
        prom_aggregation_gateway_client::new_idempotency_key()
    );
}
