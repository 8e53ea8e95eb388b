//! Warnings about spectra that explain too little, with the flags that would help.

use spex::run::{Lever, LowFaithfulness};

/// Prints one warning per failed faithfulness check on stderr.
pub fn warn_low_faithfulness(warnings: &[LowFaithfulness]) {
    for w in warnings {
        match w.unseen {
            None => eprintln!(
                "warning: the decoded spectrum explains only R^2 = {:.3} of the queried values: its interactions are unreliable; {}",
                w.r2,
                levers(&w.levers)
            ),
            Some(count) => eprintln!(
                "warning: on {count} unseen masks the spectrum explains only R^2 = {:.3}: its interactions do not predict the model beyond the sampled masks; {}",
                w.r2,
                levers(&w.levers)
            ),
        }
    }
}

/// The levers as advice in flags, comma separated.
fn levers(levers: &[Lever]) -> String {
    let text: Vec<&str> = levers
        .iter()
        .map(|l| match l {
            Lever::Budget => "raise --budget",
            Lever::MoreQuestions => "average over more questions",
            Lever::CentredRefit => "re-decode with --refit centred (same folder, seconds)",
            Lever::KeepNearFull => "sample nearer the full model (--keep-prob 0.9)",
        })
        .collect();
    text.join(", ")
}
