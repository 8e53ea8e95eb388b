//! A real single-node Slurm cluster (Debian's slurm-wlm and munge, started on localhost by
//! `tests/slurm/run_cluster_test.sh`, which sets up and tears down everything) runs the array
//! script `spex plan --emit slurm` writes, over the tiny random Llama this test writes: the
//! joined values and spectrum are byte-identical to a one-machine run, and an array task requeued
//! mid-run resumes without recomputing a stored row.
//!
//! Ignored by `cargo test` (it installs packages and starts daemons as root): `.ci/run` runs it
//! with `cargo test --test slurm_cluster -- --ignored` and `SPEX_CI=1`, under which a missing
//! package is a failure; elsewhere it is a skip, said in one line.

use std::process::Command;

mod common;
use common::tiny_model_and_task;

#[test]
#[ignore = "starts a Slurm cluster as root: run by .ci/run, or with --ignored"]
fn the_emitted_array_script_on_a_real_slurm_cluster_gives_the_one_machine_bytes() {
    let fx = tiny_model_and_task();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/slurm/run_cluster_test.sh"
    );
    let out = Command::new("bash")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_spex"))
        .arg(fx.path().join("model"))
        .arg(fx.path().join("task.jsonl"))
        .output()
        .expect("bash runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "the cluster test failed:\n{text}");
}
