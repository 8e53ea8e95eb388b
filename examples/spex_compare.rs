//! Side-by-side run of this crate's SPEX and shapiq 1.4.1's SPEX on the same random K-sparse
//! Fourier games with the same budget: prints R^2 (2000 uniform test masks) and times.
//!
//! `cargo run --release --example spex_compare -- [CASE ...]` with CASE = `n,K,t,budget[,soft|hard]`
//! (default: a small set). Python: `$SHAPIQ_PYTHON` (default `/work/venv-shapiq/bin/python`;
//! `none` runs ours only).

use std::process::Command;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spex::sparse::spex::{Decoder, SpexPlan};
use spex::sparse::synthetic::random_sparse_fourier;
use spex::sparse::MaskBatch;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cases: Vec<String> = if args.is_empty() {
        vec!["20,10,3,2000,soft".into(), "100,20,5,3936,soft".into()]
    } else {
        args
    };
    let python =
        std::env::var("SHAPIQ_PYTHON").unwrap_or_else(|_| "/work/venv-shapiq/bin/python".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/shapiq/spex_compare.py"
    );
    let dir = tempfile::tempdir()?;
    struct Ours {
        label: String,
        used: usize,
        r2: f64,
        decode: f64,
        total: f64,
    }
    let mut ours = Vec::new();
    let mut specs = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let f: Vec<&str> = case.split(',').collect();
        anyhow::ensure!(
            f.len() >= 4,
            "case `{case}`: expected n,K,t,budget[,decoder]"
        );
        let (n, k, t, budget): (usize, usize, usize, usize) =
            (f[0].parse()?, f[1].parse()?, f[2].parse()?, f[3].parse()?);
        let decoder = match f.get(4).copied().unwrap_or("soft") {
            "hard" => Decoder::Hard,
            _ => Decoder::Soft,
        };
        let truth = random_sparse_fourier(n, k, t, 11);
        // total = plan + masks + evaluation + decode; decode = best of 5
        let start = Instant::now();
        let plan = SpexPlan::new(n, budget, t, 1)?.with_decoder(decoder);
        let masks = plan.masks()?;
        let values = truth.eval(&masks);
        let mut got = plan.decode(&values)?;
        let total = start.elapsed().as_secs_f64();
        let mut decode = f64::INFINITY;
        for _ in 0..5 {
            let s = Instant::now();
            got = plan.decode(&values)?;
            decode = decode.min(s.elapsed().as_secs_f64());
        }
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut test = MaskBatch::new(n);
        for _ in 0..2000 {
            let bools: Vec<bool> = (0..n).map(|_| rng.random()).collect();
            test.push_bools(&bools);
        }
        ours.push(Ours {
            label: format!("| {n} | {k} | {t} | {budget} | {decoder:?}"),
            used: plan.n_queries(),
            r2: got.r2(&test, &truth.eval(&test)),
            decode,
            total,
        });
        let terms: Vec<(Vec<u32>, f64)> = truth
            .iter()
            .map(|(s, v)| (s.indices().to_vec(), v))
            .collect();
        let spec = serde_json::json!({
            "n": n, "t": t, "budget": budget, "seed": 1, "terms": terms,
            "decoder": if decoder == Decoder::Hard { "hard" } else { "soft" },
        });
        let path = dir.path().join(format!("spec{i}.json"));
        std::fs::write(&path, spec.to_string())?;
        specs.push(path);
    }
    if python == "none" {
        println!("| n | K | t | budget | decoder | used | R2 ours | decode ours [ms] | total ours [ms] |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for o in &ours {
            let (r2, used) = (o.r2, o.used);
            let (decode, total) = (o.decode * 1e3, o.total * 1e3);
            println!(
                "{} | {used} | {r2:.6} | {decode:.2} | {total:.1} |",
                o.label
            );
        }
        return Ok(());
    }
    let out = Command::new(&python).arg(script).args(&specs).output()?;
    anyhow::ensure!(
        out.status.success(),
        "shapiq failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("| n | K | t | budget | decoder | used (ours/shapiq) | R2 ours | R2 shapiq | decode ours [ms] | total ours [ms] | decode shapiq [ms] | sample shapiq [ms] | first call shapiq [s] | decode speed-up |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (o, line) in ours.iter().zip(stdout.lines()) {
        let theirs: serde_json::Value = serde_json::from_str(line)?;
        let num = |key: &str| theirs[key].as_f64().unwrap_or(f64::NAN);
        println!(
            "{} | {}/{} | {:.6} | {:.6} | {:.2} | {:.1} | {:.0} | {:.0} | {:.1} | {:.0}x |",
            o.label,
            o.used,
            num("used"),
            o.r2,
            num("r2"),
            o.decode * 1e3,
            o.total * 1e3,
            num("decode_s") * 1e3,
            num("sample_s") * 1e3,
            num("first_s"),
            num("decode_s") / o.decode,
        );
    }
    Ok(())
}
