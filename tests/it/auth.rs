//! `--auth-users` over both protocols: pushes, deletes and admin need
//! credentials; scrapes and health do not.

use base64::Engine;
use prom_aggregation_gateway::Config;
use prom_aggregation_gateway::config::Secret;
use tonic::Code;
use tonic::metadata::MetadataValue;

use crate::grpc::{counter, request};
use crate::support::Gateway;

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

#[tokio::test]
async fn credentials_guard_writes_over_http_and_grpc() {
    let hash = bcrypt::hash("hashed-pw", 4).unwrap();
    let config = Config {
        auth_users: vec![
            ("alice".into(), Secret::Plain("pw".into())),
            ("bob".into(), Secret::Bcrypt(hash)),
        ],
        ..Config::default()
    };
    let gw = Gateway::start_with(config).await;
    // HTTP: no, wrong and right credentials.
    let r = gw.push("/metrics", "c 1\n").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.text(), "authentication required\n");
    assert!(r.headers.contains_key("www-authenticate"));
    let wrong = basic("alice", "nope");
    assert_eq!(
        gw.request("POST", "/metrics", &[("authorization", &wrong)], "c 1\n")
            .await
            .status,
        401
    );
    for (u, p) in [("alice", "pw"), ("bob", "hashed-pw")] {
        let ok = basic(u, p);
        let r = gw
            .request("POST", "/metrics", &[("authorization", &ok)], "c 1\n")
            .await;
        assert_eq!(r.status, 200, "{u}: {}", r.text());
    }
    assert_eq!(
        gw.request("DELETE", "/metrics/job/x", &[], "").await.status,
        401
    );
    assert_eq!(
        gw.request("PUT", "/api/v1/admin/wipe", &[], "")
            .await
            .status,
        401
    );
    // Reads stay open.
    assert_eq!(gw.scrape().await, "# TYPE c untyped\nc 2\n");
    assert_eq!(gw.request("GET", "/-/healthy", &[], "").await.status, 200);
    assert_eq!(
        gw.request("GET", "/api/v1/status", &[], "").await.status,
        200
    );
    // gRPC: the authorization metadata.
    let mut client = gw.grpc().await;
    let err = client
        .push(request(vec![counter("g_total", &[], 1.0)], &[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut req = tonic::Request::new(request(vec![counter("g_total", &[], 1.0)], &[]));
    req.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(basic("alice", "nope")).unwrap(),
    );
    assert_eq!(
        client.push(req).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let mut req = tonic::Request::new(request(vec![counter("g_total", &[], 1.0)], &[]));
    req.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(basic("bob", "hashed-pw")).unwrap(),
    );
    client.push(req).await.unwrap();
    assert!(gw.scrape().await.contains("g_total 1\n"));
}
