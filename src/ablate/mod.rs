//! Players and scorers: masks over players (heads of a model, tokens of a prompt) turned into
//! batched masked forward passes and one value per mask.

pub mod head_players;
mod jobs;
pub mod task_scorer;
pub mod token_players;
pub mod token_scorer;

pub use head_players::{parse_layer_range, HeadPlayers};
pub use task_scorer::TaskScorer;
pub use token_players::{token_players, Granularity, TokenPlayer};
pub use token_scorer::TokenScorer;
