//! Library errors name fields (`keep_probability`, `layers`); the command line names the flag
//! that sets each, and turns the library's structured mismatches into advice in flags.

use spex::model::ModelError;

/// The flag that sets each field the library names in its errors.
const FLAGS: &[(&str, &str)] = &[
    ("baseline_token", "--baseline-token"),
    ("budget", "--budget"),
    ("degree", "--degree"),
    ("device", "--device"),
    ("dtype", "--dtype"),
    ("format", "--format"),
    ("head_mask", "--head-mask"),
    ("held_out_plan", "--held-out-plan"),
    ("held_out_values", "--held-out-values"),
    ("index", "--index"),
    ("keep_probability", "--keep-prob"),
    ("layers", "--layers"),
    ("levels", "--levels"),
    ("max_order", "--max-order"),
    ("mean_prompts", "--mean-prompts"),
    ("prompt", "--prompt"),
    ("refit", "--refit"),
    ("shard", "--shard"),
    ("shots", "--shots"),
    ("split", "--split"),
    ("subjects", "--subjects"),
    ("target", "--target"),
    ("task", "--task"),
    ("value", "--value"),
];

/// What an error says that the command line can put in flags.
enum Found {
    /// The field at fault.
    Field(String),
    /// Advice in flags, appended to the message.
    Advice(String),
}

/// `err` with the flag of the field it names in front, or advice in flags for the mismatches
/// the library reports as structures.
pub fn name_flags(err: anyhow::Error) -> anyhow::Error {
    match err.chain().find_map(found) {
        Some(Found::Advice(advice)) => anyhow::anyhow!("{err:#}; {advice}"),
        Some(Found::Field(field)) => match FLAGS.iter().find(|(name, _)| *name == field) {
            Some((_, flag)) => err.context(*flag),
            None => err,
        },
        None => err,
    }
}

/// The field or advice in one link of an error chain, looking through the wrappers whose
/// display is their inner error's.
fn found(err: &(dyn std::error::Error + 'static)) -> Option<Found> {
    if let Some(e) = err.downcast_ref::<spex::Error>() {
        return match e {
            spex::Error::InvalidArgument { field, .. } => Some(Found::Field(field.clone())),
            spex::Error::Sparse(inner) => found(inner),
            spex::Error::Model(inner) => found(inner),
            spex::Error::PlayersMismatch { expected, .. } => Some(Found::Advice(format!(
                "plan with --players {expected} (or choose --layers to match)"
            ))),
            spex::Error::LayersMismatch { theirs, .. } => {
                Some(Found::Advice(format!("pass --layers {theirs}")))
            }
            _ => None,
        };
    }
    if let Some(e) = err.downcast_ref::<spex::sparse::Error>() {
        return match e {
            spex::sparse::Error::InvalidArgument { field, .. } => Some(Found::Field(field.clone())),
            spex::sparse::Error::ValueFunction(inner) => found(inner.as_ref()),
            _ => None,
        };
    }
    match err.downcast_ref::<ModelError>() {
        Some(ModelError::InvalidInput { arg, .. }) => Some(Found::Field(arg.clone())),
        _ => None,
    }
}
