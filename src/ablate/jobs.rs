//! How many forward-pass jobs the scorers hand the model at once.

/// Most forward-pass jobs a scorer hands the model in one call: enough for each prompt's clean run
/// (layer reuse) to serve many masks, few enough to bound the memory of jobs and logits.
pub(crate) const JOBS_PER_CALL: usize = 4096;
