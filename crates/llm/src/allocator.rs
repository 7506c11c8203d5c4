//! The C allocator's settings a process running the model wants (glibc on Linux).
//!
//! A forward pass allocates its tensors afresh and frees them at its end: a block's keys and
//! values (the whole cache, a megabyte or more per block), the feed-forward products, the
//! logits — tens of megabytes a pass. glibc serves the larger ones with `mmap` (its threshold
//! moves up to 32 MB as such blocks are freed) and gives the top of its heap back to the system
//! once twice that threshold is free, so every pass faulted the same memory in again, zeroed page by
//! page. Kept instead, a decoding step of the 1.5B model took 47 ms rather than 67, a pass of
//! 8 tokens 131 rather than 164 (`bench/llm.sh --passes`, same run), at the same peak memory:
//! what a pass frees, the next one uses again.

/// Allocations up to this size come from the heap, not from `mmap` (bytes).
const MMAP_THRESHOLD: i32 = 4 << 20;
/// Free memory at the top of the heap is given back to the system beyond this (bytes).
const TRIM_THRESHOLD: i32 = 256 << 20;

/// Sets the allocator to keep the memory a pass frees for the next one ([`MMAP_THRESHOLD`],
/// [`TRIM_THRESHOLD`]), unless `GLIBC_TUNABLES` already sets glibc's malloc (the operator's
/// choice stands). Call it first thing in `main`, before any thread starts. Returns whether it
/// set them (never on other C libraries or systems).
pub fn keep_freed_memory() -> bool {
    let tuned = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc."));
    !tuned && set()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set() -> bool {
    // SAFETY: `mallopt` only changes the allocator's parameters; glibc takes its own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_takes_the_settings() {
        // mallopt answers 1 when it accepts a parameter, so a wrong name or value fails here.
        assert_eq!(super::set(), cfg!(all(target_os = "linux", target_env = "gnu")));
    }
}
