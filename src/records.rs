//! The records inside a v2 batch, for backends that keep records one by one (SeaweedMQ).
//!
//! Our own reader and writer rather than the codec's `Record`, because that type keeps
//! headers in a map and so loses a repeated header key, which Kafka allows and clients use.
//!
//! Record layout (after decompression), varints zigzag-encoded:
//! ```text
//! length varint, attributes i8, timestampDelta varlong, offsetDelta varint,
//! keyLength varint (-1 = null), key, valueLength varint (-1 = null), value,
//! headerCount varint, per header: keyLength varint, key, valueLength varint, value
//! ```

use crate::error::{Error, Result};
use crate::record_batch::{RecordBatch, HEADER_LEN};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::io::Read;

/// The smallest record: a length, then attributes, timestamp delta, offset delta, key and
/// value lengths and header count, one byte each.
pub const MIN_RECORD_LEN: usize = 7;

/// One record as a consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: i64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// In the order sent; a key may repeat.
    pub headers: Vec<(Bytes, Option<Bytes>)>,
}

/// The records of a batch, decompressed (to at most `limit` bytes: more is refused with
/// MESSAGE_TOO_LARGE), with absolute offsets and timestamps.
pub fn decode_records(batch: &RecordBatch, limit: usize) -> Result<Vec<Record>> {
    let header = &batch.header;
    let body = batch.bytes.slice(HEADER_LEN..);
    let mut plain = decompress(header.compression(), body, limit)?;
    let mut records = parse_records(
        &mut plain,
        header.base_offset,
        header.base_timestamp,
        header.records_count,
    )
    .map_err(|e| Error::CorruptMessage(format!("cannot read records: {e}")))?;
    // A LogAppendTime batch's time is every record's timestamp, as consumers read it.
    if header.is_log_append_time() {
        records
            .iter_mut()
            .for_each(|r| r.timestamp = header.max_timestamp);
    }
    Ok(records)
}

/// Checks that a compressed batch holds exactly the records its header claims, for a
/// backend that stores the batch as it came (the memory backend): its offsets advance by
/// that claim. Decompresses to at most `limit` bytes; reads only the records' lengths.
pub fn check_compressed_count(batch: &RecordBatch, limit: usize) -> Result<()> {
    let header = &batch.header;
    let body = batch.bytes.slice(HEADER_LEN..);
    let mut plain = decompress(header.compression(), body, limit)?;
    let mut found: i64 = 0;
    while plain.has_remaining() {
        let length = read_varint(&mut plain)
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n <= plain.remaining());
        let Some(length) = length else {
            return Err(Error::CorruptMessage("a record runs past the batch".into()));
        };
        plain.advance(length);
        found += 1;
    }
    if found != i64::from(header.records_count) {
        return Err(Error::CorruptMessage(format!(
            "{} records claimed, {found} present",
            header.records_count
        )));
    }
    Ok(())
}

/// A batch's records section, decompressed as it streams, never past `limit` bytes: a few
/// compressed bytes can claim gigabytes (a decompression bomb), so nothing is allocated on
/// the strength of a claimed size.
fn decompress(compression: i16, body: Bytes, limit: usize) -> Result<Bytes> {
    let mut out = Vec::new();
    let capped = |reader: &mut dyn Read, out: &mut Vec<u8>| {
        let mut chunk = vec![0u8; DECOMPRESS_CHUNK];
        loop {
            let read = reader.read(&mut chunk).map_err(|e| corrupt(&e))?;
            if read == 0 {
                return Ok(());
            }
            if out.len() + read > limit {
                return Err(too_large(limit));
            }
            out.extend_from_slice(&chunk[..read]);
        }
    };
    match compression {
        0 => return Ok(body),
        1 => capped(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)?,
        2 => snappy(&body, limit, &mut out)?,
        3 => capped(
            &mut lz4::Decoder::new(&body[..]).map_err(|e| corrupt(&e))?,
            &mut out,
        )?,
        4 => capped(
            &mut zstd::stream::read::Decoder::new(&body[..]).map_err(|e| corrupt(&e))?,
            &mut out,
        )?,
        other => {
            return Err(Error::CorruptMessage(format!(
                "unknown compression {other}"
            )))
        }
    };
    if out.len() > limit {
        return Err(too_large(limit));
    }
    Ok(Bytes::from(out))
}

