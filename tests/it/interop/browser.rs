//! A web page in headless Chromium (Debian's `chromium`, driven by npm's
//! `playwright-core`) pushing with `fetch()` from another origin: a simple
//! POST, preflighted PUT and DELETE, and scrapes, against a gateway with
//! `--cors '*'`; and against one whose `--cors` lists another origin, where
//! the browser must get nothing through. Script:
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

    // Open gateway: every request reaches it and its answer reaches the page.
    assert_eq!(o["post"]["status"], 200, "{v}");
    assert_eq!(o["put"]["status"], 200, "{v}");
    assert_text_eq(
        o["scrape"]["text"].as_str().unwrap(),
        "# TYPE web_clicks_total counter\n\
         web_clicks_total{button=\"buy\",job=\"web\",page=\"checkout\"} 2\n",
        "scrape read by the page",
    );
    assert_eq!(o["delete"]["status"], 202, "{v}");
    assert_eq!(o["after"]["text"], "", "{v}");
    // Then an OTLP/HTTP JSON export, preflighted (application/json), as
    // the OpenTelemetry browser SDK sends it.
    assert_eq!(o["otlp"]["status"], 200, "{v}");
    assert_eq!(o["otlp"]["text"], "{}", "{v}");
    assert_text_eq(
        &open.scrape().await,
        "# TYPE web_orders_total counter\nweb_orders_total{job=\"web\",page=\"checkout\"} 3\n",
        "open gateway after the page's DELETE and OTLP export",
    );
    // PUT is not a simple method: Chromium asked first (and cached the answer
    // for the DELETE to the same URL, max-age 600).
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
