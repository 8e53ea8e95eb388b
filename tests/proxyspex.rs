//! ProxySPEX end to end on synthetic functions with known spectra.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spex::sparse::proxy::sampling::distinct_uniform_masks;
use spex::sparse::proxy::{ProxyGrid, ProxyPlan, ProxySpex};
use spex::sparse::value::FnValue;
use spex::sparse::Error;
use spex::sparse::{Basis, MaskBatch, Spectrum, Subset};

/// Moebius coefficients `a(T) = (-2)^{|T|} sum_{S ⊇ T} F(S)` of a Fourier spectrum (brute force).
fn moebius_of(f: &Spectrum, t: &Subset) -> f64 {
    let sum: f64 = f
        .iter()
        .filter(|(s, _)| t.is_subset_of(s))
        .map(|(_, v)| v)
        .sum();
    (-2f64).powi(t.len() as i32) * sum
}

fn set(ix: &[u32]) -> Subset {
    Subset::from_indices(ix.iter().copied())
}

/// A hierarchical Moebius game: `mains` main effects, 8 triples with all their pairs, `pairs` pairs.
fn hierarchical_game(n: usize, mains: usize, pairs: usize, seed: u64) -> Spectrum {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut players: Vec<u32> = Vec::new();
    while players.len() < mains {
        let p = rng.random_range(0..n as u32);
        if !players.contains(&p) {
            players.push(p);
        }
    }
    let amp = |rng: &mut ChaCha8Rng| {
        let a = rng.random_range(0.5..1.5);
        if rng.random_bool(0.5) {
            a
        } else {
            -a
        }
    };
    let mut terms: Vec<Subset> = players.iter().map(|&p| Subset::singleton(p)).collect();
    let pick = |rng: &mut ChaCha8Rng, k: usize| loop {
        let s = Subset::from_indices((0..k).map(|_| players[rng.random_range(0..players.len())]));
        if s.len() == k {
            return s;
        }
    };
    let mut triples = Vec::new();
    while triples.len() < 8 {
        let t = pick(&mut rng, 3);
        if !triples.contains(&t) {
            triples.push(t);
        }
    }
    let mut pair_set: Vec<Subset> = Vec::new();
    for t in &triples {
        for p in t.subsets().filter(|s| s.len() == 2) {
            if !pair_set.contains(&p) {
                pair_set.push(p);
            }
        }
    }
    while pair_set.len() < pairs {
        let p = pick(&mut rng, 2);
        if !pair_set.contains(&p) {
            pair_set.push(p);
        }
    }
    terms.extend(pair_set);
    terms.extend(triples);
    let coefs: Vec<(Subset, f64)> = terms.into_iter().map(|t| (t, amp(&mut rng))).collect();
    Spectrum::from_terms(n, Basis::Moebius, coefs)
}

fn fresh_masks(n: usize, m: usize, seed: u64) -> MaskBatch {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut masks = MaskBatch::new(n);
    for _ in 0..m {
        let row: Vec<bool> = (0..n).map(|_| rng.random_bool(0.5)).collect();
        masks.push_bools(&row);
    }
    masks
}

#[test]
fn reference_test_game_recovers_its_three_terms() {
    // shapiq's ProxySPEX test: f = number of satisfied terms among {∅, {1}, {1, 2}}.
    for (n, budget) in [(10, 1000), (7, 800)] {
        let mut game = FnValue::new(n, |m: &MaskBatch| {
            (0..m.len())
                .map(|r| 1.0 + f64::from(m.get(r, 1)) + f64::from(m.get(r, 1) && m.get(r, 2)))
                .collect()
        });
        let f = ProxySpex::new(n)
            .budget(budget)
            .seed(3)
            .explain(&mut game)
            .unwrap();
        for t in [set(&[]), set(&[1]), set(&[1, 2])] {
            let a = moebius_of(&f, &t);
            assert!((a - 1.0).abs() < 0.05, "n = {n}: a({t}) = {a}");
        }
        for t in [set(&[2]), set(&[0]), set(&[0, 1]), set(&[3, 4])] {
            assert!(
                moebius_of(&f, &t).abs() < 0.05,
                "n = {n}: a({t}) should vanish"
            );
        }
    }
}

