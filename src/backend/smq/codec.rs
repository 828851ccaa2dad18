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
//! null, 4 = producer mark follows), with flag 4 the mark (producer id i64, producer epoch
//! i16, the batch's base sequence i32, its record count i32), header count u32, per header:
//! key length u32 + key, value length i32 (-1 = null) + value; then the value bytes to the
//! end.
//!
//! The producer mark: the last record of every idempotent producer's batch is enveloped
//! with its batch's producer id, epoch and sequences, so that a restarted tidegate learns
//! from the records themselves which batches were stored where (`ProducerMark`,
//! `partition::producer_state`). One record per such batch is therefore enveloped even
//! when it could go plain; SMQ's own readers see its value wrapped.
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

/// What the last record of an idempotent producer's batch carries (see the module
/// comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerMark {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
    /// Records in the batch, the marked one last.
    pub count: i32,
}

impl ProducerMark {
    /// The batch it ends, the marked record being at `offset`.
    fn batch_ending_at(&self, offset: i64) -> StoredBatch {
        // Sequences wrap past i32::MAX to 0, as Kafka's do (`BatchHeader::last_sequence`).
        let last_sequence =
            (i64::from(self.base_sequence) + i64::from(self.count) - 1) % (i64::from(i32::MAX) + 1);
        StoredBatch {
            producer_id: self.producer_id,
            epoch: self.epoch,
            first_sequence: self.base_sequence,
            last_sequence: last_sequence as i32,
            base_offset: offset - i64::from(self.count) + 1,
            last_offset: offset,
        }
    }
}

/// Stored messages read back: the records, and the idempotent batches their marks end.
#[derive(Debug, Default)]
pub struct Decoded {
    pub records: Vec<Record>,
    pub marks: Vec<StoredBatch>,
    /// The offset after the last message read, filler or record.
    pub next: Option<i64>,
}

impl Decoded {
    /// Adds the message stored at `offset`: a filler is skipped, a marked record is taken
    /// with its mark.
    pub fn push(&mut self, key: Bytes, value: Bytes, ts_ns: i64, offset: i64) {
        self.next = Some(offset + 1);
        if is_filler(&key, &value) {
            return;
        }
        let (record, mark) = decode(key, value, ts_ns, offset);
        if let Some(mark) = mark {
            self.marks.push(mark.batch_ending_at(offset));
        }
        self.records.push(record);
    }

    /// Keeps what `keep` accepts by offset (marks by their last record's).
    pub fn retain_offsets(&mut self, mut keep: impl FnMut(i64) -> bool) {
        let mut kept_marks = Vec::with_capacity(self.marks.len());
        let mut marks = std::mem::take(&mut self.marks).into_iter().peekable();
        self.records.retain(|r| {
            let kept = keep(r.offset);
            while let Some(mark) = marks.next_if(|m| m.last_offset <= r.offset) {
                if kept && mark.last_offset == r.offset {
                    kept_marks.push(mark);
                }
            }
            kept
        });
        self.marks = kept_marks;
    }
}

/// Turns records into SMQ messages. `last_ts_ns` is the last `ts_ns` sent on this
/// partition (timestamps must increase strictly); `now_ms` the current time; `mark` for the
/// last record of an idempotent producer's batch.
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
    if mark.is_some() {
        flags |= PRODUCER_MARK;
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
}
