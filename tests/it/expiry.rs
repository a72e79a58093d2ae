//! Series expire: `--series-ttl` drops a series its senders left, on the
//! aggregate's clock.

use std::time::Duration;

use prom_aggregation_gateway::Config;

use crate::support::{Gateway, eventually};

#[tokio::test]
async fn series_expire_after_the_ttl() {
    let clock = prom_aggregation_gateway::clock::Clock::manual();
    let config = Config {
        series_ttl: Some(Duration::from_secs(2)),
        clock: clock.clone(),
        ..Config::default()
    };
    let gw = Gateway::start_with(config).await;
    gw.push_ok("/metrics", "# TYPE once counter\nonce 1\n")
        .await;
    clock.advance(Duration::from_millis(1500));
    // Younger than the TTL: both stay.
    gw.push_ok("/metrics", "# TYPE kept counter\nkept 1\n")
        .await;
    let text = gw.scrape().await;
    assert!(text.contains("once ") && text.contains("kept "), "{text}");
    // `once` is 3.5 s old, `kept` 2 s: the next sweep drops `once` only.
    clock.advance(Duration::from_secs(2));
    let gw_ref = &gw;
    let text = eventually("`once` expired", Duration::from_secs(10), || async move {
        let text = gw_ref.scrape().await;
        (!text.contains("once ")).then_some(text)
    })
    .await;
    assert!(
        text.contains("kept "),
        "the fresh series expired too:\n{text}"
    );
    let m = gw.request("GET", "/-/metrics", &[], "").await.text();
    assert!(m.contains("pag_series_expired_total 1"), "{m}");
}