#[test]
fn hierarchical_function_n128_budget2000_is_recovered() {
    let n = 128;
    let truth = hierarchical_game(n, 40, 25, 17);
    let mut game = FnValue::new(n, |m: &MaskBatch| truth.eval(m));
    let mut plan = ProxyPlan::new(n, 2000, 5).unwrap();
    // A cheaper grid than the reference's keeps this test at a few seconds.
    plan.grid = ProxyGrid {
        max_depth: vec![3, 5],
        n_trees: vec![1000],
        learning_rate: vec![0.1],
        ..ProxyGrid::default()
    };
    let masks = plan.masks().unwrap();
    let values = spex::sparse::ValueFunction::values(&mut game, &masks).unwrap();
    let f = plan.decode_masks(&masks, &values).unwrap();
    let test = fresh_masks(n, 1000, 99);
    let r2 = f.r2(&test, &truth.eval(&test));
    assert!(r2 >= 0.95, "R^2 on fresh masks = {r2}");
}

#[test]
fn constant_values_give_the_constant() {
    let plan = ProxyPlan::new(30, 200, 1).unwrap();
    let f = plan.decode(&vec![-2.5; 200]).unwrap();
    assert_eq!(f.len(), 1);
    assert!((f.get(&Subset::empty()) + 2.5).abs() < 1e-9);
}

#[test]
fn fewer_coefficients_than_players_are_refitted_exactly() {
    // f = 3 x_5 - 1: two Fourier terms (∅ and {5}) over 50 players.
    let n = 50;
    let plan = ProxyPlan::new(n, 300, 2).unwrap();
    let masks = plan.masks().unwrap();
    let values: Vec<f64> = (0..masks.len())
        .map(|r| 3.0 * f64::from(masks.get(r, 5)) - 1.0)
        .collect();
    let f = plan.decode(&values).unwrap();
    assert_eq!(f.len(), 2, "{f:?}");
    assert!((f.get(&Subset::empty()) - 0.5).abs() < 1e-3);
    assert!((f.get(&Subset::singleton(5)) + 1.5).abs() < 1e-3);
}

#[test]
fn same_seed_same_spectrum() {
    let n = 40;
    let truth = hierarchical_game(n, 10, 6, 3);
    let run = || {
        let mut g = FnValue::new(n, |m: &MaskBatch| truth.eval(m));
        ProxySpex::new(n)
            .budget(300)
            .seed(9)
            .explain(&mut g)
            .unwrap()
    };
    assert_eq!(run(), run());
}

#[test]
fn plan_round_trips_through_json() {
    let plan = ProxyPlan::new(12, 500, 4).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    spex::io::write_json(&path, &plan).unwrap();
    let back: ProxyPlan = spex::io::read_json(&path).unwrap();
    assert_eq!(back, plan);
    assert_eq!(back.masks().unwrap(), plan.masks().unwrap());
    assert_eq!(plan.masks().unwrap().len(), plan.n_queries());
}

#[test]
fn bad_inputs_are_named() {
    assert!(matches!(
        ProxyPlan::new(0, 500, 0),
        Err(Error::InvalidArgument { .. })
    ));
    match ProxyPlan::new(10, 50, 0) {
        Err(Error::BudgetTooSmall {
            minimum, budget, ..
        }) => assert_eq!((minimum, budget), (100, 50)),
        other => panic!("expected BudgetTooSmall, got {other:?}"),
    }
    assert_eq!(ProxyPlan::new(5, 1000, 0).unwrap().n_queries(), 32);
    let plan = ProxyPlan::new(10, 200, 0).unwrap();
    assert!(matches!(
        plan.decode(&[1.0; 199]),
        Err(Error::ValuesMismatch(_))
    ));
    let mut v = vec![1.0; 200];
    v[7] = f64::NAN;
    assert!(matches!(
        plan.decode(&v),
        Err(Error::NonFiniteValues { .. })
    ));
    let other = distinct_uniform_masks(11, 200, 0);
    assert!(matches!(
        plan.decode_masks(&other, &[0.0; 200]),
        Err(Error::ValuesMismatch(_))
    ));
    let mut broken = plan.clone();
    broken.grid.n_trees.clear();
    assert!(matches!(
        broken.decode(&[0.0; 200]),
        Err(Error::InvalidArgument { .. })
    ));
    let mut wrong_n = FnValue::new(9, |m: &MaskBatch| vec![0.0; m.len()]);
    assert!(ProxySpex::new(10).explain(&mut wrong_n).is_err());
}
