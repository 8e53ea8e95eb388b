//! Memory checks before large allocations: a plan's masks and a decoder's working copies are
//! compared with the memory the machine can still give, so that an oversized budget is an error
//! naming both numbers instead of an abort inside the allocator.

use crate::{Error, Result};

/// Requests below this many bytes are never checked (and never read `/proc/meminfo`).
const ALWAYS_FITS: u128 = 64 << 20;

/// What is assumed available where the system does not say (not Linux, or `/proc/meminfo`
/// unreadable): 4 GiB, a conservative figure for any machine that runs a model.
pub const FALLBACK_AVAILABLE: u64 = 4 << 30;

/// The memory available to a new allocation, in bytes, and where the figure comes from:
/// `MemAvailable` in `/proc/meminfo` on Linux, else [`FALLBACK_AVAILABLE`].
pub fn available_memory() -> (u64, &'static str) {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_available(&text))
        .map_or(
            (
                FALLBACK_AVAILABLE,
                "assumed: this system does not report its free memory",
            ),
            |bytes| (bytes, "MemAvailable in /proc/meminfo"),
        )
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let mut parts = line.split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    let scale = match parts.next() {
        Some("kB") | Some("KB") => 1024,
        None => 1,
        Some(_) => return None,
    };
    value.checked_mul(scale)
}

/// Checks that `needed` bytes (for `what`, e.g. "the plan's 2000 masks over 270 players") fit in
/// the available memory; otherwise [`Error::InsufficientMemory`] naming both figures and `field`,
/// the parameter that sets the size.
pub fn check_fits(needed: u128, what: impl FnOnce() -> String, field: &str) -> Result<()> {
    if needed <= ALWAYS_FITS {
        return Ok(());
    }
    let (available, source) = available_memory();
    if needed <= u128::from(available) {
        return Ok(());
    }
    Err(Error::InsufficientMemory {
        what: what(),
        field: field.to_string(),
        needed: u64::try_from(needed).unwrap_or(u64::MAX),
        available,
        origin: source.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_read_in_kilobytes() {
        let text =
            "MemTotal:       16000000 kB\nMemFree:         100 kB\nMemAvailable:    2048 kB\n";
        assert_eq!(mem_available(text), Some(2048 * 1024));
        assert_eq!(mem_available("MemFree: 1 kB\n"), None);
        assert_eq!(mem_available("MemAvailable: x kB\n"), None);
        assert_eq!(
            mem_available("MemAvailable: 99999999999999999999 kB\n"),
            None
        );
        let (bytes, source) = available_memory();
        assert!(bytes > 0 && !source.is_empty());
    }

    #[test]
    fn small_requests_pass_and_impossible_ones_name_both_figures() {
        assert!(check_fits(1 << 20, || unreachable!(), "budget").is_ok());
        let err = check_fits(u128::MAX, || "the plan's masks".into(), "budget").unwrap_err();
        match &err {
            Error::InsufficientMemory {
                field,
                needed,
                available,
                ..
            } => {
                assert_eq!((field.as_str(), *needed), ("budget", u64::MAX));
                assert!(*available > 0);
            }
            other => panic!("expected InsufficientMemory, got {other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("the plan's masks")
                && text.contains("more than 18 EB")
                && text.contains("available"),
            "{text}"
        );
    }
}
