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
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("c_total{job=\"t\",k=\"v\"} 8\n"), "{text}");
    assert!(
        text.contains("h_bucket{job=\"t\",le=\"+Inf\"} 2\n"),
        "{text}"
    );
}
