//! Evaluating a slice of a plan's masks through a [`ValueFunction`], batch by batch, into a
//! [`ValueStore`]: rows already stored are skipped, so a rerun picks up where a crash stopped.
//!
//! Batches are aligned to multiples of the batch size, and a batch with any row missing is
//! evaluated whole. A model's floating-point results can depend on which masks share a forward
//! batch; this way a resumed run hands the model exactly the batches an uninterrupted run would,
//! and writes the same bytes. The batch size is the grain of stored progress: the jobs take it
//! from [`masks_per_stored_batch`], a pure function of the work per mask (never the clock), so a
//! resumed run batches as the first one did, and a kill loses at most one batch of about
//! [`PASSES_PER_STORED_BATCH`] forward passes.
//!
//! With `SPEX_LOG=spex=debug` each batch is reported as it starts and once it is stored.

use std::ops::Range;

use std::path::Path;

use serde_json::Value;

use super::store::ValueStore;
use crate::progress::Watch;
use crate::sparse::{self, MaskBatch, ValueFunction};
use crate::{Error, Result};

/// Forward passes per stored batch, at most (fewer only when one mask takes more): the work a
/// kill can lose.
pub const PASSES_PER_STORED_BATCH: usize = 64;

/// Masks per stored batch when each mask takes `passes_per_mask` forward passes that run only
/// `layers_run` of the model's `layers` layers (the players' lowest layer up; the layers below run
/// once per question and are reused): about [`PASSES_PER_STORED_BATCH`] full passes of work,
/// `max(1, floor(64 * layers / (passes_per_mask * layers_run)))`. With reuse, more masks per call
/// also share each question's clean run.
pub fn masks_per_stored_batch(passes_per_mask: usize, layers_run: usize, layers: usize) -> usize {
    let work = passes_per_mask.max(1) * layers_run.clamp(1, layers.max(1));
    (PASSES_PER_STORED_BATCH * layers.max(1) / work).max(1)
}

/// Evaluates rows `rows` of `masks` that `store` lacks, in batches `[k * batch, (k + 1) * batch)`
/// (cut to `rows`) evaluated whole when any of their rows is missing, appending each batch's
/// missing values before the next; returns the values of `rows` in order.
///
/// `watch` is told how many rows are stored already, then each batch as it is stored; a `Break`
/// stops the evaluation there with [`Error::Interrupted`] (what is stored stays).
pub fn evaluate_resumable(
    f: &mut impl ValueFunction,
    masks: &MaskBatch,
    rows: Range<usize>,
    store: &mut ValueStore,
    batch: usize,
    watch: &mut dyn Watch,
) -> Result<Vec<f64>> {
    if f.n_players() != masks.n_players() {
        return Err(sparse::Error::ValuesMismatch(format!(
            "the masks have {} players but the value function takes {}",
            masks.n_players(),
            f.n_players()
        ))
        .into());
    }
    if rows.end > masks.len() {
        return Err(Error::invalid(
            "rows",
            format!("rows {rows:?} reach past the {} masks", masks.len()),
        ));
    }
    let batch = batch.max(1);
    let mut stored = rows.len() - store.missing(rows.clone()).len();
    let interrupted = |store: &ValueStore, stored| Error::Interrupted {
        path: store.path().to_path_buf(),
        stored,
        total: rows.len(),
    };
    if watch.begin(store.path(), rows.len(), stored).is_break() && stored < rows.len() {
        return Err(interrupted(store, stored));
    }
    let mut start = rows.start;
    while start < rows.end {
        let end = ((start / batch + 1) * batch).min(rows.end);
        let missing = store.missing(start..end);
        if !missing.is_empty() {
            tracing::debug!(
                "{}: evaluating masks {start}..{end} ({} not stored)",
                store.path().display(),
                missing.len()
            );
            let mut sub = MaskBatch::with_capacity(masks.n_players(), end - start);
            for r in start..end {
                sub.push_words(masks.row_words(r));
            }
            let values = f.values(&sub)?;
            if values.len() != end - start {
                return Err(sparse::Error::ValuesMismatch(format!(
                    "the value function returned {} values for {} masks",
                    values.len(),
                    end - start
                ))
                .into());
            }
            let new: Vec<f64> = missing.iter().map(|&r| values[r - start]).collect();
            store.append(&missing, &new)?;
            tracing::debug!("{}: stored masks {start}..{end}", store.path().display());
            stored += missing.len();
            if watch.advance(missing.len()).is_break() && stored < rows.len() {
                return Err(interrupted(store, stored));
            }
        }
        start = end;
    }
    watch.end();
    store.values(rows).ok_or_else(|| {
        Error::file(
            store.path(),
            "some rows are still missing after evaluation (was the file changed meanwhile?)",
        )
    })
}

