//! Batched ablated forward passes: (prompt, head mask, token mask) jobs grouped into batches under
//! a token budget, with layer reuse and key/value-prefix reuse from one clean run per prompt, and a
//! readout of the last position (only the requested token ids) or of a continuation's tokens.

use std::ops::Range;
use std::sync::atomic::Ordering;

use candle_core::{Device, Tensor};

use crate::model::arch::decoder::{BlockAt, HeadOp, Kv, Starts};
use crate::model::arch::ragged::Ragged;
use crate::model::batching::{for_each_batch, one_row};
use crate::model::error::{ModelError, ModelResult};
use crate::model::loaded::Model;
use crate::model::masks::{HeadMask, HeadScales, TokenMask};
use crate::model::readout::{Readout, Reads, Unembed};

/// One ablated forward pass: a prompt (index into the prompt list) with optional head scales
/// (`[L, H]`) and an optional token keep row (`[T]`, false = replace).
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Index of the prompt in the list handed to [`Model::run`].
    pub prompt: usize,
    /// Head scales `[L, H]`, validated when built; `None` keeps every head.
    pub heads: Option<HeadScales>,
    /// Token keep flags `[T]` for this prompt; `None` keeps every token.
    pub tokens: Option<Vec<bool>>,
}

/// Per-head mean outputs (the attention context before `o_proj`) over a reference prompt set,
/// used for mean ablation: one `[1, H, 1, Dh]` tensor per layer.
#[derive(Debug, Clone)]
pub struct HeadMeans {
    per_layer: Vec<Tensor>,
}

/// How [`Model::run`] batches and reuses work.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Most prompt positions computed per batch (rows x positions); at least one row always runs.
    /// On the CPU a batch past the caches costs more per pass (4,096 positions: 1.4x the time
    /// per pass of 1,024 in bf16 on a 2-core Xeon), so take [`RunOptions::for_device`]'s value.
    pub max_batch_tokens: usize,
    /// Reuse work: a clean run for every prompt that two or more jobs share (resume at a job's
    /// lowest masked layer, share the key/value prefix before the first replaced token), and one
    /// pass over a token prefix that several prompts with equal head scales share. Off, every
    /// job runs from the embedding, prompts batched together.
    pub reuse: bool,
    /// Token that replaces removed tokens; `None` takes the model's default ([`ModelInfo::baseline_token`](crate::model::ModelInfo::baseline_token)).
    pub baseline_token: Option<u32>,
    /// Mean ablation targets; `None` means zero ablation.
    pub means: Option<HeadMeans>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            max_batch_tokens: 8192,
            reuse: true,
            baseline_token: None,
            means: None,
        }
    }
}

/// `log(sum(exp(x)))` over one row of logits (nats), computed stably in f64: a reference for
/// callers and tests (the readouts use a vectorised one, `cpu::log_probs::logsumexp`).
pub fn logsumexp(row: &[f32]) -> f64 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
    max + sum.ln()
}

/// Shortest token prefix worth computing once for several prompts. Measured on 2 Xeon cores, 100
/// questions each, against 8: 4 made OpenBookQA 8-17 % and COPA 6-7 % faster (their contexts are
/// a few words) and changed none of five other cloze sets beyond noise; 2 gained no more.
const MIN_SHARED_PREFIX: usize = 4;

/// Jobs with equal head scales whose token ids start with the same `prefix` tokens.
struct PrefixGroup {
    jobs: Vec<usize>,
    /// Shared tokens, at least [`MIN_SHARED_PREFIX`] and at most every job's length; read
    /// positions inside it are read out once from the prefix pass.
    prefix: usize,
}

