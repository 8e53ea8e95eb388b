//! SPEX acceptance tests from algorithms.md §9: exact sparse recovery, noise, shapiq's DummyGame.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use spex::sparse::spex::{Decoder, Spex, SpexPlan};
use spex::sparse::synthetic::{random_sparse_fourier, uniform_masks};
use spex::sparse::value::FnValue;
use spex::sparse::{interaction_values, Basis, Index, MaskBatch, Spectrum, Subset};

/// Decodes `truth` sampled on `plan` plus Gaussian noise of s.d. `sigma`.
fn recover(truth: &Spectrum, plan: &SpexPlan, sigma: f64, seed: u64) -> Spectrum {
    let masks = plan.masks().unwrap();
    let mut values = truth.eval(&masks);
    if sigma > 0.0 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
        let noise = Normal::new(0.0, sigma).unwrap();
        values.iter_mut().for_each(|v| *v += noise.sample(&mut rng));
    }
    plan.decode(&values).unwrap()
}

/// Every true coefficient is found within 10%; returns R^2 on 2000 fresh masks.
fn check_recovery(truth: &Spectrum, got: &Spectrum, label: &str) -> f64 {
    for (s, v) in truth.iter() {
        let g = got.get(s);
        assert!(
            (g - v).abs() <= 0.1 * v.abs(),
            "{label}: F({s}) = {v}, got {g}"
        );
    }
    let test = uniform_masks(truth.n_players(), 2000, 99);
    got.r2(&test, &truth.eval(&test))
}

/// (n, K, t, b, samples) rows of algorithms.md §9.3.
const EXACT_CASES: [(usize, usize, usize, usize, usize); 7] = [
    (100, 10, 3, 4, 1056),
    (100, 20, 5, 4, 1968),
    (100, 20, 5, 5, 3936),
    (100, 40, 5, 6, 7872),
    (100, 80, 5, 6, 7872),
    (500, 20, 5, 6, 9792),
    (500, 50, 5, 8, 39168),
];

fn exact_case(row: usize, decoder: Decoder) {
    let (n, k, t, b, samples) = EXACT_CASES[row];
    for seed in [1u64, 2] {
        let plan = SpexPlan::new(n, samples, t, seed)
            .unwrap()
            .with_decoder(decoder);
        assert_eq!((plan.b, plan.t, plan.n_queries()), (b, t, samples));
        let truth = random_sparse_fourier(n, k, t, 1000 + seed);
        let got = recover(&truth, &plan, 0.0, seed);
        let label = format!("n {n} K {k} t {t} b {b} {decoder:?} seed {seed}");
        let r2 = check_recovery(&truth, &got, &label);
        assert!(r2 > 0.99999, "{label}: R^2 = {r2}");
        assert!(got.max_degree() <= t);
        // peeling alone (no least-squares refit) is exact too on noiseless data
        let peeled = recover(&truth, &plan.clone().with_refit(false), 0.0, seed);
        let r2 = check_recovery(&truth, &peeled, &format!("{label} no refit"));
        assert!(r2 > 0.99999, "{label} no refit: R^2 = {r2}");
    }
}

#[test]
fn exact_n100_k10_t3_b4() {
    exact_case(0, Decoder::Soft);
    exact_case(0, Decoder::Hard);
}

#[test]
fn exact_n100_k20_t5_b4() {
    exact_case(1, Decoder::Soft);
    exact_case(1, Decoder::Hard);
}

#[test]
fn exact_n100_k20_t5_b5() {
    exact_case(2, Decoder::Soft);
    exact_case(2, Decoder::Hard);
}

#[test]
fn exact_n100_k40_t5_b6() {
    exact_case(3, Decoder::Soft);
    exact_case(3, Decoder::Hard);
}

#[test]
fn exact_n100_k80_t5_b6() {
    exact_case(4, Decoder::Soft);
    exact_case(4, Decoder::Hard);
}

#[test]
fn exact_n500_k20_t5_b6() {
    exact_case(5, Decoder::Soft);
    exact_case(5, Decoder::Hard);
}

