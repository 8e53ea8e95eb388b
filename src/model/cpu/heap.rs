//! glibc's allocator kept from handing tensor buffers back to the system between passes.
//!
//! A forward pass allocates and frees buffers of a few MiB per product (activations, products'
//! outputs). By default glibc serves those with fresh `mmap`s and trims its heaps after each free,
//! so every pass faults its buffers' pages in again: about 40 % of the page faults of a cloze
//! evaluation, and the kernel's page clearing, measured with `perf stat -e page-faults`.

/// Largest request (bytes) glibc may serve from its heaps rather than a fresh `mmap`: glibc's own
/// ceiling for the threshold on 64-bit targets (32 MiB).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Free memory (bytes) at a heap's top before glibc returns it to the system: 1 GiB, more than
/// a pass's working set, so freed buffers are reused by the next pass.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 1 << 30;

/// Makes this process's allocator keep freed buffers for reuse (glibc on Linux: requests up to
/// 32 MiB from the heaps, heaps trimmed only past 1 GiB free). Process-wide, so the library never
/// calls it itself: the command line, the benches and the Python module do, once at start.
/// Returns whether the settings took (false on other C libraries, where it does nothing).
pub fn keep_freed_buffers() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; it is safe to call at any time.
        let mmap = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        let trim = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) };
        mmap == 1 && trim == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_settings() {
        assert!(super::keep_freed_buffers());
    }
}
