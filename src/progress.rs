//! Progress on stderr and from the caller's side: a bar drawn on a terminal (hidden when stderr is
//! piped or when not asked for), and [`Watch`], through which a long job reports each stored batch
//! and its caller may stop it between two batches.

use std::ops::ControlFlow;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting `total` items named `unit` (e.g. `forward passes`); hidden unless `show`.
pub fn bar(total: u64, unit: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let template = format!(
        "{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}})"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// What a resumable job tells its caller as it stores values, stage by stage (the plan's masks,
/// then the held-out check's): the caller draws progress and may stop the job.
pub trait Watch {
    /// A stage begins: `total` masks whose values go to the log `store` (`values.log`,
    /// `held_out.log`, a shard's log), `done` of them already there (a resumed run). `Break`
    /// stops the job before the stage's first batch.
    fn begin(&mut self, store: &Path, total: usize, done: usize) -> ControlFlow<()>;
    /// `k` more values are stored. `Break` stops the job before its next batch: what is stored
    /// stays, and the same job run again resumes from there.
    fn advance(&mut self, k: usize) -> ControlFlow<()>;
    /// The stage is over (every value stored).
    fn end(&mut self);
}

/// The terminal's [`Watch`]: a bar per stage on stderr when it is a terminal, never a stop.
#[derive(Default)]
pub struct TerminalBar {
    bar: Option<ProgressBar>,
}

impl Watch for TerminalBar {
    fn begin(&mut self, _store: &Path, total: usize, done: usize) -> ControlFlow<()> {
        let bar = bar(total as u64, "masks", true);
        bar.inc(done as u64);
        self.bar = Some(bar);
        ControlFlow::Continue(())
    }

    fn advance(&mut self, k: usize) -> ControlFlow<()> {
        if let Some(bar) = &self.bar {
            bar.inc(k as u64);
        }
        ControlFlow::Continue(())
    }

    fn end(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