/// Splits `jobs` into groups sharing a token prefix of at least [`MIN_SHARED_PREFIX`] (e.g. the
/// few-shot examples of one MMLU subject, the context of a question's answers and the words the
/// answers start with, the prompt of answers scored at one position) and the jobs left
/// alone. Sorting by (head scales, ids) puts prompts with a common prefix next to each other; a
/// group (of two or more) stops growing when the next job would cut its prefix below the minimum,
/// or cost its members more recomputed positions than it saves the newcomer.
fn prefix_groups(jobs: &[usize], prepared: &[Prepared]) -> (Vec<PrefixGroup>, Vec<usize>) {
    let same_heads = |a: usize, b: usize| compare_heads(&prepared[a], &prepared[b]).is_eq();
    let mut order = jobs.to_vec();
    order.sort_by(|&a, &b| {
        compare_heads(&prepared[a], &prepared[b])
            .then_with(|| prepared[a].ids.cmp(&prepared[b].ids))
    });
    let (mut groups, mut single) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < order.len() {
        let first = order[i];
        let mut prefix = prepared[first].ids.len();
        let mut k = i + 1;
        while k < order.len() && same_heads(first, order[k]) {
            let ids = &prepared[order[k]].ids;
            let common = ids
                .iter()
                .zip(&prepared[first].ids)
                .take_while(|(a, b)| a == b)
                .count();
            let shorter = prefix.min(common);
            // Past the second member, joining saves the newcomer `shorter` positions and makes
            // each of the `k - i` members recompute `prefix - shorter` more: join only when
            // that is a saving.
            let members = k - i;
            if shorter < MIN_SHARED_PREFIX
                || (members > 1 && members * (prefix - shorter) > shorter)
            {
                break;
            }
            prefix = shorter;
            k += 1;
        }
        // Prefixes run batched (many groups per pass), so any group of two saves positions
        // (measured on 2 CPU cores, 60 questions: OpenBookQA 1.15-1.3x, PIQA 1.15x, HellaSwag
        // 1.1x, COPA 1.06x faster than grouping only past 64 spared positions).
        if k - i >= 2 {
            groups.push(PrefixGroup {
                jobs: order[i..k].to_vec(),
                prefix,
            });
        } else {
            single.extend_from_slice(&order[i..k]);
        }
        i = k;
    }
    (groups, single)
}

/// Orders jobs by their head scales (unmasked first), for grouping equal ones.
fn compare_heads(a: &Prepared, b: &Prepared) -> std::cmp::Ordering {
    match (&a.heads, &b.heads) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(x), Some(y)) => x
            .iter()
            .zip(y.iter())
            .map(|(u, v)| u.total_cmp(v))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal),
    }
}

impl RunOptions {
    /// The defaults with a batch size suited to `device`: 1024 positions per batch on the CPU
    /// (small batches stay in cache; 8192 measured 3x slower there), 8192 on GPUs.
    pub fn for_device(device: &Device) -> Self {
        RunOptions {
            max_batch_tokens: if device.is_cpu() { 1024 } else { 8192 },
            ..RunOptions::default()
        }
    }
}

/// Where a job's pass starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Start {
    /// Resume at this layer from the clean residual (L = read the clean output).
    Layer(usize),
    /// Run every layer for positions `p..T`, reusing the clean keys/values of positions `< p`.
    Suffix(usize),
}

/// A clean (unablated) run of one prompt at batch 1.
struct CleanRun {
    /// Residual input of every layer plus the final residual: `L + 1` tensors `[1, T, D]`.
    resid: Vec<Tensor>,
    /// Keys and values per layer, `[1, Hkv, T, Dh]`.
    kv: Vec<Kv>,
}

/// A job after validation: its effective ids, start, head scales and what it reads out.
struct Prepared {
    ids: Vec<u32>,
    heads: Option<HeadScales>,
    start: Start,
    /// Positions read out: the last one, or a continuation's.
    read: Range<usize>,
    /// The token scored at each read position ([`Readout::Continuations`]), else empty.
    targets: Vec<u32>,
}

impl Model {
    /// Runs `B` ablations of one prompt `ids`: row b uses row b of `head_mask` `[B, L, H]` and of
    /// `token_mask` `[B, T]` (either may be absent; with neither, B = 1). Returns last-position
    /// logits `[B][K]` (K = V for [`Readout::Full`]), f32, with default [`RunOptions`].
    pub fn forward_ablated(
        &self,
        ids: &[u32],
        head_mask: Option<&HeadMask>,
        token_mask: Option<&TokenMask>,
        readout: &Readout,
    ) -> ModelResult<Vec<Vec<f32>>> {
        let rows = match (head_mask, token_mask) {
            (Some(h), Some(t)) if h.rows() != t.rows() => {
                return Err(ModelError::input(
                    "token_mask",
                    format!("{} rows but the head mask has {}", t.rows(), h.rows()),
                ))
            }
            (Some(h), _) => h.rows(),
            (None, Some(t)) => t.rows(),
            (None, None) => 1,
        };
        if let Some(h) = head_mask {
            h.check_shape(self.info.n_layers, self.info.n_heads)?;
        }
        let jobs: Vec<Job> = (0..rows)
            .map(|b| Job {
                prompt: 0,
                heads: head_mask.map(|h| h.row(b).clone()),
                tokens: token_mask.map(|t| t.row(b).to_vec()),
            })
            .collect();
        self.run(&[ids.to_vec()], &jobs, readout, &RunOptions::default())
    }

