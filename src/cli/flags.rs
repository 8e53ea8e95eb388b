//! Library errors name fields (`keep_probability`, `layers`); the command line names the flag
//! that sets each, and turns the library's structured mismatches into advice in flags.

use spex::model::ModelError;

/// The flag that sets each field the library names in its errors.
const FLAGS: &[(&str, &str)] = &[
    ("baseline_token", "--baseline-token"),
    ("budget", "--budget"),
    ("decoder", "--decoder"),
    ("degree", "--degree"),
    ("device", "--device"),
    ("dtype", "--dtype"),
    ("format", "--format"),
    ("head_mask", "--head-mask"),
    ("held_out", "--held-out"),
    ("held_out_plan", "--held-out-plan"),
    ("held_out_values", "--held-out-values"),
    ("index", "--index"),
    ("keep_probability", "--keep-prob"),
    ("layers", "--layers"),
    ("groups", "--groups"),
    ("train_offset", "--train-offset"),
    ("levels", "--levels"),
    ("max_degree", "--degree"),
    ("max_order", "--max-order"),
    ("mean_prompts", "--mean-prompts"),
    ("method", "--method"),
    ("model", "--model"),
    ("prompt", "--prompt"),
    ("refit", "--refit"),
    ("seed", "--seed"),
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
        Some(Found::Field(field)) => match flag_of(&field) {
            Some(flag) => err.context(flag),
            None => err,
        },
        None => err,
    }
}

/// The flag that sets `field`, if one does.
fn flag_of(field: &str) -> Option<&'static str> {
    FLAGS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, flag)| *flag)
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
            spex::Error::SpectrumPlayersMismatch {
                found,
                heads_per_layer,
                ..
            } => Some(Found::Advice(match heads_per_layer {
                &h if h > 0 && found % h == 0 => format!(
                    "pass the --layers of the `spex heads` run that wrote it ({} layer(s) of {h} heads)",
                    found / h
                ),
                _ => "it was not decoded over this model's heads".to_string(),
            })),
            spex::Error::PlanMismatch { field, theirs, .. } => {
                Some(Found::Advice(match flag_of(field) {
                    Some(flag) => format!("the folder's plan was made with {flag} {theirs}"),
                    None => format!("the folder's plan has {field} = {theirs}"),
                }))
            }
            _ => None,
        };
    }
    if let Some(e) = err.downcast_ref::<spex::sparse::Error>() {
        return match e {
            spex::sparse::Error::InvalidArgument { field, .. } => Some(Found::Field(field.clone())),
            spex::sparse::Error::InsufficientMemory { field, .. } => {
                Some(Found::Field(field.clone()))
            }
            spex::sparse::Error::BudgetTooSmall { .. } => Some(Found::Field("budget".into())),
            spex::sparse::Error::ValueFunction(inner) => found(inner.as_ref()),
            _ => None,
        };
    }
    match err.downcast_ref::<ModelError>() {
        Some(ModelError::InvalidInput { arg, .. }) => Some(Found::Field(arg.clone())),
        _ => None,
    }
}
