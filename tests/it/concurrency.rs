//! Many senders at once lose no increment.

use crate::support::{Gateway, assert_text_eq};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_senders_five_hundred_pushes_each_sum_exactly() {
    const SENDERS: usize = 32;
    const PUSHES: usize = 500;
    let gw = std::sync::Arc::new(Gateway::start().await);
    let mut tasks = Vec::new();
    for s in 0..SENDERS {
        let gw = gw.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PUSHES {
                // Shared series, a per-sender series, and a histogram, each
                // push in a different family order to mix shard locking.
                let body = if i % 2 == 0 {
                    format!(
                        "# TYPE shared counter\nshared 1\n# TYPE mine counter\nmine{{sender=\"{s}\"}} 2\n# TYPE h histogram\nh_bucket{{le=\"1\"}} 1\nh_bucket{{le=\"+Inf\"}} 1\nh_sum 0.5\nh_count 1\n"
                    )
                } else {
                    format!(
                        "# TYPE h histogram\nh_bucket{{le=\"1\"}} 1\nh_bucket{{le=\"+Inf\"}} 1\nh_sum 0.5\nh_count 1\n# TYPE mine counter\nmine{{sender=\"{s}\"}} 2\n# TYPE shared counter\nshared 1\n"
                    )
                };
                gw.push_ok("/metrics/job/load", &body).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = SENDERS * PUSHES;
    let mut expected = format!(
        "# TYPE h histogram\nh_bucket{{job=\"load\",le=\"1\"}} {total}\nh_bucket{{job=\"load\",le=\"+Inf\"}} {total}\nh_sum{{job=\"load\"}} {}\nh_count{{job=\"load\"}} {total}\n# TYPE mine counter\n",
        total / 2
    );
    let mut senders: Vec<String> = (0..SENDERS).map(|s| s.to_string()).collect();
    senders.sort();
    for s in senders {
        expected.push_str(&format!(
            "mine{{job=\"load\",sender=\"{s}\"}} {}\n",
            PUSHES * 2
        ));
    }
    expected.push_str(&format!(
        "# TYPE shared counter\nshared{{job=\"load\"}} {total}\n"
    ));
    assert_text_eq(&gw.scrape().await, &expected, "concurrent sums");
}
