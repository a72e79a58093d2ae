//! Rules files and selectors refused with a reason, bounded before
//! they are built.

use super::*;

#[test]
fn invalid_files_name_the_line_and_the_problem() {
    let err = |yaml: &str| {
        parse("r.yml", yaml, |_| Arc::new(RuleStats::default()))
            .unwrap_err()
            .0
    };
    let e = err("rules:\n  - match: 'a'\n  - match: 'b{'\n");
    assert!(
        e.starts_with("rules file r.yml, line 3 (rule 2): `match` \"b{\" is not a series selector"),
        "{e}"
    );
    let e = err("rules:\n  - match: 'a'\n    by: [x]\n    without: [y]\n");
    assert!(e.contains("line 2") && e.contains("not both"), "{e}");
    let e = err("rules:\n  - match: 'a'\n    mode: sometimes\n");
    assert!(
        e.starts_with("rules file r.yml") && e.contains("sometimes"),
        "{e}"
    );
    let e = err("rules:\n  - match: 'a'\n    mode: sum\n    source_labels: [i]\n");
    assert!(e.contains("`total` and `latest` only"), "{e}");
    let e = err("rules:\n  - match: 'a'\n    mode: max\n    combine: sum\n");
    assert!(e.contains("`combine` applies to mode `latest` only"), "{e}");
    let e = err("rules:\n  - match: 'a'\n    mode: latest\n    combine: median\n");
    assert!(e.contains("median"), "{e}");
    let e = err("rules:\n  - match: 'a'\n    ttl: soon\n");
    assert!(e.contains("`ttl` \"soon\""), "{e}");
    let e = err("rules:\n  - match: 'a'\n    colour: red\n");
    assert!(e.contains("colour"), "{e}");
    let e = err("rules:\n  - match: 'rate(a[5m])'\n");
    assert!(e.contains("not a series selector"), "{e}");
    let e = err("rules:\n  - name: x\n    match: 'a'\n  - name: x\n    match: 'b'\n");
    assert!(e.contains("line 4") && e.contains("earlier rule"), "{e}");
    let e = err("rules:\n  - match: 'a'\n    without: [__name__]\n");
    assert!(e.contains("__name__"), "{e}");
    assert!(
        parse("r.yml", "", |_| Arc::new(RuleStats::default()))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn selectors_and_regexes_are_bounded_before_they_are_built() {
    let err = |yaml: &str| {
        parse("r.yml", yaml, |_| Arc::new(RuleStats::default()))
            .unwrap_err()
            .0
    };
    // Within the length limit, still refused before the parser: it
    // recurses per parenthesis and is quadratic in terms.
    for selector in [
        format!("{}x{}", "(".repeat(2000), ")".repeat(2000)),
        format!("x{}", " + x".repeat(1000)),
        "x[5m]".to_string(),
        "sum(x)".to_string(),
        "x{a=\"1\"}{b=\"2\"}".to_string(),
    ] {
        let started = std::time::Instant::now();
        let e = err(&format!("rules:\n  - match: '{selector}'\n"));
        assert!(e.contains("not a series selector"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }
    let e = err(&format!("rules:\n  - match: '{}'\n", "x".repeat(5000)));
    assert!(e.contains("longer than the 4096"), "{e}");
    // Regexes are counted across the file: `\w{200}` compiles to 3.4 MiB
    // of automaton (11 MiB resident), so the third passes 8 MiB.
    let heavy: String = (0..3)
        .map(|i| format!("  - match: 'm{i}{{l=~\"\\\\w{{200}}\"}}'\n"))
        .collect();
    let e = err(&format!("rules:\n{heavy}"));
    assert!(
        e.contains("line 4 (rule 3)") && e.contains("more than 8 MiB"),
        "{e}"
    );
    // What real files hold passes: quoted names, regexes, `offset` named.
    let fine: String = (0..500)
        .map(|i| format!("  - match: '{{__name__=~\"app_{i}_.*\", path!~\"/health|/ready\", \"a.b\"=\"c\"}}'\n"))
        .collect();
    let rules = parse("r.yml", &format!("rules:\n{fine}"), |_| {
        Arc::new(RuleStats::default())
    })
    .unwrap();
    assert_eq!(rules.len(), 500);
    let e = err("rules:\n  - match: 'x offset 5m'\n");
    assert!(e.contains("offset and @"), "{e}");
}
