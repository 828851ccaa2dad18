//! How a Kafka record is kept in an SMQ `DataMessage{key, value, ts_ns}`.
//!
//! A plain record — a key (or none), a value, no headers, and a timestamp the broker can
//! keep — is stored as it is, so SeaweedFS's own consumers and SQL see ordinary key/value
//! messages: `ts_ns` is the Kafka timestamp in nanoseconds. Everything else goes into an
//! envelope in `value`: `MAGIC`, then the Kafka timestamp, null flags, the headers, and the
//! value bytes. A plain value that happens to start with `MAGIC` is enveloped too, so
//! reading is never ambiguous for what tidegate wrote.
//!
//! Why `ts_ns` cannot always carry the timestamp: the broker forces stored timestamps to
//! increase strictly per partition (a smaller one becomes last + 1 ns), orders disk files by
//! them, and lets a far-future one drag every later record along. So only timestamps close
//! to now and increasing go into `ts_ns`; the rest are enveloped, with `ts_ns` left to the
//! broker.
//!
//! Envelope (version 1), after `MAGIC`: timestamp i64 ms, flags u8 (1 = key null, 2 = value
//! null, 4 = producer mark follows, 8 = with 4, the mark is on the batch's first record),
//! with flag 4 the mark (producer id i64, producer epoch i16, the batch's base sequence
//! i32, its record count i32), header count u32, per header: key length u32 + key, value
//! length i32 (-1 = null) + value; then the value bytes to the end.
//!
//! The producer marks: the last record of every idempotent producer's batch is enveloped
//! with its batch's producer id, epoch and sequences, so that a restarted tidegate learns
//! from the records themselves which batches were stored where (`ProducerMark`,
//! `partition::producer_state`). The first record of a batch of several carries the same
//! mark, flagged as the start: SMQ stores a batch record by record, so a tidegate that
//! stops in the middle of one leaves its first records stored without the last, and the
//! start mark is how the next one finds that torn batch (`Decoded::starts`). Up to two
//! records per such batch are therefore enveloped even when they could go plain; SMQ's own
//! readers see their values wrapped.
//!
//! A filler (`filler`) is a message tidegate publishes only to use up an offset: empty key,
//! `MAGIC` alone as value, which no record encodes to (a value starting with `MAGIC` is
//! always enveloped, and an envelope is longer). Readers skip it.
//!
//! Records read back from SMQ come back as from a plain producer: the marks are taken out
//! on the side (`Decoded::marks`), for producer recovery only.

use crate::partition::producer_state::StoredBatch;
use crate::records::Record;
use bytes::{Buf, BufMut, Bytes, BytesMut};

pub const MAGIC: [u8; 4] = [0x00, b'T', b'G', 0xe1];
const KEY_NULL: u8 = 1;
const VALUE_NULL: u8 = 2;
const PRODUCER_MARK: u8 = 4;
const MARK_ON_FIRST: u8 = 8;
const NS_PER_MS: i64 = 1_000_000;
/// How far from now a timestamp may be and still be stored as the broker's own.
const PLAIN_PAST_MS: i64 = 10_000;
const PLAIN_FUTURE_MS: i64 = 1_000;

/// A record as it goes to the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmqMessage {
    pub key: Bytes,
    pub value: Bytes,
    pub ts_ns: i64,
}

/// What the first and the last record of an idempotent producer's batch carry (see the
/// module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerMark {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
    /// Records in the batch.
    pub count: i32,
    pub on: MarkedRecord,
}

/// Which record of its batch a mark is on. A batch of one record has its mark on the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkedRecord {
    First,
    Last,
}

impl ProducerMark {
    /// The batch it marks, the marked record being at `offset`.
    fn batch_marked_at(&self, offset: i64) -> StoredBatch {
        let base_offset = match self.on {
            MarkedRecord::First => offset,
            MarkedRecord::Last => offset - i64::from(self.count) + 1,
        };
        // Sequences wrap past i32::MAX to 0, as Kafka's do (`BatchHeader::last_sequence`).
        let last_sequence =
            (i64::from(self.base_sequence) + i64::from(self.count) - 1) % (i64::from(i32::MAX) + 1);
        StoredBatch {
            producer_id: self.producer_id,
            epoch: self.epoch,
            first_sequence: self.base_sequence,
            last_sequence: last_sequence as i32,
            base_offset,
            last_offset: base_offset + i64::from(self.count) - 1,
        }
    }
}

