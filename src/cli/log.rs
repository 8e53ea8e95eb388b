//! The library's log lines (`tracing`) on stderr as plain text: `warning: ...` for warnings, the
//! message alone for progress notes. `SPEX_LOG` (an `EnvFilter` directive) changes what is shown.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Formats an event as its message, behind `warning: ` or `error: ` for those levels.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        match *event.metadata().level() {
            Level::ERROR => write!(writer, "error: ")?,
            Level::WARN => write!(writer, "warning: ")?,
            _ => {}
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Shows spex's notes and warnings, and other crates' warnings, on stderr.
pub fn init() {
    let filter = EnvFilter::try_from_env("SPEX_LOG")
        .unwrap_or_else(|_| EnvFilter::new("warn,spex=info,spex_sparse=info"));
    // A second call (tests calling `run` twice in one process) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .event_format(Plain)
        .try_init();
}
