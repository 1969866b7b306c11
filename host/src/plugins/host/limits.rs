//! The limits context: the instance's memory cap (checked by wasmtime through
//! [`wasmtime::Store::limiter`]) and the request's deadline (checked by host calls).

use std::time::{Duration, Instant};

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

/// How much an instance may use, and until when.
pub struct LimitsCtx {
    /// Memory and instance limits, checked by wasmtime.
    pub memory: MemoryLimits,
    /// When the request must be answered by.
    pub deadline: Instant,
}

/// The memory a plugin may use while it describes itself.
const DESCRIBE_MEMORY_BYTES: usize = 64 << 20;
/// The time a plugin has to describe itself.
const DESCRIBE_TIME: Duration = Duration::from_secs(5);

impl LimitsCtx {
    /// Limits of a request: `memory_bytes` of linear memory, answered by `deadline`.
    pub fn new(memory_bytes: usize, deadline: Instant) -> LimitsCtx {
        LimitsCtx {
            memory: MemoryLimits::new(
                StoreLimitsBuilder::new()
                    .memory_size(memory_bytes)
                    .instances(20)
                    .tables(20)
                    .memories(4)
                    .trap_on_grow_failure(true)
                    .build(),
            ),
            deadline,
        }
    }

    /// Limits of the one `describe` call at load time.
    pub fn describing() -> LimitsCtx {
        LimitsCtx {
            memory: MemoryLimits::new(
                StoreLimitsBuilder::new()
                    .memory_size(DESCRIBE_MEMORY_BYTES)
                    .trap_on_grow_failure(true)
                    .build(),
            ),
            deadline: Instant::now() + DESCRIBE_TIME,
        }
    }

    /// True once the deadline has passed.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// True when waiting `pause` before a retry still leaves the request as much time
    /// again to use.
    pub fn fits_pause(&self, pause: Duration) -> bool {
        self.deadline.saturating_duration_since(Instant::now()) > pause * 2
    }
}

/// wasmtime's [`StoreLimits`], noting the size of the largest memory the store's
/// instances have grown to (a kept instance is not kept past half its cap, see
/// [`crate::plugins::runtime::Kept`]).
pub struct MemoryLimits {
    limits: StoreLimits,
    /// The largest size a memory was allowed to grow to, in bytes.
    pub largest: usize,
}

impl MemoryLimits {
    fn new(limits: StoreLimits) -> MemoryLimits {
        MemoryLimits { limits, largest: 0 }
    }
}

impl ResourceLimiter for MemoryLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.largest = self.largest.max(desired);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// The error a host call raises when the request ran out of time inside it.
#[derive(Debug)]
pub struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request's deadline passed")
    }
}

impl std::error::Error for DeadlineExceeded {}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use wasmtime::ResourceLimiter;

    use super::LimitsCtx;

    #[test]
    fn the_deadline_expires_and_a_retry_must_leave_time() {
        let past = LimitsCtx::new(1 << 20, Instant::now() - Duration::from_millis(1));
        assert!(past.expired());
        assert!(!past.fits_pause(Duration::from_millis(1)));
        let soon = LimitsCtx::new(1 << 20, Instant::now() + Duration::from_millis(300));
        assert!(!soon.expired());
        assert!(
            !soon.fits_pause(Duration::from_millis(250)),
            "a 250 ms pause leaves less than 250 ms after it"
        );
        assert!(soon.fits_pause(Duration::from_millis(10)));
    }

    #[test]
    fn memory_growth_past_the_cap_traps() {
        let mut limits = LimitsCtx::new(2 << 20, Instant::now() + Duration::from_secs(1));
        assert!(
            limits
                .memory
                .memory_growing(1 << 20, 2 << 20, None)
                .unwrap()
        );
        assert_eq!(
            limits.memory.largest,
            2 << 20,
            "the size it grew to is noted"
        );
        // `trap_on_grow_failure`: growing past the cap is an error, not a -1 the plugin
        // could ignore.
        assert!(
            limits
                .memory
                .memory_growing(2 << 20, (2 << 20) + 65536, None)
                .is_err()
        );
        assert_eq!(limits.memory.largest, 2 << 20, "a refused size is not");
    }

    #[test]
    fn describing_has_a_deadline_and_a_memory_cap() {
        let mut limits = LimitsCtx::describing();
        assert!(!limits.expired());
        assert!(
            limits
                .memory
                .memory_growing(0, super::DESCRIBE_MEMORY_BYTES + 1, None)
                .is_err()
        );
    }
}
