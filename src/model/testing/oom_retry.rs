//! The engine's batches under a device that runs out of memory: every path (fresh, layer resume,
//! shared token prefix, prefix groups) retries in smaller batches and returns what an ample
//! device returns. And a run stopped through the model's stop flag ends before its next batch.

#[path = "../../../tests/support/random_model.rs"]
mod random_model;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use serde_json::json;

use crate::model::arch::decoder::{BlockAt, BlockOut, Decoder, Starts};
use crate::model::{HeadScales, Job, Model, ModelError, ModelResult, Readout, RunOptions};

/// A decoder that fails as a full GPU does whenever a block gets more than `rows` rows.
struct FullAbove {
    inner: Box<dyn Decoder>,
    rows: usize,
}

impl Decoder for FullAbove {
    fn embed(&self, ids: &Tensor, starts: Starts) -> ModelResult<Tensor> {
        self.inner.embed(ids, starts)
    }

    fn block(&self, l: usize, x: &Tensor, at: BlockAt<'_>) -> ModelResult<BlockOut> {
        if x.dim(0)? > self.rows {
            return Err(ModelError::Candle(candle_core::Error::Msg(
                "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")".into(),
            )));
        }
        self.inner.block(l, x, at)
    }

    fn final_norm(&self, x: &Tensor) -> ModelResult<Tensor> {
        self.inner.final_norm(x)
    }

    fn unembed(&self) -> &Tensor {
        self.inner.unembed()
    }

    fn logit_softcap(&self) -> Option<f64> {
        self.inner.logit_softcap()
    }

    fn max_positions(&self) -> usize {
        self.inner.max_positions()
    }
}

fn tiny_model() -> Model {
    let cfg = json!({"model_type": "llama", "vocab_size": 32, "hidden_size": 16,
        "intermediate_size": 24, "num_hidden_layers": 3, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 4, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "max_position_embeddings": 64, "tie_word_embeddings": false});
    let tensors = random_model::llama_tensors(&cfg, 3);
    random_model::build(&cfg, tensors, &Device::Cpu, DType::F32).unwrap()
}

/// The same weights behind a device that holds at most `rows` rows per block.
fn full_above(rows: usize) -> Model {
    with_decoder(tiny_model(), |inner| Box::new(FullAbove { inner, rows }))
}

/// `model` with its decoder replaced by `wrap` of it (everything else kept).
fn with_decoder(model: Model, wrap: impl FnOnce(Box<dyn Decoder>) -> Box<dyn Decoder>) -> Model {
    Model {
        decoder: wrap(model.decoder),
        ..model
    }
}

/// Jobs that take every path of the engine: head masks on a shared prompt (layer resume), token
/// masks on it (shared key/value prefix), and single jobs on prompts with a common prefix.
fn jobs() -> (Vec<Vec<u32>>, Vec<Job>) {
    let prompts = vec![
        vec![3, 5, 7, 9, 11, 13, 15, 17],
        vec![4, 6, 8, 10, 12, 14],
        vec![4, 6, 8, 10, 20, 21, 22],
        vec![4, 6, 8, 1, 2],
    ];
    let mut jobs = Vec::new();
    for k in 0..6 {
        let mut heads = vec![1.0; 12];
        heads[4 + k] = 0.0;
        jobs.push(Job {
            prompt: 0,
            heads: Some(HeadScales::new(3, 4, heads).unwrap()),
            tokens: None,
        });
        let mut tokens = vec![true; 8];
        tokens[2 + k] = false;
        jobs.push(Job {
            prompt: 0,
            heads: None,
            tokens: Some(tokens),
        });
    }
    for p in 1..4 {
        jobs.push(Job {
            prompt: p,
            heads: None,
            tokens: None,
        });
    }
    (prompts, jobs)
}

#[test]
fn out_of_memory_batches_are_retried_smaller_with_the_same_results() {
    let (prompts, jobs) = jobs();
    let ample = tiny_model();
    for reuse in [true, false] {
        let opts = RunOptions {
            reuse,
            ..RunOptions::default()
        };
        let want = ample.run(&prompts, &jobs, &Readout::Full, &opts).unwrap();
        let small = full_above(2);
        let got = small.run(&prompts, &jobs, &Readout::Full, &opts).unwrap();
        assert!(ample.batch_limit().is_none());
        let limit = small.batch_limit().expect("a retry lowered the limit");
        assert!(limit < opts.max_batch_tokens);
        for (j, (g, w)) in got.iter().zip(&want).enumerate() {
            let err = g
                .iter()
                .zip(w)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < 1e-5, "reuse={reuse} job {j}: logits differ by {err}");
        }
    }
}

#[test]
fn a_device_too_small_for_one_row_is_a_clear_error() {
    let (prompts, jobs) = jobs();
    let err = full_above(0)
        .run(&prompts, &jobs, &Readout::Full, &RunOptions::default())
        .unwrap_err();
    assert!(matches!(err, ModelError::OutOfMemory { .. }), "{err}");
    assert!(err.to_string().contains("cpu: one forward pass"), "{err}");
}

/// A decoder that sets the model's stop flag when its first batch reaches the final norm, and
/// counts the batches that do.
struct StopAfterFirst {
    inner: Box<dyn Decoder>,
    stop: Arc<AtomicBool>,
    batches: Arc<AtomicUsize>,
}

impl Decoder for StopAfterFirst {
    fn embed(&self, ids: &Tensor, starts: Starts) -> ModelResult<Tensor> {
        self.inner.embed(ids, starts)
    }

    fn block(&self, l: usize, x: &Tensor, at: BlockAt<'_>) -> ModelResult<BlockOut> {
        self.inner.block(l, x, at)
    }

    fn final_norm(&self, x: &Tensor) -> ModelResult<Tensor> {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.stop.store(true, Ordering::Relaxed);
        self.inner.final_norm(x)
    }

    fn unembed(&self) -> &Tensor {
        self.inner.unembed()
    }

    fn logit_softcap(&self) -> Option<f64> {
        self.inner.logit_softcap()
    }

    fn max_positions(&self) -> usize {
        self.inner.max_positions()
    }
}

#[test]
fn a_set_stop_flag_ends_the_run_before_its_next_batch_and_a_cleared_one_runs_again() {
    let (prompts, jobs) = jobs();
    let opts = RunOptions {
        reuse: false,
        max_batch_tokens: 16,
        ..RunOptions::default()
    };
    let ample = tiny_model();
    let want = ample.run(&prompts, &jobs, &Readout::Full, &opts).unwrap();
    ample.stop_flag().store(true, Ordering::Relaxed);
    let err = ample
        .run(&prompts, &jobs, &Readout::Full, &opts)
        .unwrap_err();
    assert!(matches!(err, ModelError::Interrupted), "{err}");

    let model = tiny_model();
    let stop = model.stop_flag();
    let batches = Arc::new(AtomicUsize::new(0));
    let stopping = with_decoder(model, |inner| {
        Box::new(StopAfterFirst {
            inner,
            stop: Arc::clone(&stop),
            batches: Arc::clone(&batches),
        })
    });
    let err = stopping
        .run(&prompts, &jobs, &Readout::Full, &opts)
        .unwrap_err();
    assert!(matches!(err, ModelError::Interrupted), "{err}");
    assert_eq!(
        batches.load(Ordering::Relaxed),
        1,
        "no batch after the stop"
    );
    // Cleared, the stopped model runs to the end with the results of a run never stopped.
    ample.stop_flag().store(false, Ordering::Relaxed);
    assert_eq!(
        ample.run(&prompts, &jobs, &Readout::Full, &opts).unwrap(),
        want
    );
}
