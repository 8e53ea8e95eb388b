//! Speed of the spectrum conversions and interaction indices on decoder-sized spectra:
//! `terms` random Fourier coefficients of degree 1..=8 over n = 200 players.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spex::sparse::{interaction_values, Basis, Index, Spectrum, Subset};

/// `terms` coefficients U[-1, 1] on random sets of size 1..=`degree` over `n` players.
fn random_fourier(n: u32, terms: usize, degree: usize, seed: u64) -> Spectrum {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let sets = (0..terms).map(|_| {
        let size = rng.random_range(1..=degree);
        let mut idx = Vec::with_capacity(size);
        while idx.len() < size {
            let i = rng.random_range(0..n);
            if !idx.contains(&i) {
                idx.push(i);
            }
        }
        (Subset::from_indices(idx), rng.random_range(-1.0..1.0))
    });
    Spectrum::from_terms(n as usize, Basis::Fourier, sets.collect::<Vec<_>>())
}

/// Number of subset contributions a conversion of `f` makes: `sum_S 2^{|S|}`.
fn contributions(f: &Spectrum) -> u64 {
    f.iter().map(|(s, _)| 1u64 << s.len()).sum()
}

fn conversions(c: &mut Criterion) {
    let mut group = c.benchmark_group("convert");
    group.sample_size(10);
    for terms in [1000, 4000] {
        let fourier = random_fourier(200, terms, 8, 1);
        let moebius = fourier.to_moebius();
        group.throughput(Throughput::Elements(contributions(&fourier)));
        group.bench_with_input(BenchmarkId::new("to_moebius", terms), &fourier, |b, f| {
            b.iter(|| f.to_moebius())
        });
        group.throughput(Throughput::Elements(contributions(&moebius)));
        group.bench_with_input(BenchmarkId::new("to_fourier", terms), &moebius, |b, m| {
            b.iter(|| m.to_fourier())
        });
    }
    group.finish();
}

fn indices(c: &mut Criterion) {
    let mut group = c.benchmark_group("index");
    group.sample_size(10);
    let fourier = random_fourier(200, 1000, 8, 2);
    for index in [Index::KSii, Index::Fsii, Index::Fbii, Index::Sv] {
        group.bench_function(BenchmarkId::new(index.name(), "1000 terms, order 3"), |b| {
            b.iter(|| interaction_values(&fourier, index, 3).expect("valid order"))
        });
    }
    group.finish();
}

criterion_group!(benches, conversions, indices);
criterion_main!(benches);
