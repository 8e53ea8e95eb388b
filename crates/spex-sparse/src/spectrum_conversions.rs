//! Basis conversions of [`Spectrum`] checked against brute force over every mask (test only).

use crate::brute::{all_masks, random_spectrum};
use crate::{Basis, Spectrum, Subset};

/// Asserts two value vectors agree to `tol` (absolute).
fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "entry {i}: {g} vs {w}");
    }
}

#[test]
fn conversions_preserve_the_function_on_every_mask() {
    for (seed, n) in [(1, 3), (2, 6), (3, 8)] {
        let masks = all_masks(n);
        for basis in [Basis::Fourier, Basis::Moebius] {
            let f = random_spectrum(n, basis, 12, n.min(5), seed);
            let truth = f.eval(&masks);
            let (moebius, fourier) = (f.to_moebius(), f.to_fourier());
            assert_eq!(moebius.basis(), Basis::Moebius);
            assert_eq!(fourier.basis(), Basis::Fourier);
            assert_close(&moebius.eval(&masks), &truth, 1e-12);
            assert_close(&fourier.eval(&masks), &truth, 1e-12);
            assert_eq!(moebius.max_degree(), f.max_degree());
            assert_eq!(fourier.max_degree(), f.max_degree());
        }
    }
}

#[test]
fn round_trip_returns_the_same_terms() {
    for basis in [Basis::Fourier, Basis::Moebius] {
        let f = random_spectrum(10, basis, 40, 6, 7);
        let other = if basis == Basis::Fourier {
            Basis::Moebius
        } else {
            Basis::Fourier
        };
        let back = f.in_basis(other).in_basis(basis);
        assert_eq!(back.len(), f.len(), "no noise terms survive");
        for (s, v) in f.iter() {
            assert!(
                (back.get(s) - v).abs() < 1e-12,
                "{s}: {} vs {v}",
                back.get(s)
            );
        }
    }
}

#[test]
fn conversion_by_hand_and_exact_cancellation() {
    // x0 x1 = (1 - c0 - c1 + c0 c1) / 4 with c_i = (-1)^{x_i}.
    let pair = Subset::from_indices([0, 1]);
    let moebius = Spectrum::from_terms(3, Basis::Moebius, [(pair.clone(), 1.0)]);
    let fourier = moebius.to_fourier();
    let want = [
        (Subset::empty(), 0.25),
        (Subset::singleton(0), -0.25),
        (Subset::singleton(1), -0.25),
        (pair.clone(), 0.25),
    ];
    assert_eq!(
        fourier
            .iter()
            .map(|(s, v)| (s.clone(), v))
            .collect::<Vec<_>>(),
        want
    );
    // Back in Moebius the lower-order terms cancel and must not linger as zeros.
    assert_eq!(
        fourier.to_moebius().iter().collect::<Vec<_>>(),
        vec![(&pair, 1.0)]
    );
}

#[test]
fn same_basis_is_identity() {
    let f = random_spectrum(5, Basis::Fourier, 8, 3, 4);
    assert_eq!(f.to_fourier(), f);
    assert_eq!(f.in_basis(Basis::Fourier), f);
}

#[test]
fn conversion_is_bit_identical_across_thread_counts() {
    let f = random_spectrum(40, Basis::Fourier, 300, 8, 11);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool")
            .install(|| f.to_moebius())
    };
    let (one, three) = (run(1), run(3));
    let bits = |s: &Spectrum| -> Vec<(Subset, u64)> {
        s.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect()
    };
    assert_eq!(bits(&one), bits(&three));
}
