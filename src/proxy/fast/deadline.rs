//! One timer per connection, moved lazily.
//!
//! Each wait of the fast engine has a deadline (the next request's first byte, the rest of a
//! head, a write, the upstream's answer, the whole response), and most waits end long before
//! it. Registering a timer per wait would cost two timer-wheel updates per wait — and, each
//! time the new deadline is the runtime's earliest, a write to wake the runtime's own thread
//! (tokio recomputes its sleep that way). So each connection keeps one timer, armed at or
//! before the deadline of whatever it waits for: a wait whose deadline is later leaves the
//! timer alone; when the timer goes off early, the wait finds its own deadline still ahead
//! and re-arms for it. The wheel is touched about once per timeout period per connection, and
//! an idle connection wakes once, at its keep-alive deadline.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

/// When a read must end: `read_timeout` from now, or the response's own deadline if sooner.
pub fn read_deadline(read_timeout: Duration, response_deadline: Option<Instant>) -> Instant {
    let read = Instant::now() + read_timeout;
    response_deadline.map_or(read, |limit| limit.min(read))
}

/// A connection's timer (see the module docs).
#[derive(Default)]
pub struct Deadline {
    /// Made at the first wait that needs it: a connection whose waits all end at once never
    /// allocates one.
    sleep: Option<Pin<Box<Sleep>>>,
    /// When the timer goes off: never later than the deadline of the current wait.
    armed: Option<Instant>,
}

impl Deadline {
    /// Runs `future` until the deadline `deadline` gives, if any: `None` when the deadline came
    /// first. The deadline is asked for only if the future has to wait (most do not), which
    /// spares a clock read.
    pub async fn run<F: Future>(
        &mut self,
        deadline: impl FnOnce() -> Option<Instant>,
        future: F,
    ) -> Option<F::Output> {
        let mut future = pin!(future);
        let mut deadline = Some(deadline);
        let mut at = None;
        poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            if let Some(deadline) = deadline.take() {
                at = deadline();
            }
            if at.is_some_and(|at| self.poll_passed(cx, at)) {
                Poll::Ready(None)
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// For a wait polled by hand: whether `deadline` has passed; if not, the task is woken by
    /// then.
    pub fn poll_passed(&mut self, cx: &mut Context<'_>, deadline: Instant) -> bool {
        if self.armed.is_none_or(|armed| deadline < armed) {
            self.arm(deadline);
        }
        loop {
            let Some(sleep) = self.sleep.as_mut() else {
                return false;
            };
            if sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            if self.armed.is_some_and(|armed| armed >= deadline) {
                return true;
            }
            // Armed for an earlier wait: this one's deadline is still ahead.
            self.arm(deadline);
        }
    }

    fn arm(&mut self, deadline: Instant) {
        match &mut self.sleep {
            Some(sleep) => sleep.as_mut().reset(deadline.into()),
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline.into()))),
        }
        self.armed = Some(deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn worker() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn a_wait_ends_at_its_own_deadline_whatever_the_timer_was_armed_for() {
        worker().block_on(async {
            let mut deadline = Deadline::default();
            let start = Instant::now();
            let never = std::future::pending::<()>;
            // A short wait arms the timer early; the later, longer wait must not end then.
            let short = start + Duration::from_millis(10);
            assert_eq!(deadline.run(|| Some(short), never()).await, None);
            let first = start + Duration::from_millis(20);
            let long = start + Duration::from_millis(60);
            assert_eq!(deadline.run(|| Some(first), async {}).await, Some(()));
            assert_eq!(deadline.run(|| Some(long), never()).await, None);
            assert!(Instant::now() >= long, "ended early");
            let sooner = Instant::now() + Duration::from_millis(5);
            assert_eq!(deadline.run(|| Some(sooner), never()).await, None);
            assert!(Instant::now() >= sooner);
        });
    }
}
