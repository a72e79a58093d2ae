//! `--auth-users` over both protocols: pushes, deletes and admin need
//! credentials; scrapes and health do not.

use base64::Engine;
use prom_aggregation_gateway::Config;
use prom_aggregation_gateway::config::Secret;
use tonic::Code;
use tonic::metadata::MetadataValue;

use crate::support::Gateway;
use crate::support::{counter, request};

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

/// With bcrypt users, a wrong password is verified off the async workers
/// (against a decoy hash for a user that does not exist, so both take the
/// same time), and refusals are remembered: many wrong attempts, known
/// user or not, get 401 while health and the right password still pass.
#[tokio::test]
async fn bcrypt_refusals_for_known_and_unknown_users() {
    let hash = bcrypt::hash("right", 6).unwrap();
    let gw = Gateway::start_with(Config {
        auth_users: vec![("bob".into(), Secret::Bcrypt(hash))],
        ..Config::default()
    })
    .await;
    let attempts = (0..32).map(|i| {
        let user = if i % 2 == 0 { "bob" } else { "mallory" };
        let auth = basic(user, &format!("wrong{}", i % 4));
        let gw = &gw;
        async move {
            gw.request("POST", "/metrics", &[("authorization", &auth)], "c 1\n")
                .await
                .status
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert!(statuses.iter().all(|&s| s == 401), "{statuses:?}");
    assert_eq!(gw.request("GET", "/-/healthy", &[], "").await.status, 200);
    let ok = basic("bob", "right");
    let r = gw
        .request("POST", "/metrics", &[("authorization", &ok)], "c 1\n")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn admin_credentials_are_separate_from_push_credentials() {
    let config = Config {
        auth_users: vec![("pusher".into(), Secret::Plain("p".into()))],
        admin_users: vec![("admin".into(), Secret::Plain("a".into()))],
        ..Config::default()
    };
    let gw = Gateway::start_with(config).await;
    let (pusher, admin) = (basic("pusher", "p"), basic("admin", "a"));
    assert_eq!(
        gw.request("POST", "/metrics", &[("authorization", &pusher)], "c 1\n")
            .await
            .status,
        200
    );
    assert_eq!(
        gw.request("POST", "/metrics", &[("authorization", &admin)], "c 1\n")
            .await
            .status,
        401
    );
    for (method, path) in [("PUT", "/api/v1/admin/wipe"), ("DELETE", "/metrics/job/x")] {
        assert_eq!(
            gw.request(method, path, &[("authorization", &pusher)], "")
                .await
                .status,
            401,
            "{path}"
        );
        assert_eq!(
            gw.request(method, path, &[("authorization", &admin)], "")
                .await
                .status,
            202,
            "{path}"
        );
    }
}
