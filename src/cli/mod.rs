//! The commands: one module per subcommand (parse its flags into the library's options, call the
//! job in `spex::run`, print), the flag groups they share, and the mapping of library errors to
//! flags.

pub mod ablation_args;
pub mod advice;
pub mod design_args;
pub mod eval;
pub mod flags;
pub mod head_args;
pub mod heads;
pub mod log;
pub mod logits;
pub mod model_args;
pub mod plan;
pub mod prune;
pub mod run;
pub mod solve;
pub mod status;
pub mod task_args;
pub mod tokens;