/// Stored messages read back: the records, and the idempotent batches their marks end and
/// begin.
#[derive(Debug, Default)]
pub struct Decoded {
    pub records: Vec<Record>,
    pub marks: Vec<StoredBatch>,
    /// The batches of several records whose first record was read, whether or not their
    /// last was stored.
    pub starts: Vec<StoredBatch>,
    /// The offsets of the fillers read (`filler`): messages, if not records.
    pub fillers: Vec<i64>,
    /// The offset after the last message read, filler or record.
    pub next: Option<i64>,
}

impl Decoded {
    /// Adds the message stored at `offset`: a filler is skipped, a marked record is taken
    /// with its mark.
    pub fn push(&mut self, key: Bytes, value: Bytes, ts_ns: i64, offset: i64) {
        self.next = Some(offset + 1);
        if is_filler(&key, &value) {
            self.fillers.push(offset);
            return;
        }
        let (record, mark) = decode(key, value, ts_ns, offset);
        match mark {
            Some(
                mark @ ProducerMark {
                    on: MarkedRecord::Last,
                    ..
                },
            ) => self.marks.push(mark.batch_marked_at(offset)),
            Some(mark) => self.starts.push(mark.batch_marked_at(offset)),
            None => {}
        }
        self.records.push(record);
    }

    /// The offsets of the records read: the least and the greatest (stored order need not
    /// be offset order where SMQ flushed two buffers into one file). Fillers do not count:
    /// a file's span says where its records end, and so where the broker's memory begins.
    pub fn span(&self) -> Option<(i64, i64)> {
        let offsets = self.records.iter().map(|r| r.offset);
        offsets.fold(None, |span, offset| match span {
            None => Some((offset, offset)),
            Some((least, greatest)) => Some((least.min(offset), greatest.max(offset))),
        })
    }

    /// The offsets of the messages read, records and fillers, in no particular order.
    fn message_offsets(&self) -> impl Iterator<Item = i64> + '_ {
        let records = self.records.iter().map(|r| r.offset);
        records.chain(self.fillers.iter().copied())
    }

    /// The least offset of a message read, record or filler, at or after `offset`.
    pub fn first_from(&self, offset: i64) -> Option<i64> {
        self.message_offsets().filter(|&o| o >= offset).min()
    }

    /// The offset after the run of consecutive messages, records and fillers, that begins
    /// at `first`.
    pub fn run_end(&self, first: i64) -> i64 {
        let mut offsets: Vec<i64> = self.message_offsets().filter(|&o| o >= first).collect();
        offsets.sort_unstable();
        offsets.dedup();
        let mut end = first;
        for offset in offsets {
            if offset != end {
                break;
            }
            end += 1;
        }
        end
    }

    /// Keeps what `keep` accepts by offset (marks with the record they are on); `keep` is
    /// asked once per record, in order.
    pub fn retain_offsets(&mut self, mut keep: impl FnMut(i64) -> bool) {
        let mut kept_marks = Vec::with_capacity(self.marks.len());
        let mut kept_starts = Vec::with_capacity(self.starts.len());
        let mut marks = std::mem::take(&mut self.marks).into_iter().peekable();
        let mut starts = std::mem::take(&mut self.starts).into_iter().peekable();
        self.records.retain(|r| {
            let kept = keep(r.offset);
            while let Some(mark) = marks.next_if(|m| m.last_offset <= r.offset) {
                if kept && mark.last_offset == r.offset {
                    kept_marks.push(mark);
                }
            }
            while let Some(start) = starts.next_if(|s| s.base_offset <= r.offset) {
                if kept && start.base_offset == r.offset {
                    kept_starts.push(start);
                }
            }
            kept
        });
        self.marks = kept_marks;
        self.starts = kept_starts;
    }
}

