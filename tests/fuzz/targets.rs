//! The fuzz targets: what each one feeds to tidegate and what it checks besides "no panic".
//!
//! One file serves both the libFuzzer binaries (`tests/fuzz/fuzz_targets/`, built by
//! `scripts/fuzz`) and the corpus replay of the normal test run (`tests/fuzz_corpus.rs`),
//! so an input the fuzzer kept is replayed through exactly the code it was found with.
//!
//! A target's input is arbitrary bytes; where a target needs a choice (a frame size limit,
//! an API and version), it takes it from the first bytes and maps every value onto a valid
//! choice, so no input is wasted on a refusal the fuzzer cannot learn from.

use bytes::{Bytes, BytesMut};
use futures::io::AsyncRead;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use tidegate::backend::smq::codec;
use tidegate::handlers::{find_api, Api, ConnectionState, APIS};
use tidegate::protocol::budget::MemoryBudget;
use tidegate::protocol::dispatch::decode_request;
use tidegate::protocol::shutdown::Shutdown;
use tidegate::protocol::{FrameError, FrameReader};
use tidegate::record_batch::{parse_produce_batches, HEADER_LEN};
use tidegate::records::decode_records;

/// Decompressed bytes a batch may grow to in `record_batch` (tidegate's default is 64 MiB;
/// a small cap reaches the refusal path with small inputs).
pub const DECOMPRESS_LIMIT: usize = 1 << 20;

/// The frame reader over a byte stream that arrives in reads of a size the input chooses.
///
/// Input: limit selector u8 (`max_frame` = 2^(n % 24) bytes), read-size selector u8 (each
/// read returns at most 2^(n % 18) bytes), then the stream. Checks that frames come back
/// exactly as the length prefixes split the stream, and that each error is the right one.
pub fn frame(data: &[u8]) {
    let Some((&[limit, read_size], stream)) = data.split_first_chunk::<2>() else {
        return;
    };
    let max_frame = 1usize << (limit % 24);
    let reader = ChunkedReader {
        rest: stream,
        chunk: 1 << (read_size % 18),
    };
    let mut frames = FrameReader::new(reader, max_frame);
    let mut at = 0;
    futures::executor::block_on(async {
        loop {
            let read = frames.read_frame().await;
            // Where the stream says the next frame is, if it says.
            let prefix = stream
                .get(at..at + 4)
                .map(|p| i32::from_be_bytes([p[0], p[1], p[2], p[3]]));
            match read {
                Ok(Some(frame)) => {
                    let length = prefix.expect("a frame without a length prefix") as usize;
                    assert!(length <= max_frame, "frame over the limit");
                    assert_eq!(&frame[..], &stream[at + 4..at + 4 + length]);
                    at += 4 + length;
                }
                Ok(None) => {
                    assert_eq!(at, stream.len(), "clean end with bytes left");
                    return;
                }
                Err(FrameError::NegativeLength(length)) => {
                    assert_eq!(Some(length), prefix);
                    assert!(length < 0);
                    return;
                }
                Err(FrameError::TooLarge { length, limit }) => {
                    assert_eq!(Some(length as i32), prefix);
                    assert!(length > limit && limit == max_frame);
                    return;
                }
                Err(FrameError::Truncated(pending)) => {
                    assert_eq!(pending, stream.len() - at, "pending bytes");
                    assert!(pending > 0);
                    return;
                }
                Err(FrameError::Io(error)) => panic!("the reader cannot fail: {error}"),
            }
        }
    });
}

/// A stream that returns at most `chunk` bytes per read, as a socket may.
struct ChunkedReader<'a> {
    rest: &'a [u8],
    chunk: usize,
}

impl AsyncRead for ChunkedReader<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let n = self.rest.len().min(self.chunk).min(buf.len());
        let (now, later) = self.rest.split_at(n);
        buf[..n].copy_from_slice(now);
        self.rest = later;
        Poll::Ready(Ok(n))
    }
}

/// The API a frame is decoded as: the one its key names if tidegate serves it, else one of
/// the table chosen by the key, so every advertised API is reached.
fn api_for(key: i16) -> &'static Api {
    find_api(key).unwrap_or_else(|| &APIS[key.rem_euclid(APIS.len() as i16) as usize])
}

/// The version decoded: the frame's own if the API advertises it, else one of the
/// advertised range chosen by it.
fn version_for(api: &Api, version: i16) -> i16 {
    if (api.min_version..=api.max_version).contains(&version) {
        return version;
    }
    let span = i32::from(api.max_version) - i32::from(api.min_version) + 1;
    (i32::from(api.min_version) + i32::from(version).rem_euclid(span)) as i16
}

