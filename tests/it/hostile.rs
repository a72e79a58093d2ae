//! The hostile-request matrix: every route of the table (`routes::MAIN`,
//! which the router is built from) used as an attacker would, against a
//! gateway holding large state (families with long HELP texts, grouping
//! keys of 15 KiB, a full refusal log, a scrape of megabytes):
//! - the largest answer it can give is within its row's bound, or
//!   streamed;
//! - clients that ask and never read cost little memory, leave health
//!   and pushes answering, and are cut by `--write-timeout`;
//! - a flood of it leaves pushes their latency.
//!
//! What each route should answer is decided by an exhaustive `match` on its
//! handler ([`row`]), so a handler added later without its row does not
//! compile, and a path added to the table is attacked with its handler's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prom_aggregation_gateway::routes::{self, Body, Handler, Route, Scope};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::routes::{Ct, body_for, path_of};
use crate::support::{Process, eventually};

/// How large an answer may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// At most this many bytes, whatever the state.
    AtMost(usize),
    /// A page: at most `MAX_PAGE_BYTES` (1 MiB) of entries and one more.
    Paged,
    /// As large as the state, streamed (scrapes).
    Streamed,
    /// A stream that never ends (gRPC health `Watch`).
    Endless,
}

/// The largest a page may be: 1 MiB of entries, the entry that passed
/// it (a grouping key of 16 KiB is 40 KiB with its delete path), and the
/// page's own fields.
const PAGE_MOST: usize = (1 << 20) + (64 << 10);

/// One row of the matrix.
struct Row {
    route: &'static Route,
    /// Path and query asking for the largest answer.
    target: String,
    ct: Ct,
    body: Vec<u8>,
    /// The status it gets: admin routes are asked without credentials.
    status: u16,
    answer: Answer,
}

impl Row {
    fn grpc(&self) -> bool {
        self.route.body == Body::Grpc
    }

    fn what(&self) -> String {
        format!("{} {}", self.route.method, self.target)
    }
}

fn row(route: &'static Route) -> Row {
    use Answer::*;
    let small = AtMost(4 << 10);
    let (query, answer) = match route.handler {
        Handler::Scrape => ("", Streamed),
        Handler::Push | Handler::OtlpMetrics => ("", small),
        // Refused (401): the attacker has no admin credentials.
        Handler::Delete | Handler::Wipe => ("", small),
        Handler::Status => ("", AtMost(64 << 10)),
        Handler::Families | Handler::Groups | Handler::Series => ("?limit=1000", Paged),
        Handler::Cardinality => ("?limit=100", AtMost(1 << 20)),
        Handler::Rejections => ("", AtMost(1 << 20)),
        Handler::Page | Handler::Script | Handler::Style | Handler::Icon => ("", AtMost(256 << 10)),
        Handler::SelfMetrics => ("", AtMost(1 << 20)),
        Handler::Healthy | Handler::Ready => ("", AtMost(1 << 10)),
        Handler::GrpcPush | Handler::GrpcPushStream | Handler::GrpcOtlpExport => ("", small),
        Handler::GrpcHealth if route.path.ends_with("/Watch") => ("", Endless),
        Handler::GrpcHealth => ("", AtMost(1 << 10)),
        Handler::GrpcReflection => ("", AtMost(64 << 10)),
    };
    let ct = match route.body {
        Body::None => Ct::None,
        Body::Exposition => Ct::Text,
        Body::Otlp => Ct::Otlp,
        Body::Grpc => Ct::Grpc,
    };
    Row {
        route,
        target: format!("{}{query}", path_of(route)),
        ct,
        body: body_for(route, ct),
        status: if route.scope == Scope::Admin {
            401
        } else {
            200
        },
        answer,
    }
}

fn rows() -> Vec<Row> {
    routes::MAIN.iter().map(row).collect()
}

/// The gateway under attack: a 64 MiB budget, a 2 s write timeout, admin
/// routes behind credentials the attacker does not have.
async fn target() -> Process {
    Process::start(&[
        "--max-memory",
        "64MiB",
        "--write-timeout",
        "2s",
        "--admin-users",
        "admin=a",
    ])
    .await
}

