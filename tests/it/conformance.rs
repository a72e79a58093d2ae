//! Every case of `tests/conformance` (docs/contract.md §5) against a fresh
//! server.

use std::fs;

use crate::support::{Gateway, assert_text_eq, conformance_dir};

#[tokio::test]
async fn all_conformance_cases() {
    let mut cases: Vec<_> = fs::read_dir(conformance_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 10,
        "expected at least 10 cases, found {}",
        cases.len()
    );
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let gw = Gateway::start().await;
        let mut pushes: Vec<_> = fs::read_dir(&case)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let f = p.file_name().unwrap().to_string_lossy();
                f.starts_with("push-") && f.ends_with(".txt")
            })
            .collect();
        pushes.sort();
        assert!(!pushes.is_empty(), "{name}: no pushes");
        let expected_status = fs::read_to_string(case.join("expected-status")).ok();
        let mut last = None;
        let mut before_last = String::new();
        for (i, p) in pushes.iter().enumerate() {
            let body = fs::read_to_string(p).unwrap();
            let path = fs::read_to_string(p.with_extension("path"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "/metrics/".into());
            before_last = gw.scrape().await;
            let r = gw.push(&path, &body).await;
            if i + 1 < pushes.len() || expected_status.is_none() {
                assert_eq!(
                    r.status,
                    200,
                    "{name}: {} failed: {}",
                    p.display(),
                    r.text()
                );
            }
            last = Some(r);
        }
        let last = last.unwrap();
        match expected_status {
            Some(status) => {
                assert_eq!(
                    last.status.to_string(),
                    status.trim(),
                    "{name}: {}",
                    last.text()
                );
                let reason = last.text();
                assert!(
                    reason.trim().lines().count() == 1 && !reason.trim().is_empty(),
                    "{name}: reason must be one line: {reason:?}"
                );
                assert_text_eq(
                    &gw.scrape().await,
                    &before_last,
                    &format!("{name}: scrape after refused push"),
                );
            }
            None => {
                let expected = fs::read_to_string(case.join("expected.txt")).unwrap();
                assert_text_eq(&gw.scrape().await, &expected, &name);
            }
        }
    }
}