    /// Runs every job and returns its readout row in job order, f32: last-position logits
    /// `[jobs][K]`, or a continuation's log-probabilities ([`Readout::Continuations`]).
    pub fn run(
        &self,
        prompts: &[Vec<u32>],
        jobs: &[Job],
        readout: &Readout,
        opts: &RunOptions,
    ) -> ModelResult<Vec<Vec<f32>>> {
        // Called from outside rayon's pool, the whole run moves onto one of its threads: each of
        // a pass's many parallel loops then starts from a worker instead of waking the caller's
        // thread in and out of a sleep (forward T 64 B 16: -1 to -3 % time plain, -4 to -7 %
        // with layer reuse; COPA -2 to -9 %).
        match rayon::current_thread_index() {
            Some(_) => self.run_here(prompts, jobs, readout, opts),
            None => rayon::scope(|_| self.run_here(prompts, jobs, readout, opts)),
        }
    }

    /// [`Model::run`] on the calling thread.
    fn run_here(
        &self,
        prompts: &[Vec<u32>],
        jobs: &[Job],
        readout: &Readout,
        opts: &RunOptions,
    ) -> ModelResult<Vec<Vec<f32>>> {
        for (i, p) in prompts.iter().enumerate() {
            self.check_ids(p, &format!("prompts[{i}]"))?;
        }
        if let Readout::Continuations(targets) = readout {
            self.check_continuations(prompts, targets)?;
        }
        let unembed = self.unembed_rows(readout)?;
        let baseline = opts.baseline_token.unwrap_or(self.info.baseline_token);
        self.check_ids(&[baseline], "baseline_token")?;
        let prepared: Vec<Prepared> = jobs
            .iter()
            .enumerate()
            .map(|(j, job)| self.prepare(j, job, prompts, readout, baseline, opts.reuse))
            .collect::<ModelResult<_>>()?;
        let mut out: Vec<Option<Vec<f32>>> = vec![None; jobs.len()];

        if let Some(means) = &opts.means {
            if means.per_layer.len() != self.info.n_layers {
                return Err(ModelError::input(
                    "means",
                    format!(
                        "{} layers of means for a model of {}",
                        means.per_layer.len(),
                        self.info.n_layers
                    ),
                ));
            }
        }
        let mut per_prompt: Vec<Vec<usize>> = vec![Vec::new(); prompts.len()];
        for (j, job) in jobs.iter().enumerate() {
            per_prompt[job.prompt].push(j);
        }
        // A clean run pays off only when several jobs share it. Every other job runs from the
        // embedding, prompts mixed in right-padded batches.
        let (shared, alone): (Vec<Vec<usize>>, Vec<Vec<usize>>) = per_prompt
            .into_iter()
            .filter(|mine| !mine.is_empty())
            .partition(|mine| opts.reuse && mine.len() > 1);
        let fresh: Vec<usize> = alone.concat();
        let (groups, single) = if opts.reuse {
            prefix_groups(&fresh, &prepared)
        } else {
            (Vec::new(), fresh)
        };
        self.run_fresh(&single, &prepared, &unembed, opts, &mut out)?;
        // A clean run (one row) has no smaller batch to retry with when the device runs out of
        // memory.
        let device = self.device_name();
        self.run_prefixed(&groups, &prepared, &unembed, opts, &mut out)?;
        for mut mine in shared {
            self.check_not_stopped()?;
            let prompt = &prompts[jobs[mine[0]].prompt];
            let clean = one_row(self.clean_run(prompt), device, prompt.len())?;
            // Latest start first, so each batch's earliest start is as late as possible.
            mine.sort_by_key(|&j| std::cmp::Reverse(prepared[j].start));
            self.run_reused(&mine, &prepared, &clean, &unembed, opts, &mut out)?;
        }
        out.into_iter()
            .enumerate()
            .map(|(j, o)| {
                o.ok_or_else(|| ModelError::input("jobs", format!("job {j} was not run")))
            })
            .collect()
    }