/// Bytes decompressed per read.
const DECOMPRESS_CHUNK: usize = 64 << 10;

fn corrupt(e: &dyn std::fmt::Display) -> Error {
    Error::CorruptMessage(format!("cannot decompress: {e}"))
}

fn too_large(limit: usize) -> Error {
    Error::MessageTooLarge(format!(
        "a record batch decompresses to more than --max-decompressed-batch-bytes ({limit})"
    ))
}

/// Snappy as Kafka's Java client writes it (xerial framing: a magic header, then blocks of
/// a length and raw snappy), or raw snappy without the header, as the Java client accepts.
fn snappy(body: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<()> {
    const MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
    let block = |raw: &[u8], out: &mut Vec<u8>| -> Result<()> {
        let length = snap::raw::decompress_len(raw).map_err(|e| corrupt(&e))?;
        let start = out.len();
        if start.saturating_add(length) > limit {
            return Err(too_large(limit));
        }
        out.resize(start + length, 0);
        snap::raw::Decoder::new()
            .decompress(raw, &mut out[start..])
            .map_err(|e| corrupt(&e))?;
        Ok(())
    };
    let Some(mut rest) = body.strip_prefix(&MAGIC[..]) else {
        return block(body, out);
    };
    while !rest.is_empty() {
        let (length, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt(&"a snappy block length is cut short"))?;
        let length = u32::from_be_bytes(*length) as usize;
        let raw = tail
            .get(..length)
            .ok_or_else(|| corrupt(&"a snappy block is cut short"))?;
        block(raw, out)?;
        rest = &tail[length..];
    }
    Ok(())
}

fn parse_records(
    body: &mut Bytes,
    base_offset: i64,
    base_timestamp: i64,
    count: i32,
) -> Result<Vec<Record>, String> {
    // The count is the client's word; the bytes present bound it.
    let fits = body.remaining() / MIN_RECORD_LEN;
    if count.max(0) as usize > fits {
        return Err(format!(
            "{count} records claimed in {} bytes",
            body.remaining()
        ));
    }
    let mut records = Vec::with_capacity(count.max(0) as usize);
    for _ in 0..count {
        let length = read_varint(body)?;
        let length = usize::try_from(length).map_err(|_| format!("record length {length}"))?;
        if body.remaining() < length {
            return Err("record runs past the batch".into());
        }
        let mut record = body.split_to(length);
        let _attributes = take(&mut record, 1)?.get_i8();
        // Both deltas are the client's word: a sum past i64 is no record at all, so it is
        // refused, never wrapped (release builds would wrap, debug builds panic).
        let timestamp = base_timestamp
            .checked_add(read_varlong(&mut record)?)
            .ok_or("timestamp delta overflows")?;
        let offset = base_offset
            .checked_add(i64::from(read_varint(&mut record)?))
            .ok_or("offset delta overflows")?;
        let key = read_nullable(&mut record)?;
        let value = read_nullable(&mut record)?;
        let header_count = read_varint(&mut record)?;
        let mut headers = Vec::with_capacity(header_count.clamp(0, 64) as usize);
        for _ in 0..header_count {
            let name = read_nullable(&mut record)?.ok_or("null header key")?;
            headers.push((name, read_nullable(&mut record)?));
        }
        records.push(Record {
            offset,
            timestamp,
            key,
            value,
            headers,
        });
    }
    Ok(records)
}

/// One uncompressed CreateTime batch holding `records` (offsets must be consecutive), as a
/// plain (non-idempotent) producer would have written it.
pub fn encode_records(records: &[Record]) -> Bytes {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Bytes::new();
    };
    let base_timestamp = first.timestamp;
    let max_timestamp = records
        .iter()
        .map(|r| r.timestamp)
        .max()
        .unwrap_or(base_timestamp);
    let mut body = BytesMut::new();
    let mut record_bytes = BytesMut::new();
    for record in records {
        record_bytes.clear();
        record_bytes.put_i8(0);
        write_varlong(&mut record_bytes, record.timestamp - base_timestamp);
        write_varlong(&mut record_bytes, record.offset - first.offset);
        write_nullable(&mut record_bytes, record.key.as_ref());
        write_nullable(&mut record_bytes, record.value.as_ref());
        write_varlong(&mut record_bytes, record.headers.len() as i64);
        for (name, value) in &record.headers {
            write_nullable(&mut record_bytes, Some(name));
            write_nullable(&mut record_bytes, value.as_ref());
        }
        write_varlong(&mut body, record_bytes.len() as i64);
        body.extend_from_slice(&record_bytes);
    }
    let mut batch = BytesMut::with_capacity(HEADER_LEN + body.len());
    batch.put_i64(first.offset);
    batch.put_i32((HEADER_LEN - 12 + body.len()) as i32);
    batch.put_i32(0); // partition leader epoch
    batch.put_i8(2); // magic
    batch.put_u32(0); // CRC, filled in below
    batch.put_i16(0); // attributes: no compression, CreateTime
    batch.put_i32((last.offset - first.offset) as i32);
    batch.put_i64(base_timestamp);
    batch.put_i64(max_timestamp);
    batch.put_i64(-1); // producer id
    batch.put_i16(-1); // producer epoch
    batch.put_i32(-1); // base sequence
    batch.put_i32(records.len() as i32);
    batch.extend_from_slice(&body);
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch.freeze()
}