/// Values of `masks` rows `rows` through `f`, `per_batch` masks per call, resumed from and
/// appended to the store at `store_path` (header `identity`), told to `watch` batch by batch
/// (which may stop it: [`evaluate_resumable`]); says (as a log line) how many rows a resumed run
/// found stored.
pub fn evaluate_stored(
    f: &mut impl ValueFunction,
    masks: &MaskBatch,
    rows: Range<usize>,
    store_path: &Path,
    identity: &Value,
    per_batch: usize,
    watch: &mut dyn Watch,
) -> Result<Vec<f64>> {
    let mut store = ValueStore::open(store_path, identity, masks.len())?;
    let done = rows.len() - store.missing(rows.clone()).len();
    if done > 0 {
        tracing::info!(
            "resuming: {done} of {} masks already in {}",
            rows.len(),
            store_path.display()
        );
    }
    evaluate_resumable(f, masks, rows, &mut store, per_batch, watch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::Subset;
    use serde_json::json;
    use std::ops::ControlFlow;

    /// Counts kept players, and records how many masks each call received.
    struct Counting {
        n: usize,
        calls: Vec<usize>,
        fail_after: Option<usize>,
    }

    impl ValueFunction for Counting {
        fn n_players(&self) -> usize {
            self.n
        }
        fn values(&mut self, masks: &MaskBatch) -> sparse::Result<Vec<f64>> {
            if self.fail_after == Some(self.calls.len()) {
                return Err(sparse::Error::invalid("test", "simulated crash"));
            }
            self.calls.push(masks.len());
            Ok((0..masks.len())
                .map(|r| masks.count_kept(r) as f64)
                .collect())
        }
    }

    /// Records what a [`Watch`] is told: the rows stored at the start, then each batch; stops
    /// after `stop_after` batches when set.
    #[derive(Default)]
    struct Recorder {
        seen: Vec<usize>,
        stop_after: Option<usize>,
        ended: bool,
    }

    impl Watch for Recorder {
        fn begin(&mut self, _store: &Path, _total: usize, done: usize) -> ControlFlow<()> {
            self.seen.push(done);
            match self.stop_after {
                Some(0) => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
        fn advance(&mut self, k: usize) -> ControlFlow<()> {
            self.seen.push(k);
            match self.stop_after {
                Some(n) if self.seen.len() > n => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
        fn end(&mut self) {
            self.ended = true;
        }
    }

    fn masks(n: usize, m: usize) -> MaskBatch {
        let mut b = MaskBatch::new(n);
        for r in 0..m {
            b.push_subset(&Subset::from_indices(
                (0..n as u32).filter(|i| (r >> i) & 1 == 1),
            ));
        }
        b
    }

    #[test]
    fn a_crashed_run_resumes_without_recomputing_and_matches_a_clean_run() {
        let dir = tempfile::tempdir().unwrap();
        let (n, m) = (4, 16);
        let all = masks(n, m);
        let expect: Vec<f64> = (0..m).map(|r| all.count_kept(r) as f64).collect();
        let id = json!({"run": 1});
        let path = dir.path().join("v.log");

        let mut store = ValueStore::open(&path, &id, m).unwrap();
        let mut f = Counting {
            n,
            calls: vec![],
            fail_after: Some(2),
        };
        assert!(
            evaluate_resumable(&mut f, &all, 0..m, &mut store, 3, &mut Recorder::default())
                .is_err()
        );
        assert_eq!(f.calls, vec![3, 3]);
        drop(store);

        let mut store = ValueStore::open(&path, &id, m).unwrap();
        let mut f = Counting {
            n,
            calls: vec![],
            fail_after: None,
        };
        let mut watch = Recorder::default();
        let got = evaluate_resumable(&mut f, &all, 0..m, &mut store, 3, &mut watch).unwrap();
        assert_eq!(got, expect);
        // Rows 0..6 are stored: the batches [6, 9), [9, 12), [12, 15) and [15, 16) remain.
        assert_eq!(
            f.calls,
            vec![3, 3, 3, 1],
            "only the missing batches are evaluated"
        );
        assert_eq!(watch.seen, vec![6, 3, 3, 3, 1]);
        assert!(watch.ended);
    }

    #[test]
    fn a_batch_cut_short_is_evaluated_whole_again() {
        let dir = tempfile::tempdir().unwrap();
        let all = masks(4, 10);
        let path = dir.path().join("v.log");
        let mut store = ValueStore::open(&path, &json!({}), 10).unwrap();
        // As if a crash had cut the batch [4, 8) after rows 4 and 5.
        store
            .append(&[0, 1, 2, 3, 4, 5], &[0.0, 1.0, 1.0, 2.0, 1.0, 2.0])
            .unwrap();
        let mut f = Counting {
            n: 4,
            calls: vec![],
            fail_after: None,
        };
        let mut watch = Recorder::default();
        let got = evaluate_resumable(&mut f, &all, 0..10, &mut store, 4, &mut watch).unwrap();
        assert_eq!(
            got,
            (0..10)
                .map(|r| all.count_kept(r) as f64)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            f.calls,
            vec![4, 2],
            "the batch [4, 8) runs whole, then [8, 10)"
        );
        assert_eq!(watch.seen, vec![6, 2, 2]);
    }

    #[test]
    fn a_stop_from_the_watch_keeps_what_is_stored_and_a_rerun_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let (n, m) = (4, 12);
        let all = masks(n, m);
        let path = dir.path().join("v.log");
        let mut store = ValueStore::open(&path, &json!({}), m).unwrap();
        let mut f = Counting {
            n,
            calls: vec![],
            fail_after: None,
        };
        let mut stop = Recorder {
            stop_after: Some(2),
            ..Recorder::default()
        };
        let err = evaluate_resumable(&mut f, &all, 0..m, &mut store, 4, &mut stop).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Interrupted {
                    stored: 8,
                    total: 12,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(f.calls, vec![4, 4], "no batch after the stop");
        assert!(!stop.ended);
        drop(store);

        let mut store = ValueStore::open(&path, &json!({}), m).unwrap();
        let mut watch = Recorder::default();
        let got = evaluate_resumable(&mut f, &all, 0..m, &mut store, 4, &mut watch).unwrap();
        assert_eq!(
            got,
            (0..m).map(|r| all.count_kept(r) as f64).collect::<Vec<_>>()
        );
        assert_eq!(f.calls, vec![4, 4, 4], "only the batch after the stop runs");
        assert_eq!(watch.seen, vec![8, 4]);
        drop(store);

        // A stop at the start of a stage evaluates nothing; one with nothing left is no stop.
        let mut other = ValueStore::open(&dir.path().join("w.log"), &json!({}), m).unwrap();
        let mut at_once = Recorder {
            stop_after: Some(0),
            ..Recorder::default()
        };
        let err = evaluate_resumable(&mut f, &all, 0..m, &mut other, 4, &mut at_once).unwrap_err();
        assert!(matches!(err, Error::Interrupted { stored: 0, .. }), "{err}");
        assert_eq!(f.calls.len(), 3, "nothing evaluated");
        let mut store = ValueStore::open(&path, &json!({}), m).unwrap();
        let mut done = Recorder {
            stop_after: Some(0),
            ..Recorder::default()
        };
        assert_eq!(
            evaluate_resumable(&mut f, &all, 0..m, &mut store, 4, &mut done).unwrap(),
            got
        );
    }

    #[test]
    fn the_grain_is_about_64_passes_and_at_least_one_mask() {
        assert_eq!(masks_per_stored_batch(1, 30, 30), 64);
        assert_eq!(masks_per_stored_batch(3, 30, 30), 21);
        assert_eq!(masks_per_stored_batch(64, 30, 30), 1);
        assert_eq!(masks_per_stored_batch(400, 30, 30), 1);
        assert_eq!(masks_per_stored_batch(0, 30, 30), 64);
        // The last 3 of 30 layers: a tenth of the work per pass, ten times the masks.
        assert_eq!(masks_per_stored_batch(40, 3, 30), 16);
        assert_eq!(masks_per_stored_batch(40, 16, 30), 3);
        assert_eq!(masks_per_stored_batch(1, 0, 0), 64);
    }

    #[test]
    fn a_slice_is_evaluated_alone_and_bad_inputs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let all = masks(3, 8);
        let mut store = ValueStore::open(&dir.path().join("v.log"), &json!({}), 8).unwrap();
        let mut f = Counting {
            n: 3,
            calls: vec![],
            fail_after: None,
        };
        let got = evaluate_resumable(&mut f, &all, 2..5, &mut store, 10, &mut Recorder::default())
            .unwrap();
        assert_eq!(got, vec![1.0, 2.0, 1.0]);
        assert_eq!(store.missing(0..8), vec![0, 1, 5, 6, 7]);
        assert!(
            evaluate_resumable(&mut f, &all, 6..9, &mut store, 10, &mut Recorder::default())
                .is_err()
        );
        let mut wrong = Counting {
            n: 4,
            calls: vec![],
            fail_after: None,
        };
        assert!(evaluate_resumable(
            &mut wrong,
            &all,
            0..8,
            &mut store,
            10,
            &mut Recorder::default()
        )
        .is_err());
    }
}
