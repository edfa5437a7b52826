//! Fixed-window counting for the gateway's limits (pure: `now` is a parameter, in Unix
//! seconds): the registration budget and the failed token requests each client may make.

use std::collections::HashMap;

/// Events counted in the current window of `length` seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// The window's number (`now / length`).
    index: u64,
    count: u32,
}

impl Window {
    /// The events of the window holding `now` (earlier windows count nothing).
    pub fn count(&self, now: u64, length: u64) -> u32 {
        if self.index == now / length {
            self.count
        } else {
            0
        }
    }

    /// Counts one event at `now`; returns the count of its window, this one included.
    pub fn hit(&mut self, now: u64, length: u64) -> u32 {
        let count = self.count(now, length).saturating_add(1);
        *self = Window {
            index: now / length,
            count,
        };
        count
    }

    /// Seconds from `now` until the window holding `now` ends.
    pub fn remaining(now: u64, length: u64) -> u64 {
        length - now % length
    }
}

/// Failed token requests a client may make per window; beyond them its requests are refused
/// until the window ends, so neither guessing nor a flood of bad requests gets far.
pub const TOKEN_FAILURES: u32 = 20;
/// The window of [`TOKEN_FAILURES`], in seconds.
pub const TOKEN_WINDOW: u64 = 60;
/// Clients tracked at most (registered clients are capped lower; this only bounds memory).
const MAX_TRACKED: usize = 4096;

/// Failed token requests per client.
#[derive(Debug, Default)]
pub struct TokenFailures {
    clients: HashMap<String, Window>,
}

impl TokenFailures {
    /// `Err(seconds to wait)` when `client` spent its failures of the current window.
    pub fn check(&self, client: &str, now: u64) -> Result<(), u64> {
        match self.clients.get(client) {
            Some(w) if w.count(now, TOKEN_WINDOW) >= TOKEN_FAILURES => {
                Err(Window::remaining(now, TOKEN_WINDOW))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed request of `client`.
    pub fn failed(&mut self, client: &str, now: u64) {
        if self.clients.len() >= MAX_TRACKED && !self.clients.contains_key(client) {
            self.clients.retain(|_, w| w.count(now, TOKEN_WINDOW) > 0);
            if self.clients.len() >= MAX_TRACKED {
                self.clients.clear();
            }
        }
        self.clients
            .entry(client.to_string())
            .or_default()
            .hit(now, TOKEN_WINDOW);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_counts_its_own_events_and_forgets_earlier_ones() {
        let mut w = Window::default();
        assert_eq!(w.hit(120, 60), 1);
        assert_eq!(w.hit(179, 60), 2);
        assert_eq!(w.count(179, 60), 2);
        assert_eq!(w.count(180, 60), 0);
        assert_eq!(w.hit(180, 60), 1);
        assert_eq!(Window::remaining(125, 60), 55);
    }

    #[test]
    fn a_client_is_refused_after_its_failures_until_the_window_ends_and_others_are_not() {
        let mut f = TokenFailures::default();
        for _ in 0..TOKEN_FAILURES {
            assert_eq!(f.check("a", 600), Ok(()));
            f.failed("a", 600);
        }
        assert_eq!(f.check("a", 610), Err(50));
        assert_eq!(f.check("b", 610), Ok(()), "another client is not affected");
        assert_eq!(f.check("a", 660), Ok(()), "a new window starts afresh");
    }

    #[test]
    fn tracking_stays_bounded_under_a_flood_of_client_ids() {
        let mut f = TokenFailures::default();
        for i in 0..(MAX_TRACKED * 3) {
            f.failed(&format!("c{i}"), 600);
        }
        assert!(f.clients.len() <= MAX_TRACKED);
    }
}
