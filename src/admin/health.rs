//! Readiness as `/readyz` reports it: starting, ready, draining — set by the lifecycle, read
//! by the admin server.

use std::sync::atomic::{AtomicU8, Ordering};

/// Whether the proxy is ready for traffic, as `/readyz` reports it.
#[derive(Debug, Default)]
pub struct Health {
    phase: AtomicU8,
}

const STARTING: u8 = 0;
const READY: u8 = 1;
const DRAINING: u8 = 2;

impl Health {
    /// `Ok` while serving; otherwise the reason `/readyz` gives with its 503.
    pub fn readiness(&self) -> Result<(), &'static str> {
        match self.phase.load(Ordering::Acquire) {
            READY => Ok(()),
            STARTING => Err("starting: the proxy listener is not accepting yet\n"),
            _ => Err("draining: shutdown has begun\n"),
        }
    }

    /// `true` until the proxy port first accepts a connection.
    pub fn is_starting(&self) -> bool {
        self.phase.load(Ordering::Acquire) == STARTING
    }

    /// The proxy port accepts connections: `/readyz` turns 200 (unless a drain began).
    pub fn mark_ready(&self) {
        // Never undo a drain that began while the probe was still waiting.
        let _ = self
            .phase
            .compare_exchange(STARTING, READY, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Shutdown has begun: `/readyz` turns 503 for good.
    pub fn begin_drain(&self) {
        self.phase.store(DRAINING, Ordering::Release);
    }
}
