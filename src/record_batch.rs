//! Kafka record batches (magic v2) as they cross the gateway: read the 61-byte header,
//! check the CRC, and otherwise leave the records alone. The produce path validates headers
//! only; the memory backend stores and serves batches as the client sent them, compressed
//! or not (SMQ decodes them into its own messages, `backend::smq::codec`). The changes the
//! gateway makes to a batch are Kafka's: a LogAppendTime topic's batches get the append
//! time in their header, and a served batch carries its base offset and the leader epoch
//! it was written in (`partition::leader_epochs`), both outside the CRC.
//!
//! Layout of the header (big-endian):
//! ```text
//! 0  baseOffset i64        8  batchLength i32     12 partitionLeaderEpoch i32
//! 16 magic i8              17 crc u32 (CRC-32C of bytes 21..end)
//! 21 attributes i16        23 lastOffsetDelta i32 27 baseTimestamp i64
//! 35 maxTimestamp i64      43 producerId i64      51 producerEpoch i16
//! 53 baseSequence i32      57 recordsCount i32    61 records...
//! ```

use crate::error::{Error, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions};

pub const HEADER_LEN: usize = 61;
/// Bytes before the part that batchLength counts.
const LOG_OVERHEAD: usize = 12;
const CRC_START: usize = 21;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;
const ATTR_COMPRESSION: i16 = 0x07;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
const ATTRIBUTES_AT: usize = 21;
const LEADER_EPOCH_AT: usize = 12;
const MAX_TIMESTAMP_AT: usize = 35;
const RECORDS_COUNT_AT: usize = 57;

/// The fields of a batch header the gateway acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    fn parse(mut bytes: &[u8]) -> Self {
        let base_offset = bytes.get_i64();
        let _batch_length = bytes.get_i32();
        let _leader_epoch = bytes.get_i32();
        Self {
            base_offset,
            magic: bytes.get_i8(),
            crc: bytes.get_u32(),
            attributes: bytes.get_i16(),
            last_offset_delta: bytes.get_i32(),
            base_timestamp: bytes.get_i64(),
            max_timestamp: bytes.get_i64(),
            producer_id: bytes.get_i64(),
            producer_epoch: bytes.get_i16(),
            base_sequence: bytes.get_i32(),
            records_count: bytes.get_i32(),
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// Whether the batch's timestamp is its append time (records' own are ignored).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }

    pub fn compression(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION
    }

    /// Offsets the batch spans.
    pub fn offset_count(&self) -> i64 {
        i64::from(self.last_offset_delta) + 1
    }

    /// Sequence number of the batch's last record (sequences wrap at i32::MAX).
    pub fn last_sequence(&self) -> i32 {
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }
}

/// One record batch: its header and all of its bytes, shared with the request buffer.
#[derive(Debug, Clone)]
pub struct RecordBatch {
    pub header: BatchHeader,
    pub bytes: Bytes,
    /// Whether the batch is at least half of the allocation it lies in (its request's frame,
    /// which the connection reads into an allocation of its own): keeping the batch as it is
    /// then keeps at most twice its size alive. Otherwise a batch kept is copied out first.
    pub most_of_its_frame: bool,
}

impl RecordBatch {
    /// The batch re-based at `base_offset`, in an allocation of its own.
    pub fn rebased(&self, base_offset: i64) -> Bytes {
        let mut out = BytesMut::with_capacity(self.bytes.len());
        write_rebased(&self.bytes, base_offset, 0, &mut out);
        out.freeze()
    }

    /// The batch as a log keeps it at `base_offset`: as it is, re-based only when it is
    /// read, if it is most of its frame; else a re-based copy.
    pub fn kept_at(&self, base_offset: i64) -> LogBatch {
        match self.most_of_its_frame {
            true => LogBatch {
                bytes: self.bytes.clone(),
                rebase_to: Some(Rebase {
                    base_offset,
                    leader_epoch: 0,
                }),
            },
            false => LogBatch::as_served(self.rebased(base_offset)),
        }
    }
}

/// `batch` with `base_offset` and `leader_epoch` written over its own. The CRC does not
/// cover the first 21 bytes, so it stays valid.
fn write_rebased(batch: &[u8], base_offset: i64, leader_epoch: i32, out: &mut BytesMut) {
    out.put_i64(base_offset);
    out.extend_from_slice(&batch[8..LEADER_EPOCH_AT]);
    out.put_i32(leader_epoch);
    out.extend_from_slice(&batch[LEADER_EPOCH_AT + 4..]);
}