    /// Per-head mean outputs over `prompts` (every position of every prompt weighs the same).
    pub fn head_means(&self, prompts: &[Vec<u32>]) -> ModelResult<HeadMeans> {
        if prompts.is_empty() {
            return Err(ModelError::input(
                "mean-ablation prompts",
                "the reference set is empty",
            ));
        }
        let mut sums: Vec<Option<Tensor>> = vec![None; self.info.n_layers];
        let mut count = 0usize;
        for (i, p) in prompts.iter().enumerate() {
            self.check_ids(p, &format!("mean-ablation prompts[{i}]"))?;
            let ids = Tensor::new(p.as_slice(), &self.device)?.unsqueeze(0)?;
            let mut x = self.decoder.embed(&ids, Starts::Shared(0))?;
            for (l, sum) in sums.iter_mut().enumerate() {
                let o = self.decoder.block(l, &x, BlockAt::default())?;
                // ctx [1, H, T, Dh] -> sum over positions [1, H, 1, Dh], accumulated in f32.
                let s = o.ctx.to_dtype(candle_core::DType::F32)?.sum_keepdim(2)?;
                *sum = Some(match sum.take() {
                    None => s,
                    Some(acc) => (acc + s)?,
                });
                x = o.x;
            }
            count += p.len();
        }
        let per_layer = sums
            .into_iter()
            .map(|s| {
                let s = s.ok_or_else(|| ModelError::input("mean-ablation prompts", "no layer"))?;
                Ok((s / count as f64)?.to_dtype(self.compute_dtype)?)
            })
            .collect::<ModelResult<_>>()?;
        Ok(HeadMeans { per_layer })
    }