#[test]
fn exact_n500_k50_t5_b8() {
    exact_case(6, Decoder::Soft);
    exact_case(6, Decoder::Hard);
}

/// algorithms.md §9.4: n = 100, K = 10, t = 3, b = 6 (4224 samples), Gaussian noise.
#[test]
fn noisy_recovery() {
    for sigma in [0.1, 0.5, 1.0] {
        for decoder in [Decoder::Soft, Decoder::Hard] {
            let plan = SpexPlan::new(100, 4224, 3, 5)
                .unwrap()
                .with_decoder(decoder);
            assert_eq!((plan.b, plan.n_queries()), (6, 4224));
            let truth = random_sparse_fourier(100, 10, 3, 77);
            let got = recover(&truth, &plan, sigma, 5);
            let label = format!("sigma {sigma} {decoder:?}");
            let r2 = check_recovery(&truth, &got, &label);
            assert!(r2 >= 0.998, "{label}: R^2 = {r2}");
            let spurious = got.iter().filter(|(s, _)| truth.get(s) == 0.0).count();
            assert!(spurious <= 6, "{label}: {spurious} spurious terms");
        }
    }
}

/// shapiq's DummyGame `f(x) = |x|/n + prod_{i in I} x_i` over `n = 20` players.
fn dummy_game(interaction: &[u32]) -> impl FnMut(&MaskBatch) -> Vec<f64> + '_ {
    move |masks: &MaskBatch| {
        let set = Subset::from_indices(interaction.iter().copied());
        (0..masks.len())
            .map(|r| {
                let all = masks.contains_all(r, &set) as u8 as f64;
                masks.count_kept(r) as f64 / masks.n_players() as f64 + all
            })
            .collect()
    }
}

/// The exact Fourier spectrum of the DummyGame by a full transform over all 2^20 masks.
fn dummy_spectrum_brute_force(interaction: &[u32]) -> Spectrum {
    let n = 20usize;
    let mut table: Vec<f64> = (0u32..1 << n)
        .map(|x| {
            let all = interaction.iter().all(|&i| x >> i & 1 == 1) as u8 as f64;
            x.count_ones() as f64 / n as f64 + all
        })
        .collect();
    let mut h = 1;
    while h < table.len() {
        for block in table.chunks_exact_mut(2 * h) {
            let (lo, hi) = block.split_at_mut(h);
            for (a, b) in lo.iter_mut().zip(hi.iter_mut()) {
                (*a, *b) = (*a + *b, *a - *b);
            }
        }
        h *= 2;
    }
    let scale = 1.0 / (1u64 << n) as f64;
    Spectrum::from_terms(
        n,
        Basis::Fourier,
        table
            .iter()
            .enumerate()
            .filter(|(_, v)| v.abs() * scale > 1e-12)
            .map(|(k, v)| {
                (
                    Subset::from_indices((0..n as u32).filter(|i| k >> i & 1 == 1)),
                    v * scale,
                )
            }),
    )
}

/// Decodes the DummyGame, checks it against the exact spectrum, and returns what was decoded.
fn dummy_case(interaction: &[u32], budget: usize, decoder: Decoder) -> Spectrum {
    let truth = dummy_spectrum_brute_force(interaction);
    let spex = Spex::new(20).budget(budget).seed(3).decoder(decoder);
    assert!(spex.plan().unwrap().n_queries() <= budget);
    let mut calls = 0usize;
    let mut game = dummy_game(interaction);
    let mut f = FnValue::new(20, |m: &MaskBatch| {
        calls += m.len();
        game(m)
    });
    let got = spex.explain(&mut f).unwrap();
    assert!(calls <= budget, "{calls} evaluations for budget {budget}");
    for (s, v) in truth.iter() {
        assert!(
            (got.get(s) - v).abs() < 1e-9,
            "F({s}) = {v}, got {}",
            got.get(s)
        );
    }
    for (s, v) in got.iter() {
        assert!(
            truth.get(s) != 0.0 || v.abs() < 1e-9,
            "spurious F({s}) = {v}"
        );
    }
    got
}

