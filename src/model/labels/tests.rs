use super::*;

fn key(rules: &LabelRules, labels: &[(&str, &str)]) -> Result<Vec<u8>, String> {
    let mut l = labels.to_vec();
    let mut out = Vec::new();
    rules
        .write_key(crate::model::Kind::Gauge, &mut l, &mut out)
        .map(|_| out)
}

fn decoded(k: &[u8]) -> Vec<(String, String)> {
    pairs(k)
        .map(|(n, v)| {
            (
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.into_owned()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn keys_sort_labels_and_apply_path_labels() {
    let rules = LabelRules::new(
        vec![("job".into(), "j".into())],
        &["instance".into()],
        Default::default(),
    )
    .unwrap();
    let k = key(
        &rules,
        &[("z", "1"), ("job", "body"), ("instance", "x"), ("a", "2")],
    )
    .unwrap();
    assert_eq!(
        decoded(&k),
        vec![
            ("a".to_string(), "2".to_string()),
            ("job".into(), "j".into()),
            ("z".into(), "1".into())
        ]
    );
}

#[test]
fn empty_values_are_no_label_and_nul_round_trips() {
    let rules = LabelRules::default();
    assert_eq!(key(&rules, &[("a", "")]).unwrap(), Vec::<u8>::new());
    let k = key(&rules, &[("a", "x\0y"), ("b", "\0")]).unwrap();
    assert_eq!(
        decoded(&k),
        vec![("a".into(), "x\0y".into()), ("b".into(), "\0".into())]
    );
}

#[test]
fn key_order_is_label_order() {
    let rules = LabelRules::default();
    let mut keys = [
        key(&rules, &[("a", "1"), ("b", "2")]).unwrap(),
        key(&rules, &[("a", "1")]).unwrap(),
        key(&rules, &[("ab", "0")]).unwrap(),
        key(&rules, &[("a", "10")]).unwrap(),
    ];
    keys.sort();
    let got: Vec<_> = keys.iter().map(|k| decoded(k)).collect();
    assert_eq!(got[0], vec![("a".to_string(), "1".to_string())]);
    assert_eq!(got[1].len(), 2);
    assert_eq!(got[2], vec![("a".to_string(), "10".to_string())]);
    assert_eq!(got[3], vec![("ab".to_string(), "0".to_string())]);
}

#[test]
fn bad_labels_are_refused() {
    let rules = LabelRules::default();
    assert!(
        key(&rules, &[("a", "1"), ("a", "2")])
            .unwrap_err()
            .contains("twice")
    );
    assert!(key(&rules, &[("1a", "1")]).unwrap_err().contains("invalid"));
    assert!(
        LabelRules::new(
            vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            &[],
            Default::default()
        )
        .is_err()
    );
}

#[test]
fn contains_all_matches_pairs() {
    let rules = LabelRules::default();
    let k = key(&rules, &[("job", "a"), ("x", "1")]).unwrap();
    assert!(contains_all(&k, &[("job".into(), "a".into())]));
    assert!(!contains_all(&k, &[("job".into(), "b".into())]));
    assert!(!contains_all(&k, &[("y".into(), "1".into())]));
}

#[test]
fn limits_are_enforced() {
    let limits = crate::model::Limits {
        max_labels: 2,
        max_name_length: 4,
        max_label_value_length: 3,
        max_series_per_push: 10,
        max_label_bytes: 12,
        ..Default::default()
    };
    let rules = LabelRules::new(vec![], &[], limits).unwrap();
    assert!(key(&rules, &[("a", "1"), ("b", "2")]).is_ok());
    assert!(
        key(&rules, &[("a", "1"), ("b", "2"), ("c", "3")])
            .unwrap_err()
            .contains("3 labels")
    );
    assert!(
        key(&rules, &[("abcde", "1")])
            .unwrap_err()
            .contains("over the limit of 4")
    );
    assert!(
        key(&rules, &[("a", "1234")])
            .unwrap_err()
            .contains("4-byte value")
    );
    assert!(LabelRules::new(vec![("job".into(), "long".into())], &[], limits).is_err());
    // Path labels count toward the number and the bytes as body labels do.
    let path = LabelRules::new(vec![("job".into(), "x".into())], &[], limits).unwrap();
    assert!(key(&path, &[("a", "1")]).is_ok());
    assert!(
        key(&path, &[("a", "1"), ("b", "2")])
            .unwrap_err()
            .contains("3 labels with the path's")
    );
    assert!(
        key(&rules, &[("abcd", "123"), ("b", "2")])
            .unwrap_err()
            .contains("--max-label-bytes")
    );
    let three = vec![
        ("a".into(), "1".into()),
        ("b".into(), "2".into()),
        ("c".into(), "3".into()),
    ];
    assert!(LabelRules::new(three, &[], limits).is_err());
}

#[test]
fn raw_values_are_found_by_name() {
    let rules = LabelRules::default();
    let mut key = Vec::new();
    rules
        .write_key(
            crate::model::Kind::Counter,
            &mut [("b", "x\0y"), ("a", "1"), ("d", "")],
            &mut key,
        )
        .unwrap();
    assert_eq!(raw_value(&key, b"a"), Some(&b"1"[..]));
    assert_eq!(&*unescape(raw_value(&key, b"b").unwrap()), b"x\0y");
    assert_eq!(raw_value(&key, b"c"), None);
    assert_eq!(raw_value(&key, b"d"), None);
    assert_eq!(raw_value(&key, b"z"), None);
    assert_eq!(raw_value(b"", b"a"), None);
}
