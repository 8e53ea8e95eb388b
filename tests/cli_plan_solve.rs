//! End-to-end tests of `spex plan` and `spex solve` through the binary: outputs and exit codes.

use std::path::{Path, PathBuf};
use std::process::Output;

use spex::io::{read_masks_npy, write_values_npy};
use spex::sparse::{MaskBatch, Subset};

mod common;
use common::{spex, stderr};

/// f(x) = |x| / n + x1 x2 + 0.5 x3 x4 x5: a known Moebius spectrum.
fn game(masks: &MaskBatch) -> Vec<f64> {
    let n = masks.n_players();
    (0..masks.len())
        .map(|r| {
            let kept = masks.count_kept(r) as f64 / n as f64;
            let pair = masks.contains_all(r, &Subset::from_indices([1, 2])) as u8 as f64;
            let triple = masks.contains_all(r, &Subset::from_indices([3, 4, 5])) as u8 as f64;
            kept + pair + 0.5 * triple
        })
        .collect()
}

fn plan(dir: &Path, method: &str, n: usize, budget: usize) -> PathBuf {
    let out = dir.join(method);
    let o = spex(&[
        "plan",
        "--method",
        method,
        "--players",
        &n.to_string(),
        "--budget",
        &budget.to_string(),
        "--seed",
        "7",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "plan failed: {}", stderr(&o));
    out
}

fn evaluate(plan_dir: &Path) -> PathBuf {
    let masks = read_masks_npy(&plan_dir.join("masks.npy")).unwrap();
    let values = plan_dir.join("values.npy");
    write_values_npy(&values, &game(&masks)).unwrap();
    values
}

fn solve(plan_dir: &Path, values: &[&Path], out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["solve", "--plan", plan_dir.to_str().unwrap()];
    for v in values {
        args.extend(["--values", v.to_str().unwrap()]);
    }
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    spex(&args)
}

fn interactions(json: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

fn value_of(report: &serde_json::Value, players: &[u64]) -> f64 {
    report["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["players"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_u64().unwrap())
                .eq(players.iter().copied())
        })
        .map_or(0.0, |e| e["value"].as_f64().unwrap())
}

#[test]
fn spex_plan_then_solve_recovers_the_moebius_spectrum() {
    let dir = tempfile::tempdir().unwrap();
    let p = plan(dir.path(), "spex", 20, 2000);
    let values = evaluate(&p);
    let out = dir.path().join("moebius.json");
    let o = solve(&p, &[&values], &out, &["--index", "moebius"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = interactions(&out);
    assert_eq!(r["method"], "spex");
    assert_eq!(r["n_players"], 20);
    assert!((value_of(&r, &[1, 2]) - 1.0).abs() < 1e-6);
    assert!((value_of(&r, &[3, 4, 5]) - 0.5).abs() < 1e-6);
    assert!((value_of(&r, &[7]) - 0.05).abs() < 1e-6);
    assert!(r["baseline_value"].as_f64().unwrap().abs() < 1e-9);
    // Sorted by |value|: the pair comes first.
    assert_eq!(r["interactions"][0]["players"], serde_json::json!([1, 2]));
}

#[test]
fn sharded_values_equal_one_file_and_text_values_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = plan(dir.path(), "spex", 12, 1000);
    let masks = read_masks_npy(&p.join("masks.npy")).unwrap();
    let all = game(&masks);
    let half = all.len() / 2;
    let a = dir.path().join("a.npy");
    let b = dir.path().join("b.txt");
    write_values_npy(&a, &all[..half]).unwrap();
    let text: String = all[half..].iter().map(|v| format!("{v:.17e}\n")).collect();
    std::fs::write(&b, text).unwrap();
    let whole = evaluate(&p);

    let (o1, o2) = (dir.path().join("1.json"), dir.path().join("2.json"));
    assert!(solve(&p, &[&whole], &o1, &["--index", "fsii"])
        .status
        .success());
    assert!(solve(&p, &[&a, &b], &o2, &["--index", "fsii"])
        .status
        .success());
    assert_eq!(
        std::fs::read_to_string(&o1).unwrap(),
        std::fs::read_to_string(&o2).unwrap()
    );
}

#[test]
fn proxyspex_plan_then_solve_finds_the_strong_pair() {
    let dir = tempfile::tempdir().unwrap();
    let p = plan(dir.path(), "proxyspex", 16, 600);
    let values = evaluate(&p);
    let out = dir.path().join("ksii.json");
    let o = solve(
        &p,
        &[&values],
        &out,
        &["--index", "k-SII", "--max-order", "2"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r = interactions(&out);
    assert_eq!(r["index"], "k-SII");
    assert_eq!(r["queries"], 600);
    assert!((value_of(&r, &[1, 2]) - 1.0).abs() < 0.15, "{r}");
}

#[test]
fn same_seed_gives_identical_plan_bytes() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    for method in ["spex", "proxyspex"] {
        let a = plan(d1.path(), method, 30, 3000);
        let b = plan(d2.path(), method, 30, 3000);
        for f in ["masks.npy", "plan.json"] {
            assert_eq!(
                std::fs::read(a.join(f)).unwrap(),
                std::fs::read(b.join(f)).unwrap(),
                "{method} {f}"
            );
        }
    }
}

#[test]
fn bad_inputs_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let p = plan(dir.path(), "spex", 10, 1000);
    let out = dir.path().join("o.json");

    // Budget too small: names the smallest budget that works.
    let o = spex(&[
        "plan",
        "--method",
        "spex",
        "--players",
        "10",
        "--budget",
        "100",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("smallest budget"), "{}", stderr(&o));

    // Wrong number of values.
    let short = dir.path().join("short.npy");
    write_values_npy(&short, &[1.0, 2.0, 3.0]).unwrap();
    let o = solve(&p, &[&short], &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("3 value(s) given"), "{}", stderr(&o));

    // NaN values: the rows are named.
    let masks = read_masks_npy(&p.join("masks.npy")).unwrap();
    let mut vals = game(&masks);
    vals[5] = f64::NAN;
    vals[9] = f64::INFINITY;
    let bad = dir.path().join("nan.npy");
    write_values_npy(&bad, &vals).unwrap();
    let o = solve(&p, &[&bad], &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("5, 9"), "{}", stderr(&o));

    // A masks.npy from a plan for another n.
    let other = plan(dir.path(), "proxyspex", 11, 200);
    std::fs::copy(other.join("masks.npy"), p.join("masks.npy")).unwrap();
    let good = evaluate(&other);
    let o = solve(&p, &[&good], &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("n = 10"), "{}", stderr(&o));

    // A corrupt .npy.
    std::fs::write(p.join("masks.npy"), b"\x93NUMPY garbage").unwrap();
    let o = solve(&p, &[&good], &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("masks.npy"), "{}", stderr(&o));

    // Wrong dtype for values.
    let p2 = plan(dir.path(), "spex", 10, 1000);
    let int_values = dir.path().join("int.npy");
    let m = read_masks_npy(&p2.join("masks.npy")).unwrap();
    {
        use npyz::WriterBuilder;
        let f = std::fs::File::create(&int_values).unwrap();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[m.len() as u64])
            .writer(f)
            .begin_nd()
            .unwrap();
        w.extend((0..m.len()).map(|i| i as i64)).unwrap();
        w.finish().unwrap();
    }
    let o = solve(&p2, &[&int_values], &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("float32 or float64"), "{}", stderr(&o));

    // Unknown index name.
    let o = solve(&p2, &[&int_values], &out, &["--index", "XYZ"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn keep_probability_samples_near_the_full_set_and_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("near");
    let args = |method: &str, keep: &str, out: &Path| {
        spex(&[
            "plan",
            "--method",
            method,
            "--players",
            "200",
            "--budget",
            "300",
            "--keep-prob",
            keep,
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let o = args("proxyspex", "0.9", &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let masks = read_masks_npy(&out.join("masks.npy")).unwrap();
    let kept: usize = (2..masks.len()).map(|r| masks.count_kept(r)).sum();
    let share = kept as f64 / (298.0 * 200.0);
    assert!((share - 0.9).abs() < 0.01, "{share}");
    // The plan records the probability, so solve regenerates and checks the same masks.
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["keep_probability"], 0.9);
    let values = dir.path().join("v.npy");
    write_values_npy(&values, &game(&masks)).unwrap();
    let o = solve(&out, &[&values], &dir.path().join("o.json"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));

    for (method, keep) in [("spex", "0.9"), ("proxyspex", "1"), ("proxyspex", "0")] {
        let o = args(method, keep, &dir.path().join("bad"));
        assert_eq!(o.status.code(), Some(2), "{method} {keep}");
        assert!(stderr(&o).contains("--keep-prob"), "{}", stderr(&o));
    }
}

#[test]
fn centred_refit_re_decodes_the_same_values_and_is_proxyspex_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("near");
    let o = spex(&[
        "plan",
        "--players",
        "12",
        "--budget",
        "300",
        "--keep-prob",
        "0.9",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let values = evaluate(&out);
    let (reference, centred) = (dir.path().join("r.json"), dir.path().join("c.json"));
    for (path, extra) in [
        (&reference, &["--refit", "reference"][..]),
        (&centred, &["--refit", "centred"][..]),
    ] {
        let o = solve(&out, &[&values], path, extra);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let (r, c) = (interactions(&reference), interactions(&centred));
    assert_eq!(
        (&r["refit"], &c["refit"]),
        (&"reference".into(), &"centred".into())
    );
    assert_ne!(
        r["interactions"], c["interactions"],
        "the refit changes the fit"
    );
    // Both find the planted pair x1 x2 (k-SII 1) well above the triple's pairs.
    for report in [&r, &c] {
        let pair = value_of(report, &[1, 2]);
        assert!((pair - 1.0).abs() < 0.25, "pair {pair}");
        assert!(value_of(report, &[3, 4]).abs() < pair / 2.0);
    }

    let spex_plan = plan(dir.path(), "spex", 20, 2000);
    let spex_values = evaluate(&spex_plan);
    let o = solve(
        &spex_plan,
        &[&spex_values],
        &dir.path().join("s.json"),
        &["--refit", "centred"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--refit"), "{}", stderr(&o));
}

#[test]
fn solve_reports_r2_on_a_held_out_plan() {
    let dir = tempfile::tempdir().unwrap();
    let fit = plan(dir.path(), "proxyspex", 12, 300);
    let fit_values = evaluate(&fit);
    let unseen = dir.path().join("unseen");
    let o = spex(&[
        "plan",
        "--players",
        "12",
        "--budget",
        "100",
        "--seed",
        "99",
        "--out",
        unseen.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let unseen_values = evaluate(&unseen);
    let (out, spectrum) = (dir.path().join("o.json"), dir.path().join("s.json"));
    let held_out = [
        "--spectrum",
        spectrum.to_str().unwrap(),
        "--held-out-plan",
        unseen.to_str().unwrap(),
        "--held-out-values",
        unseen_values.to_str().unwrap(),
    ];
    let o = solve(&fit, &[&fit_values], &out, &held_out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("on 100 unseen masks"), "{}", stderr(&o));
    // The reported R^2 is the written spectrum's on the unseen masks.
    let report = interactions(&out);
    assert_eq!(report["held_out"], 100);
    let file: spex::report::spectrum_file::SpectrumFile = spex::io::read_json(&spectrum).unwrap();
    let masks = read_masks_npy(&unseen.join("masks.npy")).unwrap();
    let r2 = file
        .to_spectrum(&spectrum)
        .unwrap()
        .r2(&masks, &game(&masks));
    assert!((report["r2_held_out"].as_f64().unwrap() - r2).abs() < 1e-9);
    assert!(r2 > 0.9, "the planted game is recovered: {r2}");

    // A plan over other players, or a short value file, is named in the error.
    let other = plan(&dir.path().join("other"), "proxyspex", 13, 300);
    let other_values = evaluate(&other);
    let o = solve(
        &fit,
        &[&fit_values],
        &out,
        &[
            "--held-out-plan",
            other.to_str().unwrap(),
            "--held-out-values",
            other_values.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--held-out-plan"), "{}", stderr(&o));
    let o = solve(
        &fit,
        &[&fit_values],
        &out,
        &[
            "--held-out-plan",
            unseen.to_str().unwrap(),
            "--held-out-values",
            fit_values.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--held-out-values"), "{}", stderr(&o));
}
