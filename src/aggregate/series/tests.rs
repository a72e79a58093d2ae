use std::collections::BTreeMap;

use super::*;
use crate::model::Value;

fn series(v: f64) -> StoredSeries {
    StoredSeries::new(Value::Scalar(v), None, 0)
}

/// Keys and values, in key order.
type Contents = Vec<(Vec<u8>, f64)>;

fn contents(view: &SeriesView) -> Contents {
    let mut view = view.clone();
    view.complete_order();
    view.iter()
        .map(|(k, s)| match s.value {
            Value::Scalar(v) => (k.to_vec(), v),
            _ => unreachable!(),
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    /// Insert if absent, else add to it.
    Push(u16, f64),
    /// Drop keys divisible by this.
    Drop(u16),
    /// Take a view, complete its order and hand it back.
    Scrape,
    /// Take a view and complete its order, handed back later.
    OrderAhead,
    /// Hand back the order of the view taken by the last `OrderAhead`.
    AdoptLate,
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        8 => (0u16..3000, 1.0f64..10.0).prop_map(|(k, v)| Op::Push(k, v)),
        1 => (2u16..9).prop_map(Op::Drop),
        2 => Just(Op::Scrape),
        1 => Just(Op::OrderAhead),
        1 => Just(Op::AdoptLate),
    ]
}

fn key(k: u16) -> Vec<u8> {
    // Keys of different lengths, not inserted in key order.
    format!("k{}", k.wrapping_mul(7919) % 3000)
        .repeat(1 + k as usize % 3)
        .into_bytes()
}

/// Series that come and go for a family's whole life leave no trail of
/// empty pages: positions stay in range, lookups and order right.
#[test]
fn churn_keeps_pages_in_proportion() {
    let mut table = SeriesTable::default();
    for round in 0..50u64 {
        for i in 0..2048 {
            table.insert(format!("{round:02}-{i}").as_bytes(), series(1.0), 2 * round);
        }
        table.retain(|k, _| k.ends_with(b"-7"), |_, _| {}, 2 * round + 1);
        assert!(table.pages.len() <= 2, "{} pages", table.pages.len());
    }
    assert_eq!(table.len(), 50);
    for round in 0..50 {
        assert!(table.get(format!("{round:02}-7").as_bytes()).is_some());
    }
    let keys: Vec<Vec<u8>> = contents(&table.view())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(keys.len(), 50);
}

proptest::proptest! {
    /// The table agrees with a sorted map after any sequence of pushes,
    /// drops and scrapes (over several pages), and every view taken
    /// stays what it was when taken, whatever happens after.
    #[test]
    fn table_matches_a_sorted_map(ops in proptest::collection::vec(op(), 1..400)) {
        let mut table = SeriesTable::default();
        let mut model: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
        let mut views: Vec<(SeriesView, Contents)> = Vec::new();
        let mut ahead: Option<SeriesView> = None;
        let mut layout = 0;
        for op in ops {
            layout += 1;
            match op {
                Op::Push(k, v) => {
                    let key = key(k);
                    for i in 0..(if k % 5 == 0 { 400 } else { 1 }) {
                        let key = [key.clone(), i.to_string().into_bytes()].concat();
                        match table.get_mut(&key) {
                            Some(s) => {
                                if let Value::Scalar(x) = &mut s.value {
                                    *x += v;
                                }
                            }
                            None => table.insert(&key, series(v), layout),
                        }
                        *model.entry(key).or_insert(0.0) += v;
                    }
                }
                Op::Drop(d) => {
                    let keep = |k: &[u8]| !k.len().is_multiple_of(d as usize);
                    let mut gone = 0;
                    let n = table.retain(|k, _| keep(k), |_, _| gone += 1, layout);
                    proptest::prop_assert_eq!(n, gone);
                    model.retain(|k, _| keep(k));
                }
                Op::Scrape => {
                    let mut view = table.view();
                    view.complete_order();
                    table.adopt_order(&view);
                    let expected: Vec<(Vec<u8>, f64)> =
                        model.iter().map(|(k, v)| (k.clone(), *v)).collect();
                    views.push((view, expected));
                }
                Op::OrderAhead => {
                    let mut view = table.view();
                    view.complete_order();
                    ahead = Some(view);
                }
                Op::AdoptLate => {
                    if let Some(view) = &ahead {
                        table.adopt_order(view);
                    }
                }
            }
            proptest::prop_assert_eq!(table.len(), model.len());
        }
        let now: Vec<(Vec<u8>, f64)> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
        proptest::prop_assert_eq!(contents(&table.view()), now);
        for (k, v) in &model {
            proptest::prop_assert_eq!(&table.get(k).unwrap().value, &Value::Scalar(*v));
        }
        for (view, expected) in &views {
            proptest::prop_assert_eq!(&contents(view), expected);
        }
    }
}