/// Request decoding, header and body, for every advertised API and version.
///
/// Input: a request frame as dispatch gets it (no length prefix): api_key i16,
/// api_version i16, then the rest of the header and the body. A key or version outside the
/// table is mapped onto it (`api_for`, `version_for`). A request that decodes is encoded
/// again and decoded again, which must not panic. (Not asserted equal: kafka-protocol 0.18
/// re-encodes some unknown tagged fields of a header into bytes it cannot decode, and
/// tidegate never re-encodes a request, so that asymmetry is not tidegate's.)
pub fn request(data: &[u8]) {
    let Some(([k0, k1, v0, v1], _)) = data.split_first_chunk::<4>() else {
        return;
    };
    let api = api_for(i16::from_be_bytes([*k0, *k1]));
    let version = version_for(api, i16::from_be_bytes([*v0, *v1]));
    let connection = Rc::new(ConnectionState::new(
        None,
        Rc::new(Shutdown::default()),
        MemoryBudget::new(64 << 20, None),
        0,
        tidegate::security::session::Session::new(false, None),
    ));
    let frame = Bytes::copy_from_slice(data);
    let Ok((context, request)) = decode_request(api.key, version, frame, connection.clone()) else {
        return;
    };
    if let Ok(again) = encode_request(api.key, version, &context.header, &request) {
        let _ = decode_request(api.key, version, again, connection);
    }
}

/// Header and body as one frame without the length prefix.
pub fn encode_request(
    api_key: ApiKey,
    version: i16,
    header: &kafka_protocol::messages::RequestHeader,
    request: &kafka_protocol::messages::RequestKind,
) -> anyhow::Result<Bytes> {
    let mut frame = BytesMut::new();
    header.encode(&mut frame, api_key.request_header_version(version))?;
    request.encode(&mut frame, version)?;
    Ok(frame.freeze())
}

/// Produce records: batch splitting and validation, then decompression and record parsing
/// of each batch that validates.
///
/// Input: a mode u8, then the `records` bytes of a produce partition. Mode bit 0 set: each
/// batch's CRC is recomputed first, so the fuzzer reaches what lies behind the CRC check
/// without having to forge a CRC-32C. Checks that a batch decodes to the number of records
/// its header claims, and that rebasing and stamping the append time keep it valid.
pub fn record_batch(data: &[u8]) {
    let Some((&mode, records)) = data.split_first() else {
        return;
    };
    let mut records = records.to_vec();
    if mode & 1 == 1 {
        fix_crcs(&mut records);
    }
    let Ok(batches) = parse_produce_batches(&Bytes::from(records)) else {
        return;
    };
    for batch in &batches {
        let header = batch.header;
        if let Ok(decoded) = decode_records(batch, DECOMPRESS_LIMIT) {
            assert_eq!(decoded.len(), header.records_count as usize);
        }
        let rebased = parse_produce_batches(&batch.rebased(42)).expect("a rebased batch");
        assert_eq!(rebased[0].header.base_offset, 42);
        let stamped = batch.with_log_append_time(1_800_000_000_000);
        let stamped = parse_produce_batches(&stamped.bytes).expect("a stamped batch");
        assert_eq!(stamped[0].header.records_count, header.records_count);
    }
}

/// Rewrites the CRC of each batch the lengths delimit, as a client would have computed it.
pub fn fix_crcs(records: &mut [u8]) {
    let mut at = 0;
    while let Some(header) = records.get(at..at + HEADER_LEN) {
        let length = i32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        let Some(end) = usize::try_from(length)
            .ok()
            .and_then(|n| (at + 12).checked_add(n))
            .filter(|end| *end >= at + HEADER_LEN && *end <= records.len())
        else {
            return;
        };
        let crc = crc32c::crc32c(&records[at + 21..end]);
        records[at + 17..at + 21].copy_from_slice(&crc.to_be_bytes());
        at = end;
    }
}

/// "Now" for the SMQ round trip, in milliseconds since the epoch.
const NOW_MS: i64 = 1_800_000_000_000;

/// The SMQ envelope decoder, and the round trip tidegate relies on: whatever record a
/// stored message decodes to, encoding that record and decoding the result gives it back.
///
/// Input: key length u8, ts_ns i64, then the key and the value (the key is cut short if
/// the input is).
pub fn smq_envelope(data: &[u8]) {
    let Some((&[key_len], rest)) = data.split_first_chunk::<1>() else {
        return;
    };
    let Some((ts_ns, rest)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let (key, value) = rest.split_at(usize::from(key_len).min(rest.len()));
    let ts_ns = i64::from_be_bytes(*ts_ns);
    let (record, mark) = codec::decode(
        Bytes::copy_from_slice(key),
        Bytes::copy_from_slice(value),
        ts_ns,
        7,
    );
    let mut last_ts_ns = 0;
    let message = codec::encode(&record, mark.as_ref(), &mut last_ts_ns, NOW_MS);
    let back = codec::decode(message.key, message.value, message.ts_ns, 7);
    assert_eq!(back, (record, mark));
}

/// Input for `smq_envelope` from a stored message.
pub fn smq_input(key: &[u8], value: &[u8], ts_ns: i64) -> Vec<u8> {
    let mut input = vec![key.len().min(255) as u8];
    input.extend_from_slice(&ts_ns.to_be_bytes());
    input.extend_from_slice(key);
    input.extend_from_slice(value);
    input
}