/// Turns records into SMQ messages. `last_ts_ns` is the last `ts_ns` sent on this
/// partition (timestamps must increase strictly); `now_ms` the current time; `mark` for the
/// first and the last record of an idempotent producer's batch.
pub fn encode(
    record: &Record,
    mark: Option<&ProducerMark>,
    last_ts_ns: &mut i64,
    now_ms: i64,
) -> SmqMessage {
    let key = record.key.clone().unwrap_or_default();
    let candidate = record
        .timestamp
        .saturating_mul(NS_PER_MS)
        .max(*last_ts_ns + 1);
    let plain = mark.is_none()
        && record.headers.is_empty()
        && record.key.as_ref().is_none_or(|k| !k.is_empty())
        && record
            .value
            .as_ref()
            .is_some_and(|v| !v.starts_with(&MAGIC))
        && (now_ms - PLAIN_PAST_MS..=now_ms + PLAIN_FUTURE_MS).contains(&record.timestamp)
        && candidate / NS_PER_MS == record.timestamp;
    if plain {
        *last_ts_ns = candidate;
        return SmqMessage {
            key,
            value: record.value.clone().unwrap_or_default(),
            ts_ns: candidate,
        };
    }
    let ts_ns = (now_ms * NS_PER_MS).max(*last_ts_ns + 1);
    *last_ts_ns = ts_ns;
    SmqMessage {
        key,
        value: envelope(record, mark),
        ts_ns,
    }
}

fn envelope(record: &Record, mark: Option<&ProducerMark>) -> Bytes {
    let value = record.value.as_deref().unwrap_or_default();
    let mut out = BytesMut::with_capacity(MAGIC.len() + 40 + value.len());
    out.put_slice(&MAGIC);
    out.put_i64(record.timestamp);
    let mut flags = 0;
    if record.key.is_none() {
        flags |= KEY_NULL;
    }
    if record.value.is_none() {
        flags |= VALUE_NULL;
    }
    if let Some(mark) = mark {
        flags |= PRODUCER_MARK;
        if mark.on == MarkedRecord::First {
            flags |= MARK_ON_FIRST;
        }
    }
    out.put_u8(flags);
    if let Some(mark) = mark {
        out.put_i64(mark.producer_id);
        out.put_i16(mark.epoch);
        out.put_i32(mark.base_sequence);
        out.put_i32(mark.count);
    }
    out.put_u32(record.headers.len() as u32);
    for (name, value) in &record.headers {
        out.put_u32(name.len() as u32);
        out.put_slice(name);
        match value {
            Some(value) => {
                out.put_i32(value.len() as i32);
                out.put_slice(value);
            }
            None => out.put_i32(-1),
        }
    }
    out.put_slice(value);
    out.freeze()
}

/// A message that only takes an offset (see the module comment), stamped `ts_ns`: the
/// broker stamps it later if that is not after its last one, which is all a filler needs.
pub fn filler(ts_ns: i64) -> SmqMessage {
    SmqMessage {
        key: Bytes::new(),
        value: Bytes::from_static(&MAGIC),
        ts_ns,
    }
}

/// Whether a stored message is a filler, not a record.
fn is_filler(key: &[u8], value: &[u8]) -> bool {
    key.is_empty() && value == MAGIC
}

/// The Kafka record stored at `offset`, and the producer mark it carries.
pub fn decode(key: Bytes, value: Bytes, ts_ns: i64, offset: i64) -> (Record, Option<ProducerMark>) {
    let mut record = Record {
        offset,
        timestamp: ts_ns / NS_PER_MS,
        key: (!key.is_empty()).then_some(key.clone()),
        value: Some(value.clone()),
        headers: Vec::new(),
    };
    if value.starts_with(&MAGIC) {
        if let Some(mark) = open_envelope(&mut record, key, value.slice(MAGIC.len()..)) {
            return (record, mark);
        }
    }
    (record, None)
}

