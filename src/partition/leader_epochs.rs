//! A partition's leader-epoch history (KIP-101, KIP-320): which epoch each offset was
//! written in. Kafka bumps the epoch when leadership moves; tidegate has one leader per
//! partition and bumps it only when the storage truncated the log (SMQ restarted and lost
//! records it had acknowledged, then handed their offsets out again). A client that checks
//! epochs (the Java consumer, librdkafka) then learns from OffsetForLeaderEpoch where its
//! epoch's log ends and that what it read past there is gone, instead of reading other
//! records at offsets it was promised.
//!
//! Every partition starts in epoch 0 at offset 0; the memory backend never leaves it.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The first offset written in an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochStart {
    pub epoch: i32,
    pub start_offset: i64,
    /// The epoch's first record of the log, when that is past `start_offset`: the offsets
    /// between hold records the storage kept of a batch it lost the rest of. Kafka batches
    /// are all or nothing, so that batch was answered as lost and its producer sent it
    /// again; served, the kept part would be read twice. Absent (most epochs): no gap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records_from: Option<i64>,
}

/// Epoch 0 from offset 0, as every partition begins.
const FIRST: EpochStart = EpochStart {
    epoch: 0,
    start_offset: 0,
    records_from: None,
};

/// "No epoch" in the protocol: a client that does not check, or an epoch not found.
pub const NO_EPOCH: i32 = -1;

/// The epochs of one partition, oldest first, epochs and start offsets both increasing.
/// Empty means epoch 0 alone, so an untruncated partition allocates nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaderEpochs {
    entries: Vec<EpochStart>,
}

impl LeaderEpochs {
    /// A history as stored; `None` unless epochs and start offsets both increase and every
    /// epoch's records start within it.
    pub fn from_entries(entries: Vec<EpochStart>) -> Option<Self> {
        let ordered = entries.windows(2).all(|w| {
            let records_from = w[0].records_from.unwrap_or(w[0].start_offset);
            w[0].epoch < w[1].epoch
                && w[0].start_offset <= w[1].start_offset
                && records_from <= w[1].start_offset
        });
        let starts_within = entries
            .iter()
            .all(|e| e.records_from.is_none_or(|from| from >= e.start_offset));
        let valid = entries.first().is_none_or(|e| e.epoch >= 0) && ordered && starts_within;
        valid.then_some(Self { entries })
    }

    pub fn entries(&self) -> &[EpochStart] {
        match self.entries.is_empty() {
            true => std::slice::from_ref(&FIRST),
            false => &self.entries,
        }
    }

    /// The epoch new records are written in.
    pub fn current(&self) -> i32 {
        self.entries().last().map_or(0, |e| e.epoch)
    }

    /// The epoch the record at `offset` was written in.
    pub fn epoch_at(&self, offset: i64) -> i32 {
        let entries = self.entries();
        let later = entries.partition_point(|e| e.start_offset <= offset);
        entries[later.saturating_sub(1)].epoch
    }

    /// Where the log's next record at or after `offset` can be: `offset`, or past the gap
    /// it falls in (see `EpochStart::records_from`).
    pub fn record_at_or_after(&self, offset: i64) -> i64 {
        let entries = self.entries();
        let later = entries.partition_point(|e| e.start_offset <= offset);
        let within = later.checked_sub(1).map(|i| entries[i]);
        within
            .and_then(|e| e.records_from)
            .map_or(offset, |from| offset.max(from))
    }

    /// Whether the storage's record at `offset` is in a gap: not part of the log.
    pub fn skips(&self, offset: i64) -> bool {
        self.record_at_or_after(offset) != offset
    }

    /// The log was truncated at `offset`: a new epoch starts there, its records from
    /// `records_from` on (`offset` itself, unless part of what was lost is still stored:
    /// `EpochStart::records_from`). As Kafka's epoch cache does, epochs that started at or
    /// past `offset` are dropped (what they held is gone). Returns the new epoch.
    pub fn truncate_at(&mut self, offset: i64, records_from: i64) -> i32 {
        let next = self.current() + 1;
        let start_offset = offset.max(0);
        let mut entries = self.entries().to_vec();
        entries.retain(|e| e.start_offset < start_offset);
        if let Some(last) = entries.last_mut() {
            // A gap the new epoch cuts into ends where it starts.
            last.records_from = last.records_from.map(|from| from.min(start_offset));
        }
        entries.push(EpochStart {
            epoch: next,
            start_offset,
            records_from: (records_from > start_offset).then_some(records_from),
        });
        self.entries = entries;
        next
    }

