//! Progress bars on stderr: drawn on a terminal, hidden when stderr is piped or when not asked for.

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
