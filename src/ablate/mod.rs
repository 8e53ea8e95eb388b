//! Ablation runs: masks over players (heads) turned into batched masked forward passes of a
//! model over a task's prompts or token masks over one prompt, the resulting candidate logits or values, and the append-only
//! store and shards that make long runs resumable and splittable.

pub mod head_players;
pub mod resumable;
pub mod shard;
pub mod store;
pub mod task_scorer;
pub mod token_players;
pub mod token_scorer;

/// Most forward-pass jobs a scorer hands the model in one call: enough for each prompt's clean run
/// (layer reuse) to serve many masks, few enough to bound the memory of jobs and logits.
pub(crate) const JOBS_PER_CALL: usize = 4096;

pub use head_players::{parse_layer_range, HeadPlayers};
pub use resumable::evaluate_resumable;
pub use shard::Shard;
pub use store::ValueStore;
pub use task_scorer::TaskScorer;
pub use token_players::{token_players, Granularity, TokenPlayer};
pub use token_scorer::TokenScorer;