    /// Checks the epoch a client believes current (Fetch, ListOffsets, OffsetForLeaderEpoch
    /// `current_leader_epoch`): an older one is FENCED_LEADER_EPOCH (it must refresh its
    /// metadata), a newer one UNKNOWN_LEADER_EPOCH; -1 is not checked.
    pub fn check_current(&self, client_epoch: i32) -> Result<()> {
        let current = self.current();
        match client_epoch {
            NO_EPOCH => Ok(()),
            epoch if epoch < current => Err(Error::FencedLeaderEpoch),
            epoch if epoch > current => Err(Error::UnknownLeaderEpoch),
            _ => Ok(()),
        }
    }

    /// OffsetForLeaderEpoch for `requested`: the largest epoch at or below it and the offset
    /// where that epoch ends (the next epoch's start), as Kafka's
    /// `LeaderEpochFileCache::endOffsetFor` answers. `EndOffset::LogEnd` when it is the
    /// current epoch (its end is the log's end); (-1, -1) for -1 or an epoch newer than the
    /// current one.
    pub fn end_offset(&self, requested: i32) -> EndOffset {
        let entries = self.entries();
        let current = self.current();
        if requested == NO_EPOCH || requested > current {
            return EndOffset::Known(NO_EPOCH, -1);
        }
        if requested == current {
            return EndOffset::LogEnd(current);
        }
        let higher = entries.partition_point(|e| e.epoch <= requested);
        let end = entries[higher].start_offset;
        match higher.checked_sub(1) {
            Some(floor) => EndOffset::Known(entries[floor].epoch, end),
            // Older than the first epoch known: Kafka answers the requested epoch itself.
            None => EndOffset::Known(requested, end),
        }
    }
}

