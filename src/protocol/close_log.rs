//! The one log line of a connection closed for a protocol error (malformed, unsupported or
//! unauthenticated traffic) or refused on accept (connection limits), limited per shard: a client that reconnects and sends garbage
//! in a loop must not fill the disk with warnings. At most `LINES_PER_SECOND` lines a
//! second per shard; the lines held back are counted, and the next line written says how
//! many (`suppressed`). Every such close is also counted in the shard's metrics.

use crate::error::Fault;
use crate::shard::Shard;
use std::cell::Cell;
use std::time::{Duration, Instant};

/// Lines one shard writes per second at most.
const LINES_PER_SECOND: u32 = 10;

/// A shard's budget of close lines.
pub struct CloseLog {
    second_began: Cell<Option<Instant>>,
    written: Cell<u32>,
    suppressed: Cell<u64>,
}

impl Default for CloseLog {
    fn default() -> Self {
        Self {
            second_began: Cell::new(None),
            written: Cell::new(0),
            suppressed: Cell::new(0),
        }
    }
}

impl CloseLog {
    /// Whether a line may be written at `now`: with how many were held back before it.
    pub fn admit(&self, now: Instant) -> Option<u64> {
        let new_second = self
            .second_began
            .get()
            .is_none_or(|began| now.duration_since(began) >= Duration::from_secs(1));
        if new_second {
            self.second_began.set(Some(now));
            self.written.set(0);
        }
        if self.written.get() >= LINES_PER_SECOND {
            self.suppressed.set(self.suppressed.get() + 1);
            return None;
        }
        self.written.set(self.written.get() + 1);
        Some(self.suppressed.replace(0))
    }
}

/// The one warning for a connection closed for what its client sent, within the shard's
/// rate, and its count in the shard's metrics.
pub fn closed_for_protocol_error(
    shard: &Shard,
    peer: &str,
    error: &dyn std::fmt::Display,
    fault: Fault,
) {
    shard.metrics.protocol_error();
    if let Some(suppressed) = shard.close_log.admit(Instant::now()) {
        tracing::warn!(%peer, %error, ?fault, suppressed, "closing connection");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_past_the_rate_are_counted_and_reported_with_the_next() {
        let log = CloseLog::default();
        let start = Instant::now();
        for _ in 0..LINES_PER_SECOND {
            assert_eq!(log.admit(start), Some(0));
        }
        assert_eq!(log.admit(start), None);
        assert_eq!(log.admit(start + Duration::from_millis(999)), None);
        assert_eq!(log.admit(start + Duration::from_secs(1)), Some(2));
        assert_eq!(log.admit(start + Duration::from_secs(1)), Some(0));
    }
}