/// Large state: 2,000 families with 4 KiB HELP texts (a scrape of 9 MB),
/// 400 grouping keys of 7 labels of 2,000 bytes, and refused pushes.
async fn fill(gw: &Process) {
    let client = reqwest::Client::new();
    let help = "h".repeat(4096);
    for batch in 0..10 {
        let mut body = String::new();
        for i in 0..200 {
            let name = format!("fam_{batch}_{i:03}_{}", "x".repeat(200));
            body.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} 1\n"
            ));
        }
        let r = client
            .post(format!("{}/metrics/job/fill", gw.base))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    for g in 0..400 {
        let mut path = format!("/metrics/job/g{g}");
        for l in 0..7 {
            path.push_str(&format!("/l{l}/{g}{}", "v".repeat(2000)));
        }
        let r = client
            .post(format!("{}{path}", gw.base))
            .body("group_total 1\n")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    for i in 0..200 {
        let r = client
            .post(format!("{}/metrics/job/bad{i}", gw.base))
            .body(format!("bad{{{}\n", "q".repeat(2000)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
}

fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

/// HTTP/1.1 for HTTP routes, h2c for gRPC ones.
fn client(grpc: bool) -> reqwest::Client {
    let b = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if grpc {
        b.http2_prior_knowledge().build().unwrap()
    } else {
        b.http1_only().build().unwrap()
    }
}

fn request(client: &reqwest::Client, base: &str, row: &Row) -> reqwest::RequestBuilder {
    let mut req = client
        .request(row.route.method.clone(), format!("{base}{}", row.target))
        .body(row.body.clone());
    if let Some(ct) = row.ct.header() {
        req = req.header("content-type", ct);
    }
    if row.grpc() {
        req = req.header("te", "trailers");
    }
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_s_largest_answer_is_within_its_bound() {
    let gw = target().await;
    fill(&gw).await;
    let mut failures = Vec::new();
    for row in rows() {
        let client = client(row.grpc());
        let mut res = request(&client, &gw.base, &row).send().await.unwrap();
        let status = res.status().as_u16();
        if status != row.status {
            failures.push(format!(
                "{}: status {status}, want {}",
                row.what(),
                row.status
            ));
            continue;
        }
        let mut bytes = 0;
        loop {
            let chunk = tokio::time::timeout(Duration::from_secs(20), res.chunk()).await;
            match chunk {
                Ok(Ok(Some(c))) => bytes += c.len(),
                Ok(Ok(None)) => break,
                Ok(Err(e)) => {
                    failures.push(format!("{}: answer cut: {e}", row.what()));
                    break;
                }
                Err(_) => {
                    failures.push(format!("{}: answer not finished in 20 s", row.what()));
                    break;
                }
            }
            if row.answer == Answer::Endless {
                break;
            }
        }
        let most = match row.answer {
            Answer::AtMost(n) => n,
            Answer::Paged => PAGE_MOST,
            // The scrape carries every family: the test's state is large.
            Answer::Streamed => {
                if bytes < 8 << 20 {
                    failures.push(format!("{}: scrape of {bytes} bytes", row.what()));
                }
                usize::MAX
            }
            Answer::Endless => 1 << 10,
        };
        eprintln!("{:<70} {bytes:>9} bytes", row.what());
        if bytes > most {
            failures.push(format!("{}: {bytes} bytes, at most {most}", row.what()));
        }
    }
    // Pages that ended early say where the next starts.
    let page = reqwest::get(format!("{}/api/v1/groups?limit=1000", gw.base))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let groups: serde_json::Value = serde_json::from_slice(&page).unwrap();
    let listed = groups["groups"].as_array().unwrap().len();
    assert!(listed < 400, "groups page not cut by bytes: {listed}");
    assert_eq!(groups["next"], listed);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Clients that send a route's request and never read: HTTP/1.1 over
/// sockets with a 4 KiB receive buffer (the kernel takes a few MiB of the
/// answer), or h2c streams whose answers are held unread (their
/// flow-control window never given back, so the gateway holds the rest).
#[allow(clippy::large_enum_variant)]
enum NonReader {
    Socket(tokio::net::TcpStream),
    /// Held, never read: dropping it would cancel the stream.
    Stream(#[allow(dead_code)] reqwest::Response),
}

async fn non_reader(gw: &Process, h2: &reqwest::Client, row: &Row, stream: bool) -> NonReader {
    if stream || row.grpc() {
        return NonReader::Stream(request(h2, &gw.base, row).send().await.unwrap());
    }
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket
        .connect(format!("127.0.0.1:{}", gw.port).parse().unwrap())
        .await
        .unwrap();
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\n",
        row.route.method,
        row.target,
        row.body.len()
    );
    if let Some(ct) = row.ct.header() {
        head.push_str(&format!("content-type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&row.body).await.unwrap();
    NonReader::Socket(tcp)
}

/// The most RSS 32 non-readers of one route may add: the budget
/// (`--max-memory 64MiB`) bounds what answers hold; the rest is their
/// connections' buffers.
const NON_READERS_MOST: u64 = 48 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_hold_little_and_are_cut() {
    let gw = target().await;
    fill(&gw).await;
    let pid = gw.child.id();
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let mut failures = Vec::new();
    for row in rows() {
        let before = rss(pid);
        let h2 = client(true);
        let mut held = Vec::new();
        for i in 0..32 {
            held.push(non_reader(&gw, &h2, &row, i % 2 == 1).await);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let grown = rss(pid).saturating_sub(before);
        let t = Instant::now();
        let health = quick.get(format!("{}/-/healthy", gw.base)).send().await;
        let health_took = t.elapsed();
        let push = quick
            .post(format!("{}/metrics/job/probe", gw.base))
            .body("probe_total 1\n")
            .send()
            .await;
        eprintln!(
            "{:<70} +{:>6} KiB, health {health_took:?}",
            row.what(),
            grown >> 10
        );
        if grown > NON_READERS_MOST {
            failures.push(format!("{}: RSS +{} MiB", row.what(), grown >> 20));
        }
        if !health.is_ok_and(|r| r.status() == 200) {
            failures.push(format!("{}: health not answered in 1 s", row.what()));
        }
        if !push.is_ok_and(|r| r.status() == 200) {
            failures.push(format!("{}: a push not answered in 1 s", row.what()));
        }
        // Pages not read hold the views' budget (an eighth of
        // --max-memory, 8 MiB): more views wait, pushes do not. Sixteen
        // h2 streams of 1 MiB groups pages, 5 MiB of them taken by the
        // client's window, hold more than that.
        if row.route.handler == Handler::Groups {
            let view = quick
                .get(format!("{}{}", gw.base, row.target))
                .send()
                .await
                .unwrap();
            if view.status() != 429 {
                failures.push(format!(
                    "{}: {} with the views' budget held",
                    row.what(),
                    view.status()
                ));
            }
        }
        drop(held);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A scrape never read is cut once its write stalled for
    // --write-timeout (2 s): reading afterwards ends, short of the scrape.
    let scrape = rows()
        .into_iter()
        .find(|r| r.route.handler == Handler::Scrape)
        .unwrap();
    let h2 = client(true);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(non_reader(&gw, &h2, &scrape, false).await);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    for one in held {
        let NonReader::Socket(mut tcp) = one else {
            unreachable!()
        };
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            let mut buf = vec![0; 64 << 10];
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        assert!(read.is_ok(), "a stalled scrape's connection was not closed");
        assert!(
            got.len() < 8 << 20,
            "the scrape went on: {} bytes",
            got.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_any_route_leave_pushes_their_latency() {
    let gw = Arc::new(target().await);
    fill(&gw).await;
    let pusher = client(false);
    let mut failures = Vec::new();
    for row in rows() {
        let row = Arc::new(row);
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let mut flood = Vec::new();
        for _ in 0..8 {
            let (gw, row, stop, sent) = (gw.clone(), row.clone(), stop.clone(), sent.clone());
            flood.push(tokio::spawn(async move {
                let client = client(row.grpc());
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut res) = request(&client, &gw.base, &row).send().await else {
                        continue;
                    };
                    // Read what comes (a Watch only its first message).
                    while let Ok(Some(_)) = res.chunk().await {
                        if row.answer == Answer::Endless {
                            break;
                        }
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let mut took = Vec::new();
        let until = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < until {
            let t = Instant::now();
            let r = pusher
                .post(format!("{}/metrics/job/probe", gw.base))
                .body("probe_total 1\n")
                .send()
                .await
                .unwrap();
            took.push(t.elapsed());
            assert_eq!(r.status(), 200);
        }
        stop.store(true, Ordering::Relaxed);
        for f in flood {
            f.await.unwrap();
        }
        took.sort();
        let p50 = took[took.len() / 2];
        let max = *took.last().unwrap();
        eprintln!(
            "{:<70} {:>6} requests, push p50 {p50:?} max {max:?}",
            row.what(),
            sent.load(Ordering::Relaxed)
        );
        if p50 > PUSH_P50_MOST || max > PUSH_MAX_MOST {
            failures.push(format!(
                "{}: pushes p50 {p50:?} max {max:?} under its flood",
                row.what()
            ));
        }
    }
    eventually("gateway healthy", Duration::from_secs(5), || async {
        reqwest::get(format!("{}/-/healthy", gw.base)).await.ok()
    })
    .await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Push latency under any one route's flood (8 clients looping), in the
/// debug build the tests run: pushes alone take about 1 ms.
const PUSH_P50_MOST: Duration = Duration::from_millis(100);
const PUSH_MAX_MOST: Duration = Duration::from_secs(2);