fn take(buf: &mut Bytes, n: usize) -> Result<Bytes, String> {
    match buf.remaining() >= n {
        true => Ok(buf.split_to(n)),
        false => Err("record ends early".into()),
    }
}

fn read_varlong(buf: &mut Bytes) -> Result<i64, String> {
    let mut raw: u64 = 0;
    for shift in (0..70).step_by(7) {
        let byte = take(buf, 1)?.get_u8();
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    Err("varint too long".into())
}

fn read_varint(buf: &mut Bytes) -> Result<i32, String> {
    i32::try_from(read_varlong(buf)?).map_err(|_| "varint out of range".to_string())
}

fn read_nullable(buf: &mut Bytes) -> Result<Option<Bytes>, String> {
    match read_varint(buf)? {
        -1 => Ok(None),
        n => Ok(Some(take(
            buf,
            usize::try_from(n).map_err(|_| format!("length {n}"))?,
        )?)),
    }
}

fn write_varlong(buf: &mut BytesMut, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw >= 0x80 {
        buf.put_u8((raw as u8) | 0x80);
        raw >>= 7;
    }
    buf.put_u8(raw as u8);
}

fn write_nullable(buf: &mut BytesMut, bytes: Option<&Bytes>) {
    match bytes {
        Some(bytes) => {
            write_varlong(buf, bytes.len() as i64);
            buf.extend_from_slice(bytes);
        }
        None => write_varlong(buf, -1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_batch::parse_produce_batches;
    use kafka_protocol::records::{Compression, RecordBatchDecoder};

    fn sample(offset: i64) -> Record {
        Record {
            offset,
            timestamp: 1_700_000_000_000 + offset * 3,
            key: (offset % 2 == 0).then(|| Bytes::from(format!("k{offset}"))),
            value: (offset != 2).then(|| Bytes::from(vec![b'v'; offset as usize * 100])),
            headers: vec![
                (Bytes::from("dup"), Some(Bytes::from("first"))),
                (Bytes::from("dup"), Some(Bytes::from("second"))),
                (Bytes::from("none"), None),
            ],
        }
    }

    #[test]
    fn records_round_trip_with_repeated_headers_and_nulls() {
        let records: Vec<Record> = (10..15).map(sample).collect();
        let batch = encode_records(&records);
        let parsed = parse_produce_batches(&batch).expect("a valid batch with a good CRC");
        assert_eq!(decode_records(&parsed[0], usize::MAX).ok(), Some(records));
    }

    #[test]
    fn compressed_client_batches_decode() {
        for compression in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let bytes = crate::record_batch::tests::client_batch(4, compression, -1);
            let batch = &parse_produce_batches(&bytes).expect("valid")[0];
            let ours = decode_records(batch, usize::MAX).expect("decoded");
            let theirs = RecordBatchDecoder::decode(&mut bytes.clone())
                .expect("codec")
                .records;
            let pairs: Vec<_> = theirs
                .iter()
                .map(|r| (r.offset, r.timestamp, r.key.clone(), r.value.clone()))
                .collect();
            let mine: Vec<_> = ours
                .iter()
                .map(|r| (r.offset, r.timestamp, r.key.clone(), r.value.clone()))
                .collect();
            assert_eq!(mine, pairs, "{compression:?}");
        }
    }

    /// A batch whose header claims `count` records, its CRC made to match: what a hostile
    /// client can send.
    fn claiming(bytes: &Bytes, count: i32) -> Bytes {
        let mut lying = bytes.to_vec();
        lying[57..61].copy_from_slice(&count.to_be_bytes());
        lying[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        let crc = crc32c::crc32c(&lying[21..]);
        lying[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(lying)
    }

    #[test]
    fn batches_decompress_up_to_the_limit_and_no_further() {
        for compression in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            // 2,000 records of about 115 bytes: over 200 KiB from a few KiB compressed.
            let bytes = crate::record_batch::tests::client_batch(2000, compression, -1);
            assert!(
                bytes.len() < 32 << 10,
                "{compression:?}: {} bytes",
                bytes.len()
            );
            let batch = &parse_produce_batches(&bytes).expect("valid")[0];
            let refused = decode_records(batch, 64 << 10).expect_err("over the limit");
            assert!(
                matches!(refused, Error::MessageTooLarge(_)),
                "{compression:?}: {refused:?}"
            );
            let decoded = decode_records(batch, 1 << 20).expect("under the limit");
            assert_eq!(decoded.len(), 2000, "{compression:?}");
        }
    }

    /// Deltas that take a record's offset or timestamp past i64 are refused as corrupt,
    /// neither wrapped nor panicked on (arithmetic overflow: found by the record_batch fuzz
    /// target, tests/fuzz/corpus/record_batch/crash-6d0f884d5a856231c435248a8067eea21d14641a).
    #[test]
    fn deltas_past_i64_are_a_corrupt_message() {
        let batch = encode_records(&[sample(0), sample(1)]);
        // baseOffset, then baseTimestamp, at i64::MAX: the second record's deltas overflow.
        for at in [0, 27] {
            let mut bytes = batch.to_vec();
            bytes[at..at + 8].copy_from_slice(&i64::MAX.to_be_bytes());
            let crc = crc32c::crc32c(&bytes[21..]);
            bytes[17..21].copy_from_slice(&crc.to_be_bytes());
            let parsed = parse_produce_batches(&Bytes::from(bytes)).expect("a valid header");
            let refused = decode_records(&parsed[0], usize::MAX);
            assert!(
                matches!(refused, Err(Error::CorruptMessage(_))),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn a_record_count_the_bytes_cannot_hold_is_refused_before_anything_is_reserved() {
        let plain = crate::record_batch::tests::client_batch(1, Compression::None, -1);
        let refused = parse_produce_batches(&claiming(&plain, i32::MAX));
        assert!(
            matches!(refused, Err(Error::CorruptMessage(_))),
            "{refused:?}"
        );
        // Compressed, the count is only checkable once decompressed: still refused.
        let gzip = crate::record_batch::tests::client_batch(1, Compression::Gzip, -1);
        let lying = claiming(&gzip, i32::MAX);
        let batch = &parse_produce_batches(&lying).expect("the header alone looks fine")[0];
        let refused = decode_records(batch, 64 << 20);
        assert!(
            matches!(refused, Err(Error::CorruptMessage(_))),
            "{refused:?}"
        );
    }
}
