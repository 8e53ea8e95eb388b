//! Jobs in consecutive batches under a position budget, made smaller when the device runs out of
//! memory: a failed batch is run again in halves, and the model remembers the smaller size.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::model::error::{ModelError, ModelResult};

/// The most positions (rows x widest row) one batch may hold on this model's device, learned from
/// out-of-memory failures: unbounded at first, lowered on each failure, for the model's lifetime.
#[derive(Debug)]
pub(crate) struct BatchLimit(AtomicUsize);

impl Default for BatchLimit {
    fn default() -> Self {
        BatchLimit(AtomicUsize::new(usize::MAX))
    }
}

impl BatchLimit {
    /// The current limit in positions.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Lowers the limit to `positions` (never raises it).
    fn lower_to(&self, positions: usize) {
        self.0.fetch_min(positions, Ordering::Relaxed);
    }
}

/// How many leading jobs of `order` fit in `cap` positions, where a batch costs its row count times
/// its widest row (`len(j)` positions each); at least one.
fn leading_fit(order: &[usize], len: &impl Fn(usize) -> usize, cap: usize) -> usize {
    let mut widest = 0;
    let mut take = 0;
    for &j in order {
        let w = widest.max(len(j));
        if take > 0 && (take + 1) * w > cap {
            break;
        }
        widest = w;
        take += 1;
    }
    take
}

/// `result` of a pass over one row of `positions` positions on `device`, with an out-of-memory
/// error turned into [`ModelError::OutOfMemory`]: no smaller batch exists to retry with.
pub(crate) fn one_row<T>(result: ModelResult<T>, device: &str, positions: usize) -> ModelResult<T> {
    result.map_err(|e| match e.is_out_of_memory() {
        true => ModelError::OutOfMemory {
            device: device.to_string(),
            positions,
            reason: e.to_string(),
        },
        false => e,
    })
}

/// Runs the jobs of `order` through `pass` in consecutive batches of at most `budget` positions
/// (and the learned `limit`), storing the row `pass` returns for job `j` in `out[j]`.
/// When a batch of several jobs runs out of memory on `device` (named in messages), the limit
/// drops to half that batch's positions and the same jobs run again in smaller batches; a single
/// job that does not fit is an [`ModelError::OutOfMemory`]. Other errors pass through.
pub(crate) fn for_each_batch(
    order: &[usize],
    len: impl Fn(usize) -> usize,
    budget: usize,
    limit: &BatchLimit,
    device: &str,
    mut pass: impl FnMut(&[usize]) -> ModelResult<Vec<Vec<f32>>>,
    out: &mut [Option<Vec<f32>>],
) -> ModelResult<()> {
    let mut rest = order;
    while !rest.is_empty() {
        let take = leading_fit(rest, &len, budget.min(limit.get()));
        let batch = &rest[..take];
        match pass(batch) {
            Ok(rows) => {
                for (&j, row) in batch.iter().zip(rows) {
                    out[j] = Some(row);
                }
                rest = &rest[take..];
            }
            Err(e) if e.is_out_of_memory() => {
                let positions = take * batch.iter().map(|&j| len(j)).max().unwrap_or(0);
                if take == 1 {
                    return one_row(Err(e), device, positions);
                }
                limit.lower_to(positions / 2);
                tracing::warn!(
                    "{device} ran out of memory on a batch of {take} jobs ({positions} positions); \
                     batches now hold at most {} positions",
                    positions / 2
                );
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An out-of-memory error as CUDA reports it through candle.
    fn oom() -> ModelError {
        ModelError::Candle(candle_core::Error::Msg(
            "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")".into(),
        ))
    }

    /// Job j's row is `[j, batch size]`, so the test sees which batch ran it.
    fn rows_of(batch: &[usize]) -> Vec<Vec<f32>> {
        batch
            .iter()
            .map(|&j| vec![j as f32, batch.len() as f32])
            .collect()
    }

    #[test]
    fn batches_respect_the_budget_and_keep_every_job() {
        let widths = [5, 4, 4, 3, 3, 3, 1];
        let order: Vec<usize> = (0..widths.len()).collect();
        let mut sizes = Vec::new();
        let mut out = vec![None; widths.len()];
        let limit = BatchLimit::default();
        for_each_batch(
            &order,
            |j| widths[j],
            12,
            &limit,
            "cpu",
            |b| {
                sizes.push((b.len(), b.iter().map(|&j| widths[j]).max().unwrap()));
                Ok(rows_of(b))
            },
            &mut out,
        )
        .unwrap();
        // [5, 4] costs 2 x 5 = 10; adding a third row would cost 15.
        assert_eq!(sizes, [(2, 5), (3, 4), (2, 3)]);
        assert!(sizes.iter().all(|&(rows, w)| rows * w <= 12));
        for (j, row) in out.iter().enumerate() {
            assert_eq!(row.as_ref().unwrap()[0], j as f32);
        }
        assert_eq!(limit.get(), usize::MAX, "no failure, no limit");
    }

    #[test]
    fn out_of_memory_halves_the_batch_and_the_limit_sticks() {
        // The "device" holds 6 positions; the budget asks for 32.
        let order: Vec<usize> = (0..10).collect();
        let limit = BatchLimit::default();
        let mut out = vec![None; order.len()];
        let calls = std::cell::RefCell::new(Vec::new());
        let device = |b: &[usize]| {
            calls.borrow_mut().push(b.len());
            if b.len() * 2 > 6 {
                Err(oom())
            } else {
                Ok(rows_of(b))
            }
        };
        for_each_batch(&order, |_| 2, 32, &limit, "cuda", device, &mut out).unwrap();
        // All 10 jobs (20 positions) fail, then 5 (10 positions): the limit is 5 positions, and
        // batches of 2 (4 positions) run.
        assert_eq!(*calls.borrow(), [10, 5, 2, 2, 2, 2, 2]);
        assert_eq!(limit.get(), 5);
        assert!(out
            .iter()
            .enumerate()
            .all(|(j, r)| r.as_ref().unwrap()[0] == j as f32));
        // A later run starts at the learned size: no failure this time.
        calls.borrow_mut().clear();
        let mut again = vec![None; 4];
        for_each_batch(&[0, 1, 2, 3], |_| 2, 32, &limit, "cuda", device, &mut again).unwrap();
        assert_eq!(*calls.borrow(), [2, 2]);
    }

    #[test]
    fn a_single_job_that_does_not_fit_names_the_device_and_size() {
        let limit = BatchLimit::default();
        let mut out = vec![None; 3];
        let err = for_each_batch(
            &[0, 1, 2],
            |_| 700,
            4096,
            &limit,
            "cuda",
            |_| Err(oom()),
            &mut out,
        )
        .unwrap_err();
        assert!(
            matches!(err, ModelError::OutOfMemory { positions: 700, .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("cuda") && text.contains("700 positions"),
            "{text}"
        );
    }

    #[test]
    fn other_errors_are_not_retried() {
        let limit = BatchLimit::default();
        let mut out = vec![None; 4];
        let mut calls = 0;
        let err = for_each_batch(
            &[0, 1, 2, 3],
            |_| 1,
            64,
            &limit,
            "cpu",
            |_| {
                calls += 1;
                Err(ModelError::input("x", "broken"))
            },
            &mut out,
        )
        .unwrap_err();
        assert!(err.to_string().contains("broken"));
        assert_eq!(calls, 1);
        assert_eq!(limit.get(), usize::MAX);
    }
}
