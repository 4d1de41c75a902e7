//! glibc's `malloc_trim` behind a safe function. doorward forbids unsafe
//! code; this one foreign call lives here instead, where it is easy to
//! audit.
//!
//! glibc's `free` gives memory back to the OS only from the top of each
//! heap, so after a connection flood the freed buffers in the middle of
//! the per-thread arenas stay resident. `malloc_trim` releases every free
//! page of every arena (it `madvise`s them away).

/// Releases the allocator's free memory to the OS; true if any was. A no-op
/// (false) where the C library is not glibc.
pub fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes only a padding size and works on the
        // allocator's own state, locking each arena as it goes; it is safe
        // to call from any thread at any time.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn trimming_after_freeing_does_not_disturb_live_memory() {
        let live: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 4096]).collect();
        let freed: Vec<Vec<u8>> = (0..4096).map(|_| vec![1u8; 4096]).collect();
        drop(freed);
        super::trim();
        assert!(live.iter().enumerate().all(|(i, v)| v.iter().all(|&b| b == i as u8)));
    }
}