    pub(super) fn check_ids(&self, ids: &[u32], arg: &str) -> ModelResult<()> {
        if ids.is_empty() {
            return Err(ModelError::input(arg, "empty prompt"));
        }
        if ids.len() > self.info.max_positions {
            return Err(ModelError::input(
                arg,
                format!(
                    "{} tokens, more than the model's {} positions",
                    ids.len(),
                    self.info.max_positions
                ),
            ));
        }
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= self.info.vocab) {
            return Err(ModelError::input(
                arg,
                format!(
                    "token id {id} is outside the vocabulary of {}",
                    self.info.vocab
                ),
            ));
        }
        Ok(())
    }

    /// Checks [`Readout::Continuations`]: one target list per prompt, `1..=T` valid ids each.
    fn check_continuations(&self, prompts: &[Vec<u32>], targets: &[Vec<u32>]) -> ModelResult<()> {
        if targets.len() != prompts.len() {
            return Err(ModelError::input(
                "readout",
                format!(
                    "{} continuations for {} prompts",
                    targets.len(),
                    prompts.len()
                ),
            ));
        }
        for (i, (t, p)) in targets.iter().zip(prompts).enumerate() {
            let arg = format!("readout continuation {i}");
            if t.len() > p.len() {
                return Err(ModelError::input(
                    arg,
                    format!("{} targets after a prompt of {} tokens", t.len(), p.len()),
                ));
            }
            self.check_ids(t, &arg)?;
        }
        Ok(())
    }

    fn prepare(
        &self,
        j: usize,
        job: &Job,
        prompts: &[Vec<u32>],
        readout: &Readout,
        baseline: u32,
        reuse: bool,
    ) -> ModelResult<Prepared> {
        let (l, h) = (self.info.n_layers, self.info.n_heads);
        let prompt = prompts.get(job.prompt).ok_or_else(|| {
            ModelError::input(
                format!("jobs[{j}].prompt"),
                format!("no prompt {}", job.prompt),
            )
        })?;
        if let Some(heads) = &job.heads {
            heads.check_fits(l, h, &format!("jobs[{j}].heads"))?;
        }
        let mut ids = prompt.clone();
        if let Some(keep) = &job.tokens {
            if keep.len() != ids.len() {
                return Err(ModelError::input(
                    format!("jobs[{j}].tokens"),
                    format!("{} flags for a prompt of {} tokens", keep.len(), ids.len()),
                ));
            }
            for (id, &k) in ids.iter_mut().zip(keep) {
                if !k {
                    *id = baseline;
                }
            }
        }
        let lowest = job
            .heads
            .as_ref()
            .map_or(l, HeadScales::lowest_masked_layer);
        let t = ids.len();
        let targets = match readout {
            Readout::Continuations(all) => all[job.prompt].clone(),
            _ => Vec::new(),
        };
        let read = t - targets.len().max(1)..t;
        let first_changed = ids.iter().zip(prompt).position(|(a, b)| a != b);
        let start = match (reuse, first_changed) {
            (false, _) => Start::Suffix(0),
            (true, None) => Start::Layer(lowest),
            (true, Some(p)) if lowest == l => Start::Suffix(p.min(read.start)),
            (true, Some(_)) => Start::Suffix(0),
        };
        let heads = job.heads.clone().filter(|_| lowest < l);
        Ok(Prepared {
            ids,
            heads,
            start,
            read,
            targets,
        })
    }

    fn clean_run(&self, prompt: &[u32]) -> ModelResult<CleanRun> {
        let ids = Tensor::new(prompt, &self.device)?.unsqueeze(0)?;
        let mut x = self.decoder.embed(&ids, Starts::Shared(0))?;
        let mut resid = Vec::with_capacity(self.info.n_layers + 1);
        let mut kv = Vec::with_capacity(self.info.n_layers);
        for l in 0..self.info.n_layers {
            let o = self.decoder.block(l, &x, BlockAt::default())?;
            resid.push(x);
            kv.push(o.kv);
            x = o.x;
        }
        resid.push(x);
        Ok(CleanRun { resid, kv })
    }

    /// `batching::for_each_batch` with this model's device name and learned batch limit.
    fn for_each_batch(
        &self,
        order: &[usize],
        len: impl Fn(usize) -> usize,
        opts: &RunOptions,
        pass: impl FnMut(&[usize]) -> ModelResult<Vec<Vec<f32>>>,
        out: &mut [Option<Vec<f32>>],
    ) -> ModelResult<()> {
        let (limit, device) = (&self.batch_limit, self.device_name());
        let mut pass = pass;
        let checked = |batch: &[usize]| {
            self.check_not_stopped()?;
            pass(batch)
        };
        for_each_batch(
            order,
            len,
            opts.max_batch_tokens,
            limit,
            device,
            checked,
            out,
        )
    }

    /// [`ModelError::Interrupted`] once [`Model::stop_flag`] is set.
    fn check_not_stopped(&self) -> ModelResult<()> {
        match self.stop.load(Ordering::Relaxed) {
            true => Err(ModelError::Interrupted),
            false => Ok(()),
        }
    }

    /// The device as the `device` choice names it: `cpu`, `cuda` or `metal`.
    pub fn device_name(&self) -> &'static str {
        match &self.device {
            Device::Cpu => "cpu",
            Device::Cuda(_) => "cuda",
            Device::Metal(_) => "metal",
        }
    }

    fn run_fresh(
        &self,
        jobs: &[usize],
        prepared: &[Prepared],
        unembed: &Unembed,
        opts: &RunOptions,
        out: &mut [Option<Vec<f32>>],
    ) -> ModelResult<()> {
        let mut order = jobs.to_vec();
        order.sort_by_key(|&j| std::cmp::Reverse(prepared[j].ids.len()));
        let len = |j: usize| prepared[j].ids.len();
        let pass = |batch: &[usize]| {
            let t = batch.iter().map(|&j| len(j)).max().unwrap_or(1);
            let ids = self.right_padded(batch.iter().map(|&j| &prepared[j].ids[..]), t)?;
            let x = self.decoder.embed(&ids, Starts::Shared(0))?;
            self.layers_and_readout(
                x,
                0,
                Starts::Shared(0),
                None,
                batch,
                prepared,
                unembed,
                opts,
            )
        };
        self.for_each_batch(&order, len, opts, pass, out)
    }

    /// Token rows, each right-padded with the baseline token to `t`: ids `[N, t]`. Real
    /// positions never attend to the padding after them (causal mask).
    fn right_padded<'a>(
        &self,
        rows: impl ExactSizeIterator<Item = &'a [u32]>,
        t: usize,
    ) -> ModelResult<Tensor> {
        let n = rows.len();
        let mut flat = Vec::with_capacity(n * t);
        for row in rows {
            flat.extend_from_slice(row);
            flat.resize(flat.len() + t - row.len(), self.info.baseline_token);
        }
        Ok(Tensor::from_vec(flat, (n, t), &self.device)?)
    }

    /// Runs prefix groups: the common prefixes of as many groups as fit a batch in one
    /// right-padded pass (each under its group's head scales), then every member's remaining
    /// tokens in right-padded batches, each row on the keys and values of its own group's prefix
    /// (per-row pasts of different lengths). Groups run longest prefix first.
    fn run_prefixed(
        &self,
        groups: &[PrefixGroup],
        prepared: &[Prepared],
        unembed: &Unembed,
        opts: &RunOptions,
        out: &mut [Option<Vec<f32>>],
    ) -> ModelResult<()> {
        let mut order: Vec<usize> = (0..groups.len()).collect();
        order.sort_by_key(|&g| std::cmp::Reverse(groups[g].prefix));
        // One (empty) row per group: the members' rows go to `out` from inside the pass.
        let mut done: Vec<Option<Vec<f32>>> = vec![None; groups.len()];
        let pass = |batch: &[usize]| {
            // When every member ends with its group's prefix and reads only its last position
            // (the answers of one prompt, scored by their first token), the last layer computes
            // that position alone.
            let single: Option<Vec<usize>> = batch
                .iter()
                .all(|&g| {
                    groups[g].jobs.iter().all(|&j| {
                        prepared[j].ids.len() == groups[g].prefix && prepared[j].read.len() == 1
                    })
                })
                .then(|| batch.iter().map(|&g| groups[g].prefix - 1).collect());
            let (past, last) =
                self.prefix_pass(batch, groups, prepared, opts, single.as_deref())?;
            let mut early =
                self.prefix_reads(batch, groups, prepared, &last, single.is_some(), unembed)?;
            let mut row_of = std::collections::HashMap::new();
            for (row, &g) in batch.iter().enumerate() {
                row_of.extend(groups[g].jobs.iter().map(|&j| (j, row)));
            }
            let start = |j: usize| groups[batch[row_of[&j]]].prefix;
            let rest = |j: usize| prepared[j].ids.len() - start(j);
            // Jobs whose every position is in the prefix are read out already.
            let mut members: Vec<usize> = Vec::with_capacity(row_of.len());
            for &j in row_of.keys() {
                match rest(j) {
                    0 => out[j] = early.remove(&j),
                    _ => members.push(j),
                }
            }
            members.sort_by_key(|&j| (std::cmp::Reverse(rest(j)), j));
            let suffix_pass = |rows: &[usize]| {
                let starts: Vec<usize> = rows.iter().map(|&j| start(j)).collect();
                let t = rows.iter().map(|&j| rest(j)).max().unwrap_or(1);
                let ids =
                    self.right_padded(rows.iter().map(|&j| &prepared[j].ids[start(j)..]), t)?;
                let x = self.decoder.embed(&ids, Starts::PerRow(&starts))?;
                let idx: Vec<u32> = rows.iter().map(|&j| row_of[&j] as u32).collect();
                let idx = Tensor::from_vec(idx, rows.len(), &self.device)?;
                let widest = starts.iter().copied().max().unwrap_or(0);
                let mine = past
                    .iter()
                    .map(|kv| {
                        Ok(Kv {
                            k: kv.k.index_select(&idx, 0)?.narrow(2, 0, widest)?,
                            v: kv.v.index_select(&idx, 0)?.narrow(2, 0, widest)?,
                        })
                    })
                    .collect::<ModelResult<Vec<Kv>>>()?;
                let at = Starts::PerRow(&starts);
                let late =
                    self.layers_and_readout(x, 0, at, Some(&mine), rows, prepared, unembed, opts)?;
                // A job read inside its prefix continues with the positions after it.
                Ok(rows
                    .iter()
                    .zip(late)
                    .map(|(j, late)| match early.get(j) {
                        Some(head) => [head.as_slice(), &late].concat(),
                        None => late,
                    })
                    .collect())
            };
            self.for_each_batch(&members, rest, opts, suffix_pass, out)?;
            Ok(vec![Vec::new(); batch.len()])
        };
        self.for_each_batch(&order, |g| groups[g].prefix, opts, pass, &mut done)
    }

    /// The readouts at the read positions inside each group's prefix, from the prefix pass's
    /// final residual `last` `[G, P, D]` (`[G, 1, D]`, each group's last position, when
    /// `single`), keyed by job: each such position is unembedded once however many members read
    /// it, and each member scores its own targets there.
    fn prefix_reads(
        &self,
        batch: &[usize],
        groups: &[PrefixGroup],
        prepared: &[Prepared],
        last: &Tensor,
        single: bool,
        unembed: &Unembed,
    ) -> ModelResult<std::collections::HashMap<usize, Vec<f32>>> {
        let (g_count, p, d) = last.dims3()?;
        let (mut positions, mut picks, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
        let (mut targets, mut readers) = (Vec::new(), Vec::new());
        for (row, &g) in batch.iter().enumerate() {
            let end = groups[g].prefix;
            let jobs = &groups[g].jobs;
            let Some(first) = jobs
                .iter()
                .map(|&j| prepared[j].read.start)
                .min()
                .filter(|&first| first < end)
            else {
                continue;
            };
            let base = positions.len();
            positions.extend((first..end).map(|q| match single {
                true => row as u32,
                false => (row * p + q) as u32,
            }));
            for &j in jobs.iter().filter(|&&j| prepared[j].read.start < end) {
                let read = prepared[j].read.start..end;
                picks.extend(read.clone().map(|q| (base + q - first) as u32));
                let mine = &prepared[j].targets;
                targets.extend_from_slice(&mine[..read.len().min(mine.len())]);
                sizes.push(read.len());
                readers.push(j);
            }
        }
        if readers.is_empty() {
            return Ok(Default::default());
        }
        let positions = Tensor::new(positions.as_slice(), &self.device)?;
        let hidden = last
            .reshape((g_count * p, d))?
            .index_select(&positions, 0)?;
        let reads = Reads {
            order: Some(&picks),
            sizes: &sizes,
            targets: &targets,
        };
        let rows = self.read_out(&hidden, &reads, unembed)?;
        Ok(readers.into_iter().zip(rows).collect())
    }

    /// Keys and values of the prefixes of `batch`'s groups, one right-padded row per group
    /// (under the group's head scales): per layer `[G, Hkv, P, Dh]`, P the longest prefix; and
    /// the final residual `[G, P, D]`, or `[G, 1, D]` at `single[r]` of each row r (the last
    /// layer computing those positions alone).
    fn prefix_pass(
        &self,
        batch: &[usize],
        groups: &[PrefixGroup],
        prepared: &[Prepared],
        opts: &RunOptions,
        single: Option<&[usize]>,
    ) -> ModelResult<(Vec<Kv>, Tensor)> {
        let lens: Vec<usize> = batch.iter().map(|&g| groups[g].prefix).collect();
        let firsts: Vec<usize> = batch.iter().map(|&g| groups[g].jobs[0]).collect();
        let p = lens.iter().copied().max().unwrap_or(1);
        let rows = batch
            .iter()
            .zip(&lens)
            .map(|(&g, &len)| &prepared[groups[g].jobs[0]].ids[..len]);
        let ids = self.right_padded(rows, p)?;
        let ragged = Ragged::new(&lens, p, &self.device)?;
        let mut x = self.decoder.embed(&ids, Starts::Shared(0))?;
        let mut past = Vec::with_capacity(self.info.n_layers);
        for l in 0..self.info.n_layers {
            let op = self.head_op(l, &firsts, prepared, opts)?;
            let at = BlockAt {
                op: op.as_ref(),
                ragged: ragged.as_ref(),
                readout: single.filter(|_| l + 1 == self.info.n_layers),
                ..BlockAt::default()
            };
            let o = self.decoder.block(l, &x, at)?;
            past.push(o.kv);
            x = o.x;
        }
        Ok((past, x))
    }

    fn run_reused(
        &self,
        order: &[usize],
        prepared: &[Prepared],
        clean: &CleanRun,
        unembed: &Unembed,
        opts: &RunOptions,
        out: &mut [Option<Vec<f32>>],
    ) -> ModelResult<()> {
        let l_count = self.info.n_layers;
        let t = clean.resid[0].dim(1)?;
        // Layer-resume jobs first (sorted latest start first), then suffix jobs.
        let (resume, suffix): (Vec<usize>, Vec<usize>) = order
            .iter()
            .partition(|&&j| matches!(prepared[j].start, Start::Layer(_)));
        let resume_pass = |batch: &[usize]| {
            let start = batch
                .iter()
                .filter_map(|&j| match prepared[j].start {
                    Start::Layer(l) => Some(l),
                    Start::Suffix(_) => None,
                })
                .min()
                .unwrap_or(l_count);
            let n = batch.len();
            let x = clean.resid[start]
                .broadcast_as((n, t, self.info.d_model))?
                .contiguous()?;
            self.layers_and_readout(
                x,
                start,
                Starts::Shared(0),
                None,
                batch,
                prepared,
                unembed,
                opts,
            )
        };
        self.for_each_batch(&resume, |_| t, opts, resume_pass, out)?;
        let prefix_of = |j: usize| match prepared[j].start {
            Start::Suffix(p) => p,
            Start::Layer(_) => 0,
        };
        let suffix_pass = |batch: &[usize]| {
            let p = batch.iter().map(|&j| prefix_of(j)).min().unwrap_or(0);
            let flat: Vec<u32> = batch
                .iter()
                .flat_map(|&j| prepared[j].ids[p..].iter().copied())
                .collect();
            let ids = Tensor::from_vec(flat, (batch.len(), t - p), &self.device)?;
            let x = self.decoder.embed(&ids, Starts::Shared(p))?;
            let past: Option<Vec<Kv>> = (p > 0)
                .then(|| {
                    clean
                        .kv
                        .iter()
                        .map(|kv| {
                            Ok(Kv {
                                k: kv.k.narrow(2, 0, p)?,
                                v: kv.v.narrow(2, 0, p)?,
                            })
                        })
                        .collect::<ModelResult<Vec<Kv>>>()
                })
                .transpose()?;
            let past = past.as_deref();
            self.layers_and_readout(
                x,
                0,
                Starts::Shared(p),
                past,
                batch,
                prepared,
                unembed,
                opts,
            )
        };
        self.for_each_batch(&suffix, |j| t - prefix_of(j), opts, suffix_pass, out)
    }

    /// Runs layers `start..L` on `x [N, T, D]` (row r's positions from `starts`), then reads out
    /// each row's positions `prepared[j].read` (from position 0; every one at or after the row's
    /// start): one f32 row
    /// per job, `[K]` logits of its last position or `[k]` log-probabilities of its targets. Row
    /// r's positions after its last read are padding, skipped by the position-wise parts when
    /// there is enough of it.
    #[allow(clippy::too_many_arguments)]
    fn layers_and_readout(
        &self,
        mut x: Tensor,
        start: usize,
        starts: Starts,
        past: Option<&[Kv]>,
        batch: &[usize],
        prepared: &[Prepared],
        unembed: &Unembed,
        opts: &RunOptions,
    ) -> ModelResult<Vec<Vec<f32>>> {
        let l_count = self.info.n_layers;
        let (n, t, d) = x.dims3()?;
        // Positions before a row's start were read out with its prefix, if at all.
        let reads: Vec<Range<usize>> = batch
            .iter()
            .enumerate()
            .map(|(r, &j)| {
                let s = starts.of(r);
                prepared[j].read.start.max(s) - s..prepared[j].read.end - s
            })
            .collect();
        let lens: Vec<usize> = reads.iter().map(|r| r.end).collect();
        let ragged = Ragged::new(&lens, t, &self.device)?;
        // With one read position per row, the last block computes only those positions.
        let last: Option<Vec<usize>> = reads
            .iter()
            .all(|r| r.len() == 1)
            .then(|| reads.iter().map(|r| r.start).collect());
        for l in start..l_count {
            let op = self.head_op(l, batch, prepared, opts)?;
            let at = BlockAt {
                starts,
                op: op.as_ref(),
                past: past.map(|p| &p[l]),
                ragged: ragged.as_ref(),
                readout: last.as_deref().filter(|_| l + 1 == l_count),
            };
            x = self.decoder.block(l, &x, at)?.x;
        }
        let hidden = if start < l_count && last.is_some() {
            x.reshape((n, d))?
        } else {
            let idx: Vec<u32> = reads
                .iter()
                .enumerate()
                .flat_map(|(r, read)| read.clone().map(move |p| (r * t + p) as u32))
                .collect();
            let idx = Tensor::new(idx.as_slice(), &self.device)?;
            x.reshape((n * t, d))?.index_select(&idx, 0)?
        };
        let sizes: Vec<usize> = reads.iter().map(Range::len).collect();
        let targets: Vec<u32> = batch
            .iter()
            .zip(&sizes)
            .flat_map(|(&j, &k)| {
                let mine = &prepared[j].targets;
                mine[mine.len().saturating_sub(k)..].iter().copied()
            })
            .collect();
        let reads = Reads {
            order: None,
            sizes: &sizes,
            targets: &targets,
        };
        self.read_out(&hidden, &reads, unembed)
    }

    /// The head op for layer `l` of a batch, or `None` when every row keeps every head there.
    fn head_op(
        &self,
        l: usize,
        batch: &[usize],
        prepared: &[Prepared],
        opts: &RunOptions,
    ) -> ModelResult<Option<HeadOp>> {
        let h = self.info.n_heads;
        let rows: Vec<Option<&[f32]>> = batch
            .iter()
            .map(|&j| prepared[j].heads.as_ref().map(|r| r.layer(l)))
            .collect();
        if rows
            .iter()
            .all(|r| r.is_none_or(|s| s.iter().all(|&v| v == 1.0)))
        {
            return Ok(None);
        }
        let flat: Vec<f32> = rows
            .iter()
            .flat_map(|r| r.map_or_else(|| vec![1.0; h], <[f32]>::to_vec))
            .collect();
        let scale = Tensor::from_vec(flat, (batch.len(), h, 1, 1), &self.device)?
            .to_dtype(self.compute_dtype)?;
        let mean = opts.means.as_ref().map(|m| m.per_layer[l].clone());
        Ok(Some(HeadOp { scale, mean }))
    }
}

#[cfg(test)]
mod tests {
    use super::logsumexp;

    #[test]
    fn logsumexp_matches_the_definition() {
        let row = [1.0f32, 2.0, 3.0];
        let direct = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        assert!((logsumexp(&row) - direct).abs() < 1e-6);
        assert!((logsumexp(&[1000.0, 1000.0]) - (1000.0 + 2f64.ln())).abs() < 1e-3);
    }
}
