//! When to probe next: pure arithmetic over durations (time and randomness are parameters).

use std::time::Duration;

/// The longest a failing server waits between probes (unless the configured interval is longer).
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// Jitter spreads probes by ±10 % so servers configured together do not probe in lockstep.
pub const JITTER: f64 = 0.10;

/// The delay before the next periodic probe.
///
/// - `failures == 0` (last probe healthy): `interval`.
/// - `failures >= 1`: `interval × 2^(failures − 1)`, capped at `max(interval, MAX_BACKOFF)`, so a
///   failing server is probed less and less often, but never less than every 15 minutes.
///
/// `jitter` in `[0, 1)` (a random draw) scales the result into `[0.9, 1.1) ×`; the cap holds
/// after jitter too.
pub fn next_delay(interval: Duration, failures: u32, jitter: f64) -> Duration {
    let cap = interval.max(MAX_BACKOFF);
    let base = match failures {
        0 => interval,
        f => {
            let factor = 1u32
                .checked_shl(f.saturating_sub(1).min(20))
                .unwrap_or(u32::MAX);
            interval.checked_mul(factor).unwrap_or(cap).min(cap)
        }
    };
    let scale = 1.0 - JITTER + 2.0 * JITTER * jitter.clamp(0.0, 1.0);
    base.mul_f64(scale).min(cap)
}

/// The first probe of a monitor: right away, except when many start together (broker start),
/// where `index` spreads them by 250 ms each so the first round is not one burst.
pub fn initial_delay(index: usize) -> Duration {
    Duration::from_millis(250 * index.min(40) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn a_healthy_server_waits_the_interval_with_ten_percent_jitter() {
        assert_eq!(next_delay(MIN, 0, 0.5), MIN);
        assert_eq!(next_delay(MIN, 0, 0.0), Duration::from_secs(54));
        assert!(next_delay(MIN, 0, 0.999_999) < Duration::from_secs(66));
        assert!(next_delay(MIN, 0, 0.999_999) > Duration::from_secs(65));
    }

    #[test]
    fn a_failing_server_backs_off_exponentially_up_to_the_bound() {
        let d: Vec<u64> = (1..=6).map(|f| next_delay(MIN, f, 0.5).as_secs()).collect();
        assert_eq!(d, vec![60, 120, 240, 480, 900, 900]);
        assert_eq!(next_delay(MIN, u32::MAX, 0.5), MAX_BACKOFF);
        assert_eq!(
            next_delay(MIN, 40, 0.999),
            MAX_BACKOFF,
            "jitter never exceeds the bound"
        );
    }

    #[test]
    fn an_interval_longer_than_the_bound_is_kept_for_failing_servers() {
        let day = Duration::from_secs(86_400);
        assert_eq!(next_delay(day, 3, 0.5), day);
        assert_eq!(
            next_delay(Duration::from_secs(5), 1, 0.5),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn out_of_range_jitter_is_clamped() {
        assert_eq!(next_delay(MIN, 0, -3.0), Duration::from_secs(54));
        assert_eq!(next_delay(MIN, 0, 7.0), Duration::from_secs(66));
    }

    #[test]
    fn first_probes_are_spread_but_bounded() {
        assert_eq!(initial_delay(0), Duration::ZERO);
        assert_eq!(initial_delay(2), Duration::from_millis(500));
        assert_eq!(initial_delay(1000), Duration::from_secs(10));
    }
}
