//! What a hostile HTTP/2 client may cost before it is sent away (RFC 9113 §10.5): the limits
//! both engines enforce, statuscope's own relay in its frame reader and the pingora engine in
//! the guard its connections are read through.
//!
//! - Frames that make the receiver work without carrying a request — SETTINGS, PING, empty
//!   DATA — draw on a budget of [`CONTROL_BURST`] that every request head or body byte refills
//!   at once and a quiet connection regains at one per [`CONTROL_DRIP`]: a flood is ended with
//!   ENHANCE_YOUR_CALM within a hundred frames, while keepalive pings and the pings a client
//!   sends with its data never run short.
//! - Streams a client resets before their answer (CVE-2023-44487's rapid reset) or opens past
//!   the concurrency limit are *wasted*; past [`RESET_ALLOWANCE`] of them, and once they are more
//!   than half of what it opened, the connection is sent away.
//! - A header block is bounded in bytes and in [`MAX_CONTINUATIONS`] CONTINUATION frames.

use std::time::{Duration, Instant};

/// Control frames a peer may send in a burst with no request or data between them.
pub const CONTROL_BURST: u32 = 100;
/// How often one more is allowed on a quiet connection (gRPC keepalive pings are far rarer).
pub const CONTROL_DRIP: Duration = Duration::from_millis(100);
/// CONTINUATION frames one header block may take.
pub const MAX_CONTINUATIONS: u32 = 64;
/// Streams reset or refused before a peer is judged by its ratio of them.
pub const RESET_ALLOWANCE: u32 = 100;

/// One client connection's account (see the module docs).
#[derive(Debug)]
pub struct Budget {
    tokens: u32,
    refilled: Option<Instant>,
    /// Streams the peer opened.
    opened: u32,
    /// Streams the peer reset before they were answered, or that were refused.
    wasted: u32,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            tokens: CONTROL_BURST,
            refilled: None,
            opened: 0,
            wasted: 0,
        }
    }
}

impl Budget {
    /// Useful work (a request head, body bytes): the control budget is full again.
    pub fn useful(&mut self) {
        self.tokens = CONTROL_BURST;
    }

    /// A stream the peer opened.
    pub fn opened(&mut self) {
        self.opened += 1;
        self.useful();
    }

    /// A control frame at `now`; `false` once the budget is spent.
    pub fn control(&mut self, now: Instant) -> bool {
        let since = *self.refilled.get_or_insert(now);
        let dripped =
            (now.saturating_duration_since(since).as_millis() / CONTROL_DRIP.as_millis()) as u32;
        if dripped > 0 {
            self.tokens = (self.tokens + dripped).min(CONTROL_BURST);
            self.refilled = Some(now);
        }
        match self.tokens.checked_sub(1) {
            Some(left) => {
                self.tokens = left;
                true
            }
            None => false,
        }
    }

    /// A stream reset before its answer, or refused; `false` once they outweigh the rest.
    pub fn wasted(&mut self) -> bool {
        self.wasted += 1;
        self.wasted <= RESET_ALLOWANCE || self.wasted * 2 <= self.opened
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_runs_out_and_useful_work_or_time_refills() {
        let mut budget = Budget::default();
        let now = Instant::now();
        for _ in 0..CONTROL_BURST {
            assert!(budget.control(now));
        }
        assert!(!budget.control(now));
        assert!(budget.control(now + CONTROL_DRIP));
        budget.useful();
        for _ in 0..CONTROL_BURST {
            assert!(budget.control(now + CONTROL_DRIP));
        }
    }

    #[test]
    fn wasted_streams_are_judged_against_the_streams_opened() {
        let mut budget = Budget::default();
        for _ in 0..1000 {
            budget.opened();
        }
        for _ in 0..500 {
            assert!(budget.wasted());
        }
        assert!(!budget.wasted());
        let mut rapid = Budget::default();
        for _ in 0..RESET_ALLOWANCE {
            rapid.opened();
            assert!(rapid.wasted());
        }
        rapid.opened();
        assert!(!rapid.wasted());
    }
}
