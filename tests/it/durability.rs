//! Snapshots, graceful shutdown and crashes, with the real binary.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Process, TempDir, assert_text_eq, eventually, sample_value};

pub(crate) fn snapshot_path(name: &str) -> (TempDir, String) {
    let dir = TempDir::new(name);
    let path = dir
        .path
        .join("aggregate.snap")
        .to_string_lossy()
        .into_owned();
    (dir, path)
}

const BODY: &str = "# TYPE c counter\nc{k=\"v\"} 2\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n# TYPE g gauge\ng -1.5\n";

async fn push(base: &str, body: &str) {
    let r = reqwest::Client::new()
        .post(format!("{base}/metrics/job/d"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_writes_a_snapshot_that_the_next_start_restores() {
    let (_dir, snap) = snapshot_path("sigterm");
    let mut gw =
        Process::start(&["--persistence-file", &snap, "--persistence-interval", "1h"]).await;
    push(&gw.base, BODY).await;
    push(&gw.base, BODY).await;
    let before = gw.scrape().await;
    gw.signal("TERM");
    assert!(gw.wait().await.success(), "exit status after SIGTERM");
    let gw = Process::start(&["--persistence-file", &snap]).await;
    assert_text_eq(&gw.scrape().await, &before, "restored aggregate");
    push(&gw.base, BODY).await;
    assert!(gw.scrape().await.contains("c{job=\"d\",k=\"v\"} 6\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_snapshot_stops_start_up_unless_told_to_discard_it() {
    let (_dir, snap) = snapshot_path("corrupt");
    let mut gw = Process::start(&["--persistence-file", &snap]).await;
    push(&gw.base, BODY).await;
    gw.signal("TERM");
    assert!(gw.wait().await.success());
    let mut bytes = std::fs::read(&snap).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&snap, &bytes).unwrap();
    for damaged in [bytes.clone(), bytes[..bytes.len() / 2].to_vec()] {
        std::fs::write(&snap, &damaged).unwrap();
        let err = crate::support::refused_start(&[
            "--listen",
            "127.0.0.1:0",
            "--persistence-file",
            &snap,
        ]);
        assert!(err.contains(&snap), "error does not name the file: {err}");
        assert!(
            err.contains("checksum") || err.contains("truncated"),
            "{err}"
        );
    }
    let gw = Process::start(&["--persistence-file", &snap, "--persistence-discard-corrupt"]).await;
    assert_eq!(gw.scrape().await, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_push_finish_and_keeps_it() {
    let (_dir, snap) = snapshot_path("drain");
    let mut gw = Process::start(&["--persistence-file", &snap]).await;
    let body = "# TYPE slow counter\nslow 7\n";
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", gw.port))
        .await
        .unwrap();
    let head = format!(
        "POST /metrics/job/d HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body.as_bytes()[..5]).await.unwrap();
    // Until the request is in flight.
    let in_flight = "pag_requests_in_flight{handler=\"push\",protocol=\"http\"}";
    let gw_ref = &gw;
    eventually(
        "the push in flight",
        Duration::from_secs(10),
        || async move { (gw_ref.self_metric(in_flight).await >= 1.0).then_some(()) },
    )
    .await;
    gw.signal("TERM");
    // New connections are refused once the listener closes ...
    let port = gw.port;
    eventually(
        "connections refused after SIGTERM",
        Duration::from_secs(10),
        || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
                .then_some(())
        },
    )
    .await;
    // ... but the open push completes and is answered.
    s.write_all(&body.as_bytes()[5..]).await.unwrap();
    let mut reply = vec![0u8; 256];
    let n = s.read(&mut reply).await.unwrap();
    let reply = String::from_utf8_lossy(&reply[..n]);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(gw.wait().await.success());
    let gw = Process::start(&["--persistence-file", &snap]).await;
    assert_eq!(
        sample_value(&gw.scrape().await, "slow{job=\"d\"}"),
        Some(7.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_load_loses_at_most_one_interval_and_never_corrupts() {
    let (_dir, snap) = snapshot_path("kill9");
    let args = [
        "--persistence-file",
        snap.as_str(),
        "--persistence-interval",
        "100ms",
    ];
    let gw = Process::start(&args).await;
    let writes = "pag_snapshot_writes_total{result=\"ok\"}";
    // Senders push `inc 1` until told to stop; each acknowledged push is counted.
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for _ in 0..8 {
        let (acked, stop, base) = (acked.clone(), stop.clone(), gw.base.clone());
        senders.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client
                    .post(format!("{base}/metrics"))
                    .body("# TYPE inc counter\ninc 1\n")
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    _ => break,
                }
            }
        }));
    }
    // A lower bound the snapshot must hold: pushes acknowledged before a
    // snapshot that started after them. Seeing the write counter at w and
    // later at w + 2 proves one whole write began after the first look.
    let mut lower = 0;
    for _ in 0..3 {
        let seen_acked = acked.load(std::sync::atomic::Ordering::SeqCst);
        let w = gw.self_metric(writes).await;
        let gw_ref = &gw;
        eventually(
            "two more snapshots written",
            Duration::from_secs(20),
            || async move { (gw_ref.self_metric(writes).await >= w + 2.0).then_some(()) },
        )
        .await;
        lower = seen_acked;
    }
    assert!(lower > 0, "no push acknowledged");
    gw.signal("KILL");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in senders {
        let _ = s.await;
    }
    let upper = acked.load(std::sync::atomic::Ordering::SeqCst);
    drop(gw);
    let gw = Process::start(&args).await;
    let restored = sample_value(&gw.scrape().await, "inc").unwrap_or(0.0) as u64;
    assert!(
        restored >= lower && restored <= upper,
        "restored {restored}, acknowledged {upper}, snapshot-proven {lower}"
    );
}

/// The snapshot is handled like a database file: private (0600), written
/// through a fresh temporary file that follows no symlink and is gone
/// afterwards; and when the last snapshot cannot be written, the process
/// says so and exits non-zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_files_are_private_and_a_failed_last_snapshot_fails_the_exit() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, snap) = snapshot_path("private");
    // A symlink where a predictable temporary file would go: never followed.
    let victim = dir.path.join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    std::os::unix::fs::symlink(&victim, format!("{snap}.tmp")).unwrap();
    let mut gw =
        Process::start(&["--persistence-file", &snap, "--persistence-interval", "1h"]).await;
    push(&gw.base, BODY).await;
    gw.signal("TERM");
    assert!(gw.wait().await.success());
    let mode = std::fs::metadata(&snap).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "snapshot mode {mode:o}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    let mut names: Vec<String> = std::fs::read_dir(&dir.path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["aggregate.snap", "aggregate.snap.tmp", "victim"]);

    // The folder disappears while the gateway runs: the last snapshot fails.
    let gone = dir.path.join("gone");
    std::fs::create_dir(&gone).unwrap();
    let snap = gone.join("aggregate.snap").to_string_lossy().into_owned();
    let mut gw =
        Process::start(&["--persistence-file", &snap, "--persistence-interval", "1h"]).await;
    push(&gw.base, BODY).await;
    std::fs::remove_dir_all(&gone).unwrap();
    gw.signal("TERM");
    let status = gw.wait().await;
    assert!(
        !status.success(),
        "exit status {status} after a failed last snapshot"
    );
    let stderr = gw.stderr();
    assert!(stderr.contains("snapshot write to"), "{stderr}");
}

/// Limits lowered since a snapshot was written do not lose it: a restart
/// with a byte budget and bucket limits it exceeds restores it whole, and
/// then refuses pushes that would add more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_over_lowered_limits_is_still_restored() {
    let (_dir, snap) = snapshot_path("lowered");
    let mut gw = Process::start(&["--persistence-file", &snap]).await;
    let many: String = (0..20_000)
        .map(|i| format!("m{{i=\"{i}\",pad=\"{}\"}} 1\n", "x".repeat(40)))
        .collect();
    push(&gw.base, &many).await;
    push(&gw.base, BODY).await;
    let before = gw.scrape().await;
    gw.signal("TERM");
    assert!(gw.wait().await.success());
    let gw = Process::start(&[
        "--persistence-file",
        &snap,
        "--max-memory",
        "1MiB",
        "--max-buckets",
        "1",
    ])
    .await;
    assert_text_eq(&gw.scrape().await, &before, "restored under lower limits");
    let r = reqwest::Client::new()
        .post(format!("{}/metrics", gw.base))
        .body("new_one 1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "{}", r.text().await.unwrap());
}