/// The DummyGame's exact Moebius spectrum: `1/n` on every singleton, 1 on the interaction.
fn dummy_moebius(interaction: &[u32]) -> Spectrum {
    let n = 20;
    let mut m = Spectrum::new(n, Basis::Moebius);
    for i in 0..n as u32 {
        m.add(Subset::singleton(i), 1.0 / n as f64);
    }
    m.add(Subset::from_indices(interaction.iter().copied()), 1.0);
    m
}

#[test]
fn dummy_game_pair_indices_match_shapiq_expectations() {
    let got = dummy_case(&[1, 2], 1600, Decoder::Soft);
    let pair = Subset::from_indices([1, 2]);
    for index in [Index::Stii, Index::Fsii] {
        let iv = interaction_values(&got, index, 2).unwrap();
        assert!(
            (iv.get(&pair) - 1.0).abs() < 1e-2,
            "{index} on I: {}",
            iv.get(&pair)
        );
        for i in 0..20u32 {
            let v = iv.get(&Subset::singleton(i));
            assert!((v - 0.05).abs() < 1e-2, "{index} on {{{i}}}: {v}");
        }
        for (s, v) in &iv.values {
            if s.len() == 2 && *s != pair {
                assert!(v.abs() < 1e-2, "{index} on {s}: {v}");
            }
        }
    }
    // max_order = 1: the players of I get 1/n + 1/|I|, the others 1/n.
    let sv = interaction_values(&got, Index::Sv, 1).unwrap();
    for i in 0..20u32 {
        let want = if i == 1 || i == 2 { 0.05 + 0.5 } else { 0.05 };
        let v = sv.get(&Subset::singleton(i));
        assert!((v - want).abs() < 1e-2, "SV {i}: {v}, want {want}");
    }
}

#[test]
fn dummy_game_quad_fbii_equals_the_exact_index() {
    let interaction = [1, 2, 4, 5];
    let got = dummy_case(&interaction, 6400, Decoder::Hard);
    let exact = interaction_values(&dummy_moebius(&interaction), Index::Fbii, 2).unwrap();
    let decoded = interaction_values(&got, Index::Fbii, 2).unwrap();
    for (s, v) in &exact.values {
        assert!(
            (decoded.get(s) - v).abs() < 1e-6,
            "FBII {s}: {} vs {v}",
            decoded.get(s)
        );
    }
    for (s, v) in &decoded.values {
        assert!(
            exact.values.contains_key(s) || v.abs() < 1e-6,
            "spurious FBII {s}: {v}"
        );
    }
}

#[test]
fn explain_rejects_wrong_width_and_missing_budget() {
    let mut f = FnValue::new(8, |m: &MaskBatch| vec![0.0; m.len()]);
    assert!(Spex::new(9).budget(5000).explain(&mut f).is_err());
    assert!(Spex::new(8).explain(&mut f).is_err());
}

#[test]
fn decode_rejects_wrong_length_and_non_finite_values() {
    let plan = SpexPlan::new(30, 2000, 3, 0).unwrap();
    let mut values = vec![0.5; plan.n_queries()];
    assert!(matches!(
        plan.decode(&values[1..]),
        Err(spex::sparse::Error::ValuesMismatch(_))
    ));
    values[17] = f64::NAN;
    let err = plan.decode(&values).unwrap_err();
    assert!(
        matches!(err, spex::sparse::Error::NonFiniteValues { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("17"));
}

#[test]
fn constant_and_zero_functions() {
    let plan = SpexPlan::new(30, 2000, 3, 0).unwrap();
    let zero = plan.decode(&vec![0.0; plan.n_queries()]).unwrap();
    assert!(zero.is_empty());
    let c = plan.decode(&vec![2.5; plan.n_queries()]).unwrap();
    assert_eq!(c.len(), 1);
    assert!((c.get(&Subset::empty()) - 2.5).abs() < 1e-12);
}
