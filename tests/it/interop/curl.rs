//! curl, as the Pushgateway and Go gateway READMEs use it: a plain
//! `--data-binary` push (curl labels it application/x-www-form-urlencoded),
//! a gzip-compressed body with `Content-Encoding: gzip` (compressed by the
//! `gzip` program), and a `--compressed` scrape.

use std::process::Command;

use super::pipe;
use crate::support::{Gateway, assert_text_eq};

/// curl with `args`, `stdin` as its input (`--data-binary @-`).
fn curl(args: &[&str], stdin: &[u8]) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--fail-with-body"])
        .args(args);
    String::from_utf8(pipe("curl (apt install curl)", &mut cmd, stdin)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs curl and gzip; run by scripts/test.sh"]
async fn curl_plain_and_gzip_pushes() {
    let gw = Gateway::start().await;
    let body = "# TYPE deploys_total counter\ndeploys_total{env=\"prod\"} 2\n\
                # TYPE build_seconds histogram\n\
                build_seconds_bucket{le=\"10\"} 1\nbuild_seconds_bucket{le=\"+Inf\"} 2\n\
                build_seconds_sum 25\nbuild_seconds_count 2\n";
    let url = format!("{}/metrics/job/ci/runner/r1", gw.base);
    curl(&["--data-binary", "@-", &url], body.as_bytes());

    let gzipped = pipe("gzip", Command::new("gzip").arg("-c"), body.as_bytes());
    assert_eq!(&gzipped[..2], b"\x1f\x8b", "not a gzip stream");
    curl(
        &[
            "--data-binary",
            "@-",
            "-H",
            "Content-Encoding: gzip",
            "-H",
            "Content-Type: text/plain; version=0.0.4",
            "-X",
            "PUT",
            &url,
        ],
        &gzipped,
    );

    let l = r#"job="ci",runner="r1""#;
    let expected = format!(
        "# TYPE build_seconds histogram\n\
         build_seconds_bucket{{{l},le=\"10\"}} 2\n\
         build_seconds_bucket{{{l},le=\"+Inf\"}} 4\n\
         build_seconds_sum{{{l}}} 50\n\
         build_seconds_count{{{l}}} 4\n\
         # TYPE deploys_total counter\n\
         deploys_total{{env=\"prod\",{l}}} 4\n"
    );
    assert_text_eq(&gw.scrape().await, &expected, "scrape after curl pushes");
    // curl asks for gzip and inflates it: the same text.
    let scraped = curl(&["--compressed", &format!("{}/metrics", gw.base)], b"");
    assert_text_eq(&scraped, &expected, "curl --compressed scrape");
}
