//! The one clock read. Only I/O-side code calls it: pure logic (classification, validation,
//! code and state bookkeeping, cache lifetimes, backoff) takes `now` as a parameter, so its
//! tests need no clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds now (0 on a clock set before 1970, which then reads as "long expired").
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
