//! A web page in headless Chromium (Debian's `chromium`, driven by npm's
//! `playwright-core`) pushing with `fetch()` from another origin: a simple
//! POST, a preflighted PUT, and scrapes, against a gateway with
//! `--cors '*'`, where a DELETE (an admin route) must not get through; and
//! against one whose `--cors` lists another origin, where the browser must
//! get nothing through. Script:
//! `tests/interop/node/browser_fetch.js`.

use serde_json::Value;

use super::{node, run_client};
use crate::support::{Gateway, assert_text_eq, sample_value};

async fn requests(gw: &Gateway, handler: &str, code: u16) -> f64 {
    let text = gw.request("GET", "/-/metrics", &[], "").await.text();
    let series =
        format!("pag_requests_total{{code=\"{code}\",handler=\"{handler}\",protocol=\"http\"}}");
    sample_value(&text, &series).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and the npm packages of tests/interop/node; run by scripts/test.sh"]
async fn browser_fetch_with_cors() {
    let open = Gateway::start().await;
    let restricted = Gateway::start_with(prom_aggregation_gateway::Config {
        cors: "http://allowed.invalid".into(),
        ..Default::default()
    })
    .await;
    let out = run_client(
        "headless Chromium via playwright-core (apt install chromium; npm ci)",
        node("browser_fetch.js").args([&open.base, &restricted.base]),
    );
    let v: Value = serde_json::from_str(out.trim()).expect("browser_fetch.js printed no JSON");
    let o = &v["open"];

    // Open gateway: every push and scrape reaches it and its answer reaches
    // the page; the DELETE, an admin route, is never approved for a page of
    // another origin: Chromium's preflight was refused, so it never sent it.
    assert_eq!(o["post"]["status"], 200, "{v}");
    assert_eq!(o["put"]["status"], 200, "{v}");
    assert_text_eq(
        o["scrape"]["text"].as_str().unwrap(),
        "# TYPE web_clicks_total counter\n\
         web_clicks_total{button=\"buy\",job=\"web\",page=\"checkout\"} 2\n",
        "scrape read by the page",
    );
    assert!(
        o["delete"]["blocked"]
            .as_str()
            .is_some_and(|e| e.contains("TypeError")),
        "the DELETE was not blocked: {v}"
    );
    assert_eq!(o["after"]["text"], o["scrape"]["text"], "{v}");
    // Then an OTLP/HTTP JSON export, preflighted (application/json), as
    // the OpenTelemetry browser SDK sends it.
    assert_eq!(o["otlp"]["status"], 200, "{v}");
    assert_eq!(o["otlp"]["text"], "{}", "{v}");
    assert_text_eq(
        &open.scrape().await,
        "# TYPE web_clicks_total counter\n\
         web_clicks_total{button=\"buy\",job=\"web\",page=\"checkout\"} 2\n\
         # TYPE web_orders_total counter\nweb_orders_total{job=\"web\",page=\"checkout\"} 3\n",
        "open gateway after the page's refused DELETE and its OTLP export",
    );
    // PUT is not a simple method: Chromium asked first.
    assert!(
        requests(&open, "preflight", 200).await >= 1.0,
        "no preflight seen"
    );

    // Restricted gateway: the simple POST was sent (no preflight) but
    // refused, and the PUT's preflight got no CORS headers, so Chromium never
    // sent it. The page saw both fail and nothing was applied.
    let r = &v["restricted"];
    for what in ["post", "put"] {
        assert!(
            r[what]["blocked"]
                .as_str()
                .is_some_and(|e| e.contains("TypeError")),
            "{what} was not blocked: {v}"
        );
    }
    assert_text_eq(&restricted.scrape().await, "", "restricted gateway");
    assert_eq!(requests(&restricted, "push", 403).await, 1.0, "{v}");
    assert_eq!(requests(&restricted, "push", 200).await, 0.0, "{v}");
    assert_eq!(requests(&restricted, "preflight", 200).await, 1.0, "{v}");
    eprintln!("Chromium {}", v["chromium"]);
}

/// The status page in headless Chromium: families, groups and a rejection
/// pushed by the test appear; a group is deleted through the page with
/// admin credentials; every request the page makes goes to the gateway and
/// nothing is logged as an error. The screenshot is left in the test's
/// output folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and the npm packages of tests/interop/node; run by scripts/test.sh"]
async fn status_page_in_chromium() {
    use prom_aggregation_gateway::config::Secret;
    let gw = Gateway::start_with(prom_aggregation_gateway::Config {
        auth_users: vec![("sender".into(), Secret::Plain("push-pw".into()))],
        admin_users: vec![("admin".into(), Secret::Plain("admin-pw".into()))],
        ..Default::default()
    })
    .await;
    let push = [("authorization", "Basic c2VuZGVyOnB1c2gtcHc=")];
    for (path, body) in [
        (
            "/metrics/job/web/instance/a",
            "# HELP web_clicks_total Clicks.\n# TYPE web_clicks_total counter\nweb_clicks_total{button=\"buy\"} 3\n",
        ),
        (
            "/metrics/job/gone",
            "# TYPE batch_runs_total counter\nbatch_runs_total 1\n",
        ),
    ] {
        assert_eq!(gw.request("POST", path, &push, body).await.status, 200);
    }
    // A refused push: its reason must show on the page.
    let r = gw
        .request("POST", "/metrics/job/web", &push, "web_clicks_total{ 1\n")
        .await;
    assert_eq!(r.status, 400);
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status_page.png");
    let _ = std::fs::remove_file(&shot);
    let out = run_client(
        "headless Chromium via playwright-core (apt install chromium; npm ci)",
        node("status_page.js").args([
            &format!("{}/", gw.base),
            "admin",
            "admin-pw",
            "{job=\"gone\"}",
            shot.to_str().unwrap(),
        ]),
    );
    let v: Value = serde_json::from_str(out.trim()).expect("status_page.js printed no JSON");
    let texts = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect()
    };
    let families = texts("families");
    assert!(
        families
            .iter()
            .any(|r| r.starts_with("web_clicks_total | counter | sum | 1 |")
                && r.ends_with("Clicks.")),
        "{families:?}"
    );
    assert!(
        families.iter().any(|r| r.starts_with("batch_runs_total")),
        "{families:?}"
    );
    // The family opened into its series: labels, value, start time.
    let series = texts("series");
    assert!(
        series
            .iter()
            .any(|r| r
                .starts_with("{button=\"buy\", instance=\"a\", job=\"web\"} |  |  | 3 | started ")),
        "{series:?}"
    );
    let before = texts("groupsBefore");
    assert!(
        before.iter().any(|r| r.starts_with("{job=\"gone\"}")),
        "{before:?}"
    );
    assert!(
        before
            .iter()
            .any(|r| r.starts_with("{job=\"web\"}") && r.contains("refused: line 1")),
        "{before:?}"
    );
    let rejections = texts("rejections");
    assert!(
        rejections
            .iter()
            .any(|r| r.contains("/metrics/job/web | 400 | parse")),
        "{rejections:?}"
    );
    let after = texts("groupsAfter");
    assert!(!after.iter().any(|r| r.contains("gone")), "{after:?}");
    assert!(
        v["message"].as_str().unwrap().contains("deleted 1 series"),
        "{v}"
    );
    assert!(
        !gw.scrape().await.contains("gone"),
        "the group's series are gone"
    );
    let pairs = texts("pairs");
    assert!(
        pairs.iter().any(|r| r.starts_with("job=\"web\"")),
        "{pairs:?}"
    );
    assert!(
        v["csp"].as_str().unwrap().starts_with("default-src 'none'"),
        "{v}"
    );
    // Nothing but the gateway was asked for anything.
    for url in v["requests"].as_array().unwrap() {
        let url = url.as_str().unwrap();
        assert!(
            url.starts_with(&gw.base),
            "a request left the gateway: {url}"
        );
    }
    assert_eq!(v["consoleErrors"], serde_json::json!([]), "{v}");
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "screenshot"
    );
    eprintln!("screenshot: {}", shot.display());
}