/// Where an epoch ends, as OffsetForLeaderEpoch answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndOffset {
    /// This epoch, ending at this offset.
    Known(i32, i64),
    /// This epoch is the current one: it ends at the log's end offset.
    LogEnd(i32),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truncated(at: &[i64]) -> LeaderEpochs {
        let mut epochs = LeaderEpochs::default();
        for &offset in at {
            epochs.truncate_at(offset, offset);
        }
        epochs
    }

    #[test]
    fn an_untouched_partition_is_epoch_0_everywhere() {
        let epochs = LeaderEpochs::default();
        assert_eq!(epochs.current(), 0);
        assert_eq!(epochs.epoch_at(0), 0);
        assert_eq!(epochs.epoch_at(1_000_000), 0);
        assert_eq!(epochs.end_offset(0), EndOffset::LogEnd(0));
        assert_eq!(epochs.end_offset(1), EndOffset::Known(-1, -1));
        assert_eq!(epochs.end_offset(-1), EndOffset::Known(-1, -1));
    }

    #[test]
    fn a_truncation_starts_the_next_epoch_at_its_offset() {
        let epochs = truncated(&[120]);
        assert_eq!(epochs.current(), 1);
        assert_eq!(epochs.epoch_at(119), 0);
        assert_eq!(epochs.epoch_at(120), 1);
        assert_eq!(epochs.end_offset(0), EndOffset::Known(0, 120));
        assert_eq!(epochs.end_offset(1), EndOffset::LogEnd(1));
        assert_eq!(epochs.end_offset(2), EndOffset::Known(-1, -1));
    }

    #[test]
    fn a_requested_epoch_between_known_ones_answers_the_one_below() {
        // Truncated at 100, then at 250: epochs 0 [0,100), 1 [100,250), 2 [250,…).
        let epochs = truncated(&[100, 250]);
        assert_eq!(epochs.end_offset(0), EndOffset::Known(0, 100));
        assert_eq!(epochs.end_offset(1), EndOffset::Known(1, 250));
        assert_eq!(epochs.end_offset(2), EndOffset::LogEnd(2));
    }

    #[test]
    fn a_deeper_truncation_drops_the_epochs_it_cuts_off() {
        // Epoch 1 began at 120; SMQ then lost from 100 on: epoch 1 held nothing that is left.
        let epochs = truncated(&[120, 100]);
        let starts: Vec<_> = epochs
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect();
        assert_eq!(starts, [(0, 0), (2, 100)]);
        // A consumer still in epoch 1 learns that epoch 0's data ends at 100.
        assert_eq!(epochs.end_offset(1), EndOffset::Known(0, 100));
        assert_eq!(epochs.epoch_at(110), 2);
    }

    #[test]
    fn a_truncation_at_offset_0_replaces_epoch_0() {
        let epochs = truncated(&[0]);
        assert_eq!(
            epochs.entries(),
            [EpochStart {
                epoch: 1,
                start_offset: 0,
                records_from: None,
            }]
        );
        // Older than any epoch known: the requested epoch ends where the first known begins.
        assert_eq!(epochs.end_offset(0), EndOffset::Known(0, 0));
        assert_eq!(epochs.epoch_at(0), 1);
    }

    #[test]
    fn the_clients_current_epoch_is_checked_as_kafka_does() {
        let epochs = truncated(&[50]);
        assert_eq!(epochs.check_current(-1), Ok(()));
        assert_eq!(epochs.check_current(1), Ok(()));
        assert_eq!(epochs.check_current(0), Err(Error::FencedLeaderEpoch));
        assert_eq!(epochs.check_current(2), Err(Error::UnknownLeaderEpoch));
    }

    #[test]
    fn a_history_round_trips_through_json_and_bad_ones_are_refused() {
        let epochs = truncated(&[10, 20]);
        let json = serde_json::to_string(&epochs).expect("serialises");
        assert_eq!(
            json,
            r#"[{"epoch":0,"start_offset":0},{"epoch":1,"start_offset":10},{"epoch":2,"start_offset":20}]"#
        );
        let back: Vec<EpochStart> = serde_json::from_str(&json).expect("parses");
        assert_eq!(LeaderEpochs::from_entries(back), Some(epochs));
        let start = |epoch, start_offset, records_from| EpochStart {
            epoch,
            start_offset,
            records_from,
        };
        let backwards = vec![start(1, 5, None), start(0, 9, None)];
        assert_eq!(LeaderEpochs::from_entries(backwards), None);
        let gap_before_its_epoch = vec![start(0, 0, None), start(1, 10, Some(5))];
        assert_eq!(LeaderEpochs::from_entries(gap_before_its_epoch), None);
        let gap_past_the_next_epoch = vec![start(1, 10, Some(30)), start(2, 20, None)];
        assert_eq!(LeaderEpochs::from_entries(gap_past_the_next_epoch), None);
    }

    #[test]
    fn what_was_kept_of_a_lost_batch_is_skipped_and_round_trips() {
        // A batch at 26..975 was lost but for 26..526: epoch 1 starts at 26, its records at 527.
        let mut epochs = LeaderEpochs::default();
        assert_eq!(epochs.truncate_at(26, 527), 1);
        assert_eq!(epochs.end_offset(0), EndOffset::Known(0, 26));
        assert_eq!(epochs.epoch_at(300), 1);
        assert_eq!(epochs.record_at_or_after(25), 25);
        assert_eq!(epochs.record_at_or_after(26), 527);
        assert_eq!(epochs.record_at_or_after(526), 527);
        assert_eq!(epochs.record_at_or_after(527), 527);
        assert!(epochs.skips(26) && epochs.skips(526));
        assert!(!epochs.skips(25) && !epochs.skips(527));
        let json = serde_json::to_string(&epochs).expect("serialises");
        assert_eq!(
            json,
            r#"[{"epoch":0,"start_offset":0},{"epoch":1,"start_offset":26,"records_from":527}]"#
        );
        let back: Vec<EpochStart> = serde_json::from_str(&json).expect("parses");
        assert_eq!(LeaderEpochs::from_entries(back), Some(epochs.clone()));
        // A later truncation inside the gap ends the gap there.
        assert_eq!(epochs.truncate_at(300, 300), 2);
        assert_eq!(epochs.record_at_or_after(100), 300);
        assert_eq!(epochs.record_at_or_after(300), 300);
        assert!(LeaderEpochs::from_entries(epochs.entries().to_vec()).is_some());
    }
}
