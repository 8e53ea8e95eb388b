//! The jobs, as library functions with plain option structs: the CLI parses its flags into these
//! and calls them, and so can any Rust program (or the Python package).
//!
//! The one-shot pipeline behind `spex heads` and `spex tokens`:
//! [`Design`] -> [`plan_dir`] (plan.json, masks.npy) -> [`evaluate`] (batched value function into
//! the resumable [`ValueStore`]) -> [`held_out`] (R^2 on unseen masks) -> [`decode()`] (spectrum and
//! index) -> report files. The same steps split across machines are `spex plan`
//! ([`plan_dir::write_plan`]), `spex run --shard` ([`shard::run_shard`]) and `spex solve`
//! ([`decode::decode`]); [`cluster`] runs the shards as a Slurm array or a Kubernetes Indexed Job,
//! and [`status`] tells how far they got.

pub mod ablation;
pub mod accuracy;
pub mod cluster;
pub mod compare;
pub mod decode;
pub mod design;
pub mod evaluate;
pub mod groups;
pub mod head_values;
pub mod heads;
pub mod held_out;
pub mod inputs;
pub mod interval;
pub mod one_shot;
pub mod plan_dir;
pub mod prune;
mod prune_plans;
pub mod shard;
pub mod status;
pub mod store;
pub mod tokens;

pub use ablation::Ablation;
pub use decode::{decode, DecodeOptions, Decoded, Lever, LowFaithfulness, Refit};
pub use design::{Design, Method};
pub use evaluate::{evaluate_resumable, evaluate_stored};
pub use head_values::{check_players, HeadValueOptions, HeadValues};
pub use heads::{heads, HeadsRun};
pub use one_shot::{one_shot, OneShot, OneShotOptions};
pub use plan_dir::read_plan;
pub use prune::{prune, PruneOptions, PruneReport};
pub use shard::{run_shard, Shard};
pub use store::ValueStore;
pub use tokens::{tokens, TokenOptions, TokensRun};
