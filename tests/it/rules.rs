//! Rules (`--rules`) over real sockets: every protocol goes through the
//! same rules; invalid files stop the start naming file and line; the file
//! is re-read on change and on SIGHUP, and a bad new file keeps the rules
//! in force; `total` sources survive a restart through the snapshot, and a
//! snapshot of the earlier format still restores.

use std::path::Path;
use std::time::Duration;

use prom_aggregation_gateway::Config;

use crate::support::{
    ACCEPT_PROTOBUF, Gateway, Process, TempDir, counter, delimited, eventually, free_port, request,
    sample_value,
};

const TOTAL: &str = "
rules:
  - name: jobs
    match: 'jobs_total'
    mode: total
    source_labels: [instance]
    without: [instance]
";

fn write(path: &Path, text: &str) {
    // Written beside and renamed, as editors and Kubernetes do.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn cumulative(v: f64) -> String {
    format!("# TYPE jobs_total counter\njobs_total {v}\n")
}

#[tokio::test]
async fn rules_apply_alike_to_every_protocol() {
    let dir = TempDir::new("rules-protocols");
    let file = dir.path.join("rules.yml");
    write(&file, TOTAL);
    let gw = Gateway::start_with(Config {
        rules_file: Some(file),
        ..Config::default()
    })
    .await;
    // Source a over HTTP text, b over gRPC, c over HTTP protobuf; each
    // pushes its running total twice.
    for v in [3.0, 5.0] {
        gw.push_ok("/metrics/job/j/instance/a", &cumulative(v))
            .await;
    }
    let mut grpc = gw.grpc().await;
    for v in [4.0, 6.0] {
        grpc.push(request(
            vec![counter("jobs_total", &[], v)],
            &[("job", "j"), ("instance", "b")],
        ))
        .await
        .unwrap();
    }
    for v in [1.0, 2.0] {
        let r = gw
            .request(
                "POST",
                "/metrics/job/j/instance/c",
                &[("content-type", ACCEPT_PROTOBUF)],
                delimited(&[counter("jobs_total", &[], v)]),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let text = gw.scrape().await;
    assert_eq!(
        sample_value(&text, "jobs_total{job=\"j\"}"),
        Some(13.0),
        "{text}"
    );
    assert!(!text.contains("instance="), "{text}");
    let m = gw.request("GET", "/-/metrics", &[], "").await.text();
    for line in [
        "pag_rule_sources{rule=\"jobs\"} 3",
        "pag_rule_series_matched_total{rule=\"jobs\"} 6",
        "pag_rule_series_written_total{rule=\"jobs\"} 6",
        "pag_rules 1",
        "pag_rules_last_reload_successful 1",
    ] {
        assert!(m.contains(line), "{line} missing:\n{m}");
    }
}

#[tokio::test]
async fn invalid_rules_stop_the_start_naming_file_and_line() {
    let dir = TempDir::new("rules-invalid");
    let file = dir.path.join("rules.yml");
    write(
        &file,
        "rules:\n  - match: 'a'\n  - match: 'b'\n    mode: total\n    by: [x]\n    without: [y]\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prom-aggregation-gateway"))
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--rules")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "rules file {}, line 3 (rule 2): give `by` or `without`, not both",
        file.display()
    );
    assert!(err.contains(&want), "{err}");
}

