//! Faithfulness (R^2 on 1000 fresh uniform masks) against the number of queries, per decoder,
//! on a hierarchical Moebius function (40 main effects, 25 pairs, 8 triples) of n players.
//!
//! Usage: `cargo bench --bench faithfulness_curve -- [proxyspex] [spex]` (default: both).
//! `SPEX_N=N` sets the number of players (default 128). `SPEX_NOISE=SIGMA` adds seeded Gaussian
//! noise of that standard deviation to every query; R² is always measured against the noiseless
//! function. Each decoder gets the same value function and its own grid of budgets; SPEX (degree
//! 3, soft decoding, refit) reports budgets below its smallest design as too small. The last table
//! gives, per R² target, the fewest queries each decoder needed to reach it and their ratio.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use spex::sparse::proxy::ProxySpex;
use spex::sparse::spex::Spex;
use spex::sparse::value::FnValue;
use spex::sparse::{Basis, MaskBatch, Spectrum, Subset, ValueFunction};

type Decoder = fn(usize, usize, u64, &mut dyn ValueFunction) -> spex::sparse::Result<Spectrum>;

/// Adapts `&mut dyn ValueFunction` to the builders' `impl ValueFunction`.
struct Dyn<'a>(&'a mut dyn ValueFunction);

impl ValueFunction for Dyn<'_> {
    fn n_players(&self) -> usize {
        self.0.n_players()
    }
    fn values(&mut self, masks: &MaskBatch) -> spex::sparse::Result<Vec<f64>> {
        self.0.values(masks)
    }
}

fn proxyspex(
    n: usize,
    budget: usize,
    seed: u64,
    f: &mut dyn ValueFunction,
) -> spex::sparse::Result<Spectrum> {
    ProxySpex::new(n)
        .budget(budget)
        .seed(seed)
        .explain(&mut Dyn(f))
}

fn spex_decoder(
    n: usize,
    budget: usize,
    seed: u64,
    f: &mut dyn ValueFunction,
) -> spex::sparse::Result<Spectrum> {
    Spex::new(n)
        .degree(3)
        .budget(budget)
        .seed(seed)
        .explain(&mut Dyn(f))
}

/// The decoder called `name` and the budgets it is run at.
fn decoder(name: &str) -> Option<(Decoder, &'static [usize])> {
    match name {
        "proxyspex" => Some((proxyspex as Decoder, &[250, 500, 1000, 2000, 5000, 10000])),
        "spex" => Some((
            spex_decoder as Decoder,
            &[1000, 2000, 3000, 5000, 7500, 10000, 20000, 50000, 100000],
        )),
        _ => None,
    }
}

/// 40 main effects on random players, 8 random triples of them with all their pairs, 25 pairs.
fn hierarchical(n: usize, seed: u64) -> Spectrum {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut players: Vec<u32> = Vec::new();
    while players.len() < 40.min(n) {
        let p = rng.random_range(0..n as u32);
        if !players.contains(&p) {
            players.push(p);
        }
    }
    let mut sets: Vec<Subset> = players.iter().map(|&p| Subset::singleton(p)).collect();
    let draw = |k: usize, rng: &mut ChaCha8Rng| loop {
        let s = Subset::from_indices((0..k).map(|_| players[rng.random_range(0..players.len())]));
        if s.len() == k {
            return s;
        }
    };
    let mut higher: Vec<Subset> = Vec::new();
    while higher.len() < 8 {
        let t = draw(3, &mut rng);
        if !higher.contains(&t) {
            higher.push(t);
        }
    }
    for t in higher.clone() {
        for p in t.subsets().filter(|s| s.len() == 2) {
            if !higher.contains(&p) {
                higher.push(p);
            }
        }
    }
    while higher.len() < 8 + 25 {
        let p = draw(2, &mut rng);
        if !higher.contains(&p) {
            higher.push(p);
        }
    }
    sets.extend(higher);
    let terms: Vec<(Subset, f64)> = sets
        .into_iter()
        .map(|s| {
            let a = rng.random_range(0.5..1.5);
            (s, if rng.random_bool(0.5) { a } else { -a })
        })
        .collect();
    Spectrum::from_terms(n, Basis::Moebius, terms)
}