/// Fills `record` from an envelope, and returns its mark; `None` (record untouched) if it
/// does not parse.
fn open_envelope(record: &mut Record, key: Bytes, mut body: Bytes) -> Option<Option<ProducerMark>> {
    let take = |body: &mut Bytes, n: usize| (body.remaining() >= n).then(|| body.split_to(n));
    let timestamp = take(&mut body, 8)?.get_i64();
    let flags = take(&mut body, 1)?.get_u8();
    let mark = match flags & PRODUCER_MARK {
        0 => None,
        _ => {
            let mut fields = take(&mut body, 18)?;
            let mark = ProducerMark {
                producer_id: fields.get_i64(),
                epoch: fields.get_i16(),
                base_sequence: fields.get_i32(),
                count: fields.get_i32(),
                on: match flags & MARK_ON_FIRST {
                    0 => MarkedRecord::Last,
                    _ => MarkedRecord::First,
                },
            };
            Some(mark).filter(|m| m.count > 0 && m.producer_id >= 0)
        }
    };
    let count = take(&mut body, 4)?.get_u32();
    let mut headers = Vec::with_capacity(count.min(64) as usize);
    for _ in 0..count {
        let name_len = take(&mut body, 4)?.get_u32() as usize;
        let name = take(&mut body, name_len)?;
        let value_len = take(&mut body, 4)?.get_i32();
        let value = match value_len {
            -1 => None,
            n => Some(take(&mut body, usize::try_from(n).ok()?)?),
        };
        headers.push((name, value));
    }
    record.timestamp = timestamp;
    record.headers = headers;
    record.key = (flags & KEY_NULL == 0).then_some(key);
    record.value = (flags & VALUE_NULL == 0).then_some(body);
    Some(mark)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn record(key: Option<&str>, value: Option<&[u8]>, timestamp: i64) -> Record {
        let (mut record, _) = decode(Bytes::new(), Bytes::new(), 0, 0);
        record.key = key.map(|k| Bytes::from(k.to_string()));
        record.value = value.map(Bytes::copy_from_slice);
        record.timestamp = timestamp;
        record
    }

    fn round_trip(original: &Record, last: &mut i64) -> (SmqMessage, Record) {
        let message = encode(original, None, last, NOW);
        let (back, mark) = decode(message.key.clone(), message.value.clone(), message.ts_ns, 0);
        assert_eq!(mark, None);
        (message, back)
    }

    #[test]
    fn plain_records_stay_plain_and_come_back_whole() {
        let mut last = 0;
        let original = record(Some("k"), Some(b"v"), NOW);
        let (message, back) = round_trip(&original, &mut last);
        assert_eq!(&message.value[..], b"v", "readable by SMQ consumers");
        assert_eq!(message.ts_ns, NOW * NS_PER_MS);
        assert_eq!(back, original);
        // Same millisecond again: the broker needs a larger ts_ns, the ms stays.
        let (message, back) = round_trip(&original, &mut last);
        assert_eq!(message.ts_ns, NOW * NS_PER_MS + 1);
        assert_eq!(back, original);
    }

    #[test]
    fn what_a_data_message_cannot_hold_is_enveloped() {
        let mut last = 0;
        let mut with_headers = record(None, Some(b"v"), NOW);
        with_headers
            .headers
            .push((Bytes::from("a"), Some(Bytes::from("1"))));
        with_headers
            .headers
            .push((Bytes::from("a"), Some(Bytes::from("again"))));
        with_headers.headers.push((Bytes::from("b"), None));
        let cases = [
            with_headers,
            record(Some("k"), None, NOW),                    // tombstone
            record(Some(""), Some(b"v"), NOW),               // empty, not null, key
            record(Some("k"), Some(b"v"), NOW - 86_400_000), // old timestamp
            record(Some("k"), Some(&[0x00, b'T', b'G', 0xe1, b'x']), NOW), // looks like an envelope
        ];
        for original in cases {
            let (message, back) = round_trip(&original, &mut last);
            assert!(message.value.starts_with(&MAGIC), "{original:?}");
            assert_eq!(back, original);
        }
    }

    #[test]
    fn timestamps_sent_to_the_broker_increase_strictly() {
        let mut last = 0;
        let mut sent = Vec::new();
        for ts in [NOW, NOW - 5, NOW - 86_400_000, NOW] {
            sent.push(encode(&record(Some("k"), Some(b"v"), ts), None, &mut last, NOW).ts_ns);
        }
        assert!(sent.windows(2).all(|w| w[0] < w[1]), "{sent:?}");
    }

    #[test]
    fn a_batch_s_last_record_carries_its_producer_and_is_read_back_whole() {
        let mut last = 0;
        let mark = ProducerMark {
            producer_id: 77,
            epoch: 4,
            base_sequence: i32::MAX - 1,
            count: 3,
            on: MarkedRecord::Last,
        };
        let plain = record(Some("k"), Some(b"v"), NOW);
        let message = encode(&plain, Some(&mark), &mut last, NOW);
        assert!(
            message.value.starts_with(&MAGIC),
            "a mark needs the envelope"
        );
        let mut found = Decoded::default();
        found.push(Bytes::new(), Bytes::from_static(&MAGIC), 0, 9); // a filler
        found.push(message.key, message.value, message.ts_ns, 12);
        assert_eq!(found.records.len(), 1);
        assert_eq!(
            found.records[0],
            Record {
                offset: 12,
                ..plain
            }
        );
        let stored = found.marks.first().expect("the mark");
        assert_eq!((stored.producer_id, stored.epoch), (77, 4));
        assert_eq!((stored.base_offset, stored.last_offset), (10, 12));
        assert_eq!(
            (stored.first_sequence, stored.last_sequence),
            (i32::MAX - 1, 0),
            "wraps"
        );
        found.retain_offsets(|offset| offset != 12);
        assert!(
            found.records.is_empty() && found.marks.is_empty(),
            "dropped with its record"
        );
    }

    #[test]
    fn a_batch_s_first_record_says_where_it_began_even_if_its_last_is_missing() {
        let mut last = 0;
        let mark = ProducerMark {
            producer_id: 77,
            epoch: 4,
            base_sequence: 10,
            count: 3,
            on: MarkedRecord::First,
        };
        let first = record(Some("k"), Some(b"v"), NOW);
        let message = encode(&first, Some(&mark), &mut last, NOW);
        let mut found = Decoded::default();
        found.push(message.key, message.value, message.ts_ns, 20);
        assert_eq!(
            found.records[0],
            Record {
                offset: 20,
                ..first.clone()
            }
        );
        assert!(found.marks.is_empty(), "not a finished batch");
        let started = found.starts.first().expect("the start");
        assert_eq!((started.base_offset, started.last_offset), (20, 22));
        assert_eq!((started.first_sequence, started.last_sequence), (10, 12));
        let next = encode(&first, None, &mut last, NOW);
        found.push(next.key, next.value, next.ts_ns, 21);
        // Asked once per record, in order: a filter that remembers (LogFiles::read's) works.
        let mut asked = Vec::new();
        found.retain_offsets(|offset| {
            asked.push(offset);
            offset != 20
        });
        assert_eq!(asked, [20, 21]);
        assert!(found.starts.is_empty(), "dropped with its record");
        assert_eq!(found.records.len(), 1);
    }

    #[test]
    fn a_file_s_messages_are_served_up_to_its_first_hole() {
        // As a late flush left them: 0..=2 and 7..=8 in one file, fillers counted.
        let mut last = 0;
        let mut found = Decoded::default();
        for offset in [0, 1, 7, 8] {
            let message = encode(&record(Some("k"), Some(b"v"), NOW), None, &mut last, NOW);
            found.push(message.key, message.value, message.ts_ns, offset);
        }
        let gap = filler(0);
        found.push(gap.key, gap.value, gap.ts_ns, 2);
        assert_eq!(found.span(), Some((0, 8)));
        assert_eq!(found.first_from(0), Some(0));
        assert_eq!(found.first_from(2), Some(2), "a filler holds its offset");
        assert_eq!(found.first_from(3), Some(7));
        assert_eq!(found.first_from(9), None);
        assert_eq!(found.run_end(0), 3, "up to the hole, the filler included");
        assert_eq!(found.run_end(7), 9);
    }
}