/// Waits until the self-metric `series` satisfies `ok`.
pub async fn wait_for(p: &Process, what: &str, series: &str, ok: impl Fn(f64) -> bool) {
    let ok = &ok;
    eventually(what, Duration::from_secs(10), || async move {
        ok(p.self_metric(series).await).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_reload_on_change_and_on_sighup_and_a_bad_file_keeps_them() {
    let dir = TempDir::new("rules-reload");
    let file = dir.path.join("rules.yml");
    write(&file, "rules:\n  - match: 'temp'\n    mode: max\n");
    let rules = file.display().to_string();
    let p = Process::start(&["--rules", &rules, "--rules-check-interval", "100ms"]).await;
    let client = reqwest::Client::new();
    let push = |v: f64| {
        let (client, url) = (&client, format!("{}/metrics", p.base));
        async move {
            let r = client
                .post(url)
                .body(format!("# TYPE temp gauge\ntemp {v}\n"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    push(5.0).await;
    push(3.0).await;
    assert_eq!(sample_value(&p.scrape().await, "temp"), Some(5.0));

    // Changed on disk: min from now on.
    write(&file, "rules:\n  - match: 'temp'\n    mode: min\n");
    wait_for(
        &p,
        "the changed file in force",
        "pag_rules_reloads_total{result=\"ok\"}",
        |v| v >= 2.0,
    )
    .await;
    push(4.0).await;
    assert_eq!(sample_value(&p.scrape().await, "temp"), Some(4.0));

    // A bad file: logged, counted, the rules in force kept.
    write(&file, "rules:\n  - match: 'temp{'\n");
    wait_for(
        &p,
        "the bad file refused",
        "pag_rules_reloads_total{result=\"error\"}",
        |v| v >= 1.0,
    )
    .await;
    assert_eq!(p.self_metric("pag_rules_last_reload_successful").await, 0.0);
    push(2.0).await;
    assert_eq!(sample_value(&p.scrape().await, "temp"), Some(2.0));
    push(9.0).await;
    assert_eq!(sample_value(&p.scrape().await, "temp"), Some(2.0));

    // SIGHUP re-reads even an unchanged file.
    write(&file, "rules:\n  - match: 'temp'\n    mode: last\n");
    wait_for(
        &p,
        "the fixed file in force",
        "pag_rules_last_reload_successful",
        |v| v == 1.0,
    )
    .await;
    let before = p
        .self_metric("pag_rules_reloads_total{result=\"ok\"}")
        .await;
    p.signal("HUP");
    wait_for(
        &p,
        "SIGHUP reload",
        "pag_rules_reloads_total{result=\"ok\"}",
        |v| v > before,
    )
    .await;
    push(7.0).await;
    assert_eq!(sample_value(&p.scrape().await, "temp"), Some(7.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_sources_survive_a_restart() {
    let dir = TempDir::new("rules-restart");
    let file = dir.path.join("rules.yml");
    write(&file, TOTAL);
    let snap = dir.path.join("snap");
    let args = [
        "--rules",
        &file.display().to_string(),
        "--persistence-file",
        &snap.display().to_string(),
    ]
    .map(|s| s.to_string());
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let port = free_port();
    let client = reqwest::Client::new();
    let push = |base: String, instance: &'static str, v: f64| {
        let client = &client;
        async move {
            let r = client
                .post(format!("{base}/metrics/job/j/instance/{instance}"))
                .body(cumulative(v))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    };
    let mut p = Process::start_on(port, &args).await;
    push(p.base.clone(), "a", 5.0).await;
    push(p.base.clone(), "b", 2.0).await;
    p.signal("TERM");
    assert!(p.wait().await.success());
    let p = Process::start_on(port, &args).await;
    assert_eq!(p.self_metric("pag_rule_sources{rule=\"jobs\"}").await, 2.0);
    // a went on from 5 to 7: only 2 more.
    push(p.base.clone(), "a", 7.0).await;
    assert_eq!(
        sample_value(&p.scrape().await, "jobs_total{job=\"j\"}"),
        Some(9.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_sources_survive_a_restart() {
    let dir = TempDir::new("latest-restart");
    let file = dir.path.join("rules.yml");
    write(
        &file,
        "rules:\n  - match: 'queue_depth'\n    name: depth\n    mode: latest\n    combine: max\n    source_labels: [instance]\n    without: [instance]\n",
    );
    let snap = dir.path.join("snap");
    let args = [
        "--rules",
        &file.display().to_string(),
        "--persistence-file",
        &snap.display().to_string(),
    ]
    .map(|s| s.to_string());
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let port = free_port();
    let client = reqwest::Client::new();
    let push = |base: String, instance: &'static str, v: f64| {
        let client = &client;
        async move {
            let r = client
                .post(format!("{base}/metrics/job/j/instance/{instance}"))
                .body(format!("# TYPE queue_depth gauge\nqueue_depth {v}\n"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    };
    let depth = "queue_depth{job=\"j\"}";
    let mut p = Process::start_on(port, &args).await;
    push(p.base.clone(), "a", 5.0).await;
    push(p.base.clone(), "b", 9.0).await;
    assert_eq!(sample_value(&p.scrape().await, depth), Some(9.0));
    p.signal("TERM");
    assert!(p.wait().await.success());
    let p = Process::start_on(port, &args).await;
    assert_eq!(p.self_metric("pag_rule_sources{rule=\"depth\"}").await, 2.0);
    assert_eq!(sample_value(&p.scrape().await, depth), Some(9.0));
    // b's level falls: the max is a's, remembered across the restart.
    push(p.base.clone(), "b", 1.0).await;
    assert_eq!(sample_value(&p.scrape().await, depth), Some(5.0));
}

#[tokio::test]
async fn a_snapshot_of_the_first_format_still_restores() {
    let dir = TempDir::new("rules-v1");
    let snap = dir.path.join("snap");
    // Format 1: the aggregate alone as the payload.
    let payload = delimited(&[counter("jobs_total", &[("job", "j")], 4.0)]);
    let mut file = b"PAGSNAP\0".to_vec();
    file.extend_from_slice(&1u32.to_le_bytes());
    file.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    file.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    file.extend_from_slice(&payload);
    std::fs::write(&snap, file).unwrap();
    let gw = Gateway::start_with(Config {
        persistence_file: Some(snap.clone()),
        ..Config::default()
    })
    .await;
    assert_eq!(
        sample_value(&gw.scrape().await, "jobs_total{job=\"j\"}"),
        Some(4.0)
    );
    gw.stop().await.unwrap();
    // Written back in the current format, which restores too.
    let bytes = std::fs::read(&snap).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 3);
    let gw = Gateway::start_with(Config {
        persistence_file: Some(snap),
        ..Config::default()
    })
    .await;
    assert_eq!(
        sample_value(&gw.scrape().await, "jobs_total{job=\"j\"}"),
        Some(4.0)
    );
}