/// The environment variable `name` parsed as a number, or `default` when it is unset.
fn env_number<T: std::str::FromStr>(name: &str, default: T) -> spex::sparse::Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| spex::sparse::Error::invalid(name, format!("`{v}` is not a number"))),
        Err(_) => Ok(default),
    }
}

/// Per R² target: the fewest queries with which each decoder reached it, and SPEX's over ProxySPEX's.
fn print_queries_to_reach(results: &[(String, usize, f64)]) {
    let fewest = |name: &str, target: f64| {
        results
            .iter()
            .filter(|(d, _, r2)| d == name && *r2 >= target)
            .map(|&(_, q, _)| q)
            .min()
    };
    println!();
    println!("| R² target | ProxySPEX queries | SPEX queries | SPEX / ProxySPEX |");
    println!("|---|---|---|---|");
    for target in [0.8, 0.9, 0.95, 0.97] {
        let (p, s) = (fewest("proxyspex", target), fewest("spex", target));
        let show = |q: Option<usize>| q.map_or("not reached".to_string(), |q| q.to_string());
        let ratio = match (p, s) {
            (Some(p), Some(s)) => format!("{:.1}x", s as f64 / p as f64),
            _ => "-".to_string(),
        };
        println!("| {target} | {} | {} | {ratio} |", show(p), show(s));
    }
}

fn main() -> spex::sparse::Result<()> {
    let names: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let names = if names.is_empty() {
        vec!["proxyspex".to_string(), "spex".to_string()]
    } else {
        names
    };
    let n: usize = env_number("SPEX_N", 128)?;
    let sigma: f64 = env_number("SPEX_NOISE", 0.0)?;
    let noise = Normal::new(0.0, sigma)
        .map_err(|e| spex::sparse::Error::invalid("SPEX_NOISE", e.to_string()))?;
    let truth = hierarchical(n, 1);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut test = MaskBatch::new(n);
    for _ in 0..1000 {
        let row: Vec<bool> = (0..n).map(|_| rng.random_bool(0.5)).collect();
        test.push_bools(&row);
    }
    let test_values = truth.eval(&test);
    println!(
        "noise sigma {sigma} (the function's standard deviation is {:.2})",
        {
            let mean = test_values.iter().sum::<f64>() / test_values.len() as f64;
            (test_values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / test_values.len() as f64)
                .sqrt()
        }
    );
    println!("n = {n}");
    println!("| decoder | budget | queries | R² |");
    println!("|---|---|---|---|");
    let mut results: Vec<(String, usize, f64)> = Vec::new();
    for name in &names {
        let Some((decode, budgets)) = decoder(name) else {
            eprintln!("unknown decoder `{name}` (known: proxyspex, spex)");
            continue;
        };
        for &budget in budgets {
            let mut queries = 0;
            let mut rng = ChaCha8Rng::seed_from_u64(budget as u64);
            let mut f = FnValue::new(n, |m: &MaskBatch| {
                queries += m.len();
                let mut v = truth.eval(m);
                for x in &mut v {
                    *x += noise.sample(&mut rng);
                }
                v
            });
            match decode(n, budget, 0, &mut f) {
                Ok(spectrum) => {
                    let r2 = spectrum.r2(&test, &test_values);
                    println!("| {name} | {budget} | {queries} | {r2:.4} |");
                    results.push((name.clone(), queries, r2));
                }
                Err(spex::sparse::Error::BudgetTooSmall { minimum, .. }) => {
                    println!("| {name} | {budget} | - | too small (minimum {minimum}) |");
                }
                Err(e) => return Err(e),
            }
        }
    }
    print_queries_to_reach(&results);
    Ok(())
}