/// What is written over a kept batch's header as it is served.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rebase {
    base_offset: i64,
    leader_epoch: i32,
}

/// A batch as a log serves it. The memory backend keeps a produced batch as the client sent
/// it (no copy on the produce path, [`RecordBatch::kept_at`]) and re-bases it as it is
/// written into a Fetch answer, which copies every batch anyway.
#[derive(Debug, Clone, PartialEq)]
pub struct LogBatch {
    bytes: Bytes,
    /// The base offset and leader epoch to write over the batch's own as it is served;
    /// `None`: the bytes are served as they are.
    rebase_to: Option<Rebase>,
}

impl LogBatch {
    /// A batch whose bytes are served as they are.
    pub fn as_served(bytes: Bytes) -> Self {
        Self {
            bytes,
            rebase_to: None,
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The batch served with `leader_epoch` as its partitionLeaderEpoch (the epoch its base
    /// offset was written in). Kept batches get it as they are served; a batch served as it
    /// is is copied once, here, and only if its epoch differs (after a truncation).
    pub fn in_epoch(self, leader_epoch: i32) -> Self {
        if let Some(rebase) = self.rebase_to {
            let rebase_to = Some(Rebase {
                leader_epoch,
                ..rebase
            });
            return Self { rebase_to, ..self };
        }
        let field = LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4;
        match self.bytes.get(field.clone()) {
            Some(epoch) if epoch != leader_epoch.to_be_bytes() => {
                let mut bytes = BytesMut::from(&self.bytes[..]);
                bytes[field].copy_from_slice(&leader_epoch.to_be_bytes());
                Self::as_served(bytes.freeze())
            }
            _ => self,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Records the batch holds, by its header (0 if it has no whole header).
    pub fn records_count(&self) -> u64 {
        let count = self.bytes.get(RECORDS_COUNT_AT..HEADER_LEN);
        count.map_or(0, |c| {
            i32::from_be_bytes([c[0], c[1], c[2], c[3]]).max(0) as u64
        })
    }

    /// Appends the batch, as served, to `out`.
    pub fn write_to(&self, out: &mut BytesMut) {
        match self.rebase_to {
            Some(r) => write_rebased(&self.bytes, r.base_offset, r.leader_epoch, out),
            None => out.extend_from_slice(&self.bytes),
        }
    }

    /// The batch as served (a copy only if it is re-based on reading).
    pub fn into_bytes(self) -> Bytes {
        match self.rebase_to {
            None => self.bytes,
            Some(_) => {
                let mut out = BytesMut::with_capacity(self.bytes.len());
                self.write_to(&mut out);
                out.freeze()
            }
        }
    }
}

impl RecordBatch {
    /// The batch stamped with its append time, as Kafka does for a LogAppendTime topic: the
    /// timestamp-type attribute set, `maxTimestamp` the append time, the CRC recomputed.
    /// Consumers then read that time as every record's timestamp.
    pub fn with_log_append_time(&self, now_ms: i64) -> RecordBatch {
        let mut bytes = BytesMut::from(&self.bytes[..]);
        let attributes = self.header.attributes | ATTR_LOG_APPEND_TIME;
        bytes[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
        bytes[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[CRC_START..]);
        bytes[17..CRC_START].copy_from_slice(&crc.to_be_bytes());
        let bytes = bytes.freeze();
        RecordBatch {
            header: BatchHeader::parse(&bytes),
            bytes,
            // A copy of its own.
            most_of_its_frame: true,
        }
    }
}

/// Encodes records as one magic-2 batch per run of records whose offset minus sequence is
/// constant (the codec starts a new batch when it changes).
pub fn encode_batch(records: &[Record], compression: Compression) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options)
        .map_err(|e| Error::InvalidRecord(format!("cannot encode records: {e}")))?;
    Ok(buf.freeze())
}

/// Splits the `records` of a produce request into batches and validates each: magic 2,
/// lengths that add up, a CRC-32C that matches, at least one record, no control batches.
/// Any failure rejects the whole set, so nothing of a corrupt request is stored.
pub fn parse_produce_batches(records: &Bytes) -> Result<Vec<RecordBatch>> {
    let mut batches = Vec::with_capacity(1);
    let mut rest = records.clone();
    while !rest.is_empty() {
        let batch = split_batch(&mut rest)?;
        validate(&batch)?;
        batches.push(batch);
    }
    if batches.is_empty() {
        return Err(Error::InvalidRecord(
            "no record batch in produce request".into(),
        ));
    }
    Ok(batches)
}

/// Reads the header of every complete batch in a stored log slice, without CRC checks
/// (stored batches were checked on the way in).
pub fn split_stored_batches(records: &Bytes) -> Result<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    let mut rest = records.clone();
    while !rest.is_empty() {
        batches.push(split_batch(&mut rest)?);
    }
    Ok(batches)
}

fn split_batch(rest: &mut Bytes) -> Result<RecordBatch> {
    if rest.len() < HEADER_LEN {
        return Err(Error::CorruptMessage(format!(
            "{} bytes left, less than a batch header",
            rest.len()
        )));
    }
    let batch_length = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
    let total = usize::try_from(batch_length)
        .ok()
        .and_then(|n| n.checked_add(LOG_OVERHEAD))
        .filter(|n| *n >= HEADER_LEN && *n <= rest.len())
        .ok_or_else(|| {
            Error::CorruptMessage(format!(
                "batch length {batch_length} does not fit the {} bytes sent",
                rest.len()
            ))
        })?;
    let magic = rest[16] as i8;
    if magic != 2 {
        return Err(Error::UnsupportedForMessageFormat(format!(
            "record batch magic {magic}; only magic 2 is supported"
        )));
    }
    let bytes = rest.split_to(total);
    Ok(RecordBatch {
        header: BatchHeader::parse(&bytes),
        bytes,
        most_of_its_frame: false,
    })
}

fn validate(batch: &RecordBatch) -> Result<()> {
    let header = &batch.header;
    let crc = crc32c::crc32c(&batch.bytes[CRC_START..]);
    if crc != header.crc {
        return Err(Error::CorruptMessage(format!(
            "CRC-32C {crc:#010x} does not match {:#010x}",
            header.crc
        )));
    }
    if header.records_count < 1 || header.last_offset_delta != header.records_count - 1 {
        return Err(Error::InvalidRecord(format!(
            "{} records with last offset delta {}",
            header.records_count, header.last_offset_delta
        )));
    }
    // An uncompressed batch's records are here to count: each takes at least
    // MIN_RECORD_LEN bytes, so a count the bytes cannot hold is a lie (offsets would jump
    // by it). A compressed batch's count is checked where its records are read.
    let records_len = batch.bytes.len() - HEADER_LEN;
    if header.compression() == 0
        && header.records_count as usize > records_len / crate::records::MIN_RECORD_LEN
    {
        return Err(Error::CorruptMessage(format!(
            "{} records claimed in {records_len} bytes",
            header.records_count
        )));
    }
    if header.is_control() {
        return Err(Error::InvalidRecord(
            "clients may not send control batches".into(),
        ));
    }
    if header.is_transactional() {
        return Err(Error::TransactionsUnsupported);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kafka_protocol::records::TimestampType;

    /// A batch of `count` records as a Kafka client would send it.
    pub(crate) fn client_batch(count: i32, compression: Compression, producer_id: i64) -> Bytes {
        let records: Vec<Record> = (0..count)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch: 0,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(i),
                // The encoder starts a new batch whenever offset - sequence changes; i - 1
                // keeps one batch with base sequence -1 for a plain producer.
                sequence: if producer_id >= 0 { i } else { i - 1 },
                timestamp: 1_700_000_000_000 + i64::from(i),
                key: Some(Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(vec![b'v'; 100])),
                headers: Default::default(),
            })
            .collect();
        encode_batch(&records, compression).expect("encode")
    }

    #[test]
    fn a_client_batch_validates_and_reads_back_its_header() {
        let bytes = client_batch(5, Compression::None, 7);
        let batches = parse_produce_batches(&bytes).expect("valid");
        assert_eq!(batches.len(), 1);
        let header = batches[0].header;
        assert_eq!((header.records_count, header.last_offset_delta), (5, 4));
        assert_eq!((header.producer_id, header.base_sequence), (7, 0));
        assert_eq!(header.last_sequence(), 4);
        assert_eq!(header.max_timestamp, 1_700_000_000_004);
    }

    #[test]
    fn several_batches_in_one_request_are_all_returned() {
        let mut both = BytesMut::new();
        both.extend_from_slice(&client_batch(2, Compression::None, -1));
        both.extend_from_slice(&client_batch(3, Compression::Lz4, -1));
        let batches = parse_produce_batches(&both.freeze()).expect("valid");
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1].header.compression(), 3);
    }

