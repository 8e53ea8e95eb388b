//! Ablation runs: masks over players (heads) turned into batched masked forward passes of a
//! model over a task's prompts, and the resulting candidate logits or values.

pub mod task_scorer;

pub use task_scorer::TaskScorer;