    #[test]
    fn a_flipped_bit_is_a_corrupt_message() {
        let mut bytes = BytesMut::from(&client_batch(3, Compression::None, -1)[..]);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let error = parse_produce_batches(&bytes.freeze()).expect_err("corrupt");
        assert_eq!(error.code(), 2);
    }

    #[test]
    fn truncated_and_overlong_batches_are_rejected() {
        let bytes = client_batch(3, Compression::None, -1);
        assert!(parse_produce_batches(&bytes.slice(..bytes.len() - 1)).is_err());
        assert!(parse_produce_batches(&bytes.slice(..30)).is_err());
        let mut long = BytesMut::from(&bytes[..]);
        long[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(parse_produce_batches(&long.freeze()).is_err());
        assert!(parse_produce_batches(&Bytes::new()).is_err());
    }

    #[test]
    fn rebasing_keeps_the_crc_valid() {
        let bytes = client_batch(3, Compression::Gzip, -1);
        let batch = &parse_produce_batches(&bytes).expect("valid")[0];
        let moved = batch.rebased(1234);
        let again = parse_produce_batches(&moved).expect("still valid");
        assert_eq!(again[0].header.base_offset, 1234);
        assert_eq!(&moved[16..], &bytes[16..]);
    }

    #[test]
    fn a_batch_kept_as_sent_is_served_as_its_rebased_copy_is() {
        let bytes = client_batch(3, Compression::None, -1);
        let mut batch = parse_produce_batches(&bytes).expect("valid").remove(0);
        let copied = batch.kept_at(77);
        batch.most_of_its_frame = true;
        let kept = batch.kept_at(77);
        let mut both = BytesMut::new();
        kept.write_to(&mut both);
        copied.write_to(&mut both);
        let served = parse_produce_batches(&both.freeze()).expect("valid batches");
        assert_eq!(served.len(), 2);
        assert_eq!(served[0].bytes, served[1].bytes);
        assert_eq!(served[0].header.base_offset, 77);
        assert_eq!(kept.into_bytes(), batch.rebased(77));
        assert_eq!(copied.into_bytes(), batch.rebased(77));
    }

    #[test]
    fn a_served_batch_carries_the_leader_epoch_it_was_written_in() {
        let bytes = client_batch(3, Compression::None, -1);
        let mut batch = parse_produce_batches(&bytes).expect("valid").remove(0);
        let epoch_of = |served: Bytes| {
            let again = parse_produce_batches(&served).expect("CRC still valid");
            (
                again[0].header.base_offset,
                i32::from_be_bytes([served[12], served[13], served[14], served[15]]),
            )
        };
        let copied = batch.kept_at(5).in_epoch(2);
        batch.most_of_its_frame = true;
        let kept = batch.kept_at(5).in_epoch(2);
        assert_eq!(epoch_of(copied.into_bytes()), (5, 2));
        assert_eq!(epoch_of(kept.into_bytes()), (5, 2));
        // Served as it is: in epoch 0 it stays the same bytes, no copy.
        let plain = LogBatch::as_served(batch.rebased(9));
        let same = plain.clone().in_epoch(0);
        assert_eq!(
            same.into_bytes().as_ptr(),
            plain.clone().into_bytes().as_ptr()
        );
        assert_eq!(epoch_of(plain.in_epoch(1).into_bytes()), (9, 1));
    }

    #[test]
    fn log_append_time_stamps_the_batch_and_keeps_it_valid() {
        let bytes = client_batch(3, Compression::Lz4, -1);
        let batch = &parse_produce_batches(&bytes).expect("valid")[0];
        let stamped = batch.with_log_append_time(1_800_000_000_000);
        let again = &parse_produce_batches(&stamped.bytes).expect("still valid")[0];
        assert!(again.header.is_log_append_time() && !batch.header.is_log_append_time());
        assert_eq!(again.header.max_timestamp, 1_800_000_000_000);
        assert_eq!(again.header.compression(), batch.header.compression());
        let mut decoded = stamped.bytes.clone();
        let records = kafka_protocol::records::RecordBatchDecoder::decode(&mut decoded)
            .expect("decodes")
            .records;
        assert!(records
            .iter()
            .all(|r| r.timestamp_type == TimestampType::LogAppend));
    }
}
