//! What SMQ has flushed of a partition, read from where SeaweedFS stores it rather than
//! through the broker: the partition's log files in the filer, their chunks from the
//! volume servers, decoded here on the shard that owns the partition.
//!
//! Why: the broker reads flushed records slowly (it decodes a file from its start for
//! every 1000 offsets, proto/README.md "FetchMessage"), serves them by position rather
//! than with their offsets, and after a reload cannot serve a partition's first flush
//! window at all ("Partition unloading"). A log file's records carry their offsets.
//!
//! Format at the pinned version (proto/README.md "Log files"): the partition directory
//! `/topics/<namespace>/<topic>/v<generation time>/<range start>-<range stop>` holds one
//! file per flush, named by the flush's start time (a flush in the same second appends a
//! chunk to the file); a chunk is a sequence of 4-byte big-endian lengths each followed by
//! a `filer_pb.LogEntry`. A file's extended attributes `offset_min` and `offset_max`
//! (big-endian u64) bound its offsets, but are missing when its first flush started at
//! offset 0, and understate the minimum when a later chunk was appended to such a file: so
//! they only say where to look, and a file's true span is learned by reading it. Anything
//! else (`.parquet` and `.offset` files, chunk manifests, encrypted chunks, an entry that
//! does not decode) is not read here: the broker serves those offsets as before.
//!
//! Waiting for a flush (`--smq-acks-all flushed`): SMQ has no flush RPC and reports no
//! flushed watermark, so the files say what is flushed. Rather than list a waiting
//! partition's directory every `FLUSH_POLL` (with many partitions waiting, that load alone
//! slowed the filer to seconds per listing, perf/RESULTS.md), the shard follows the filer's
//! changes under the namespace with one SubscribeMetadata stream (`watch`), which hands it
//! each file the broker writes as it writes it. A listing every `WATCHED_POLL` still makes
//! sure no change was missed; while the stream is down or silent, listings every
//! `FLUSH_POLL` take over.

use super::codec::Decoded;
use super::filer::Filer;
use super::proto::filer_pb::{Entry, FileChunk, FileId, LogEntry, SubscribeMetadataResponse};
use super::proto::schema_pb::Partition;
use super::volume;
use crate::error::{Error, Result};
use crate::TopicPartition;
use bytes::{Buf, Bytes};
use futures::channel::oneshot;
use futures::future::{select, Either};
use hashbrown::HashMap;
use prost::Message;
use std::cell::{Cell, RefCell};
use std::pin::pin;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

/// Least time between two listings of a partition for `flushed_end`: waiters for a flush
/// share one.
const FLUSH_POLL: Duration = Duration::from_millis(100);
/// Least time between two listings of a partition while the watch of the filer is live:
/// then a listing only makes sure no change was missed.
const WATCHED_POLL: Duration = Duration::from_secs(1);
/// Longest the watch may go without a word from the filer before it counts as broken
/// (the filer sends an idle heartbeat every 5 s).
const WATCH_SILENCE: Duration = Duration::from_secs(15);
/// Pause before a broken watch subscribes again.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);
/// Furthest back a new subscription asks the filer to replay changes from: changes older
/// than that were seen by listings meanwhile.
const REPLAY_AT_MOST: Duration = Duration::from_secs(30);
/// How far before the last known file a listing starts (see `refresh`).
const RELIST_SECONDS: i64 = 10;
/// The broker's offset-manager checkpoint in a partition's directory: 8 bytes, big-endian.
const CHECKPOINT: &str = "checkpoint.offset";

/// What a partition's directory held when last listed.
#[derive(Default)]
struct PartitionLog {
    files: Vec<LogFile>,
    listed: bool,
    /// When `flushed_end` last listed the directory.
    polled_at: Option<Instant>,
    /// The last offset the broker's offset manager checkpointed (`checkpoint.offset`), as
    /// last listed.
    checkpoint: Option<i64>,
    /// The offset after the largest `offset_max` the files' attributes claim.
    claimed_end: i64,
    /// Changes to the directory the watch has seen, and who waits for the next one.
    changes: u64,
    change_waiters: Vec<oneshot::Sender<()>>,
}

struct LogFile {
    name: String,
    chunks: Vec<FileChunk>,
    /// The offsets it holds: learned by reading it, else claimed by its attributes.
    span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Span {
    Unknown,
    /// From `offset_min`/`offset_max`: the maximum is right, the minimum may be too high.
    Claimed {
        last: i64,
    },
    /// Read: the least and greatest offsets of its records (`None` if it holds none).
    Read(Option<(i64, i64)>),
}

impl Span {
    /// Its last offset, if known.
    fn last(self) -> Option<i64> {
        match self {
            Span::Claimed { last } | Span::Read(Some((_, last))) => Some(last),
            Span::Unknown | Span::Read(None) => None,
        }
    }
}

impl PartitionLog {
    /// What entries of the directory (listed, or reported by the watch) say: the broker's
    /// checkpoint, and log files new or grown by a chunk.
    fn take_in(&mut self, entries: Vec<Entry>) {
        if let Some(checkpoint) = entries.iter().find(|e| e.name == CHECKPOINT) {
            // The broker's checkpoints only rise; a change the watch reports late (or
            // replays) must not take one back.
            let read = <[u8; 8]>::try_from(&checkpoint.content[..])
                .ok()
                .map(i64::from_be_bytes);
            self.checkpoint = self.checkpoint.max(read);
        }
        for mut entry in entries.into_iter().filter(is_log_file) {
            for chunk in &mut entry.chunks {
                if let (true, Some(fid)) = (chunk.file_id.is_empty(), &chunk.fid) {
                    chunk.file_id = file_id_string(fid);
                }
            }
            let span = claimed_span(&entry);
            if let Span::Claimed { last } = span {
                self.claimed_end = self.claimed_end.max(last + 1);
            }
            match self.files.iter_mut().find(|f| f.name == entry.name) {
                Some(known) if known.chunks.len() == entry.chunks.len() => {}
                Some(known) => {
                    known.chunks = entry.chunks;
                    known.span = span;
                }
                None => self.files.push(LogFile {
                    name: entry.name,
                    chunks: entry.chunks,
                    span,
                }),
            }
        }
        self.files.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

/// Follows the filer's changes under `prefix` for `files`, subscribing again whenever the
/// stream breaks or falls silent, until `files` is dropped.
async fn watch(files: Weak<LogFiles>, filer: Rc<Filer>, prefix: String) {
    let client_id = (uuid::Uuid::new_v4().as_u128() as i32) | 1;
    let mut client_epoch = 0;
    let mut since_ns = 0;
    loop {
        client_epoch += 1;
        let now_ns = i64::try_from(crate::unix_time().as_nanos()).unwrap_or(i64::MAX);
        let earliest_ns = now_ns.saturating_sub(REPLAY_AT_MOST.as_nanos() as i64);
        since_ns = if since_ns == 0 {
            now_ns
        } else {
            since_ns.max(earliest_ns)
        };
        let subscribed = pin!(filer.subscribe(&prefix, since_ns, client_id, client_epoch));
        let silence = pin!(glommio::timer::sleep(WATCH_SILENCE));
        let why = match select(subscribed, silence).await {
            Either::Left((Ok(mut stream), _)) => loop {
                let next = pin!(stream.message());
                let silence = pin!(glommio::timer::sleep(WATCH_SILENCE));
                let response = match select(next, silence).await {
                    Either::Left((Ok(Some(response)), _)) => response,
                    Either::Left((Ok(None), _)) => break "the filer ended the stream".to_string(),
                    Either::Left((Err(status), _)) => break status.message().to_string(),
                    Either::Right(_) => break "silent".to_string(),
                };
                let Some(files) = files.upgrade() else {
                    return;
                };
                files.watch_heard.set(Some(Instant::now()));
                since_ns = since_ns.max(response.ts_ns);
                files.take_in(response);
            },
            Either::Left((Err(error), _)) => error.to_string(),
            Either::Right(_) => "no answer".to_string(),
        };
        let Some(files) = files.upgrade() else {
            return;
        };
        let was_live = files.watch_live();
        files.watch_broken();
        drop(files);
        if was_live {
            tracing::info!(
                "watch of the filer's changes under {prefix} broke ({why}): \
                 waiting acks=all produces list their partitions every {} ms until it is back",
                FLUSH_POLL.as_millis()
            );
        }
        glommio::timer::sleep(RESUBSCRIBE_AFTER).await;
    }
}

pub struct LogFiles {
    filer: Rc<Filer>,
    namespace: String,
    partitions: RefCell<HashMap<TopicPartition, Rc<RefCell<PartitionLog>>>>,
    /// Volume id → HTTP addresses of the servers holding it.
    volumes: RefCell<HashMap<String, Vec<String>>>,
    /// Whether `watch` was started (on the first wait for a change).
    watch_started: Cell<bool>,
    /// When the watch last heard from the filer; `None` while it is not subscribed.
    watch_heard: Cell<Option<Instant>>,
    /// Partition directory → what it holds, for the partitions `flushed_end` looks at:
    /// the ones the watch keeps up to date.
    watched: RefCell<HashMap<String, Rc<RefCell<PartitionLog>>>>,
}

impl LogFiles {
    pub fn new(filer: Rc<Filer>, namespace: &str) -> Self {
        Self {
            filer,
            namespace: namespace.to_string(),
            partitions: RefCell::default(),
            volumes: RefCell::default(),
            watch_started: Cell::new(false),
            watch_heard: Cell::new(None),
            watched: RefCell::default(),
        }
    }

    /// The flushed records of the file holding `offset` (else of the one beginning first
    /// after it), those from `offset`; empty if no file holds any (yet).
    pub async fn read(
        &self,
        tp: &TopicPartition,
        partition: &Partition,
        offset: i64,
    ) -> Result<Decoded> {
        let log = self.partition(tp);
        let directory = self.directory(&tp.topic, partition);
        let mut refreshed = false;
        // Files read that have no message at `offset`, by name; of those, the one with the
        // first message after it, kept in case no file holds `offset` (a gap).
        let mut passed: Vec<String> = Vec::new();
        let mut after: Option<(i64, Decoded)> = None;
        let mut found = loop {
            // Of the files that may hold `offset` (files read and found empty, ending before
            // it, or beginning after it are passed over), the one ending first: file names
            // are times, and a file a reloaded broker flushes late for its old buffer can
            // sort after one holding later offsets (proto/README.md, "Log files").
            let next = log
                .borrow()
                .files
                .iter()
                .filter(|f| {
                    f.span != Span::Read(None)
                        && f.span.last().is_none_or(|last| last >= offset)
                        && !passed.contains(&f.name)
                })
                .min_by_key(|f| f.span.last().unwrap_or(-1))
                .map(|f| (f.name.clone(), f.chunks.clone()));
            let Some((name, chunks)) = next else {
                if refreshed {
                    break after.map(|(_, read)| read).unwrap_or_default();
                }
                // Before accepting a gap or the end: a file may have been flushed, or one
                // read before grown a chunk, since the last listing.
                self.refresh(&log, &directory).await?;
                refreshed = true;
                passed.clear();
                after = None;
                continue;
            };
            let read = self.read_span(&log, &directory, &name, &chunks).await?;
            let Some(first) = read.first_from(offset) else {
                continue;
            };
            // The message at `offset` (a filler counts): a file whose span covers it may
            // still not hold it, where a late flush of an old buffer went into a file after
            // later offsets (seen: 0..9147 and 26854.. in one file, 9148..26853 in another).
            if first == offset {
                break read;
            }
            passed.push(name);
            if after.as_ref().is_none_or(|(earliest, _)| first < *earliest) {
                after = Some((first, read));
            }
        };
        // Up to the first hole in the file's offsets: what follows the hole may be in
        // another file (in the layout above, 9148..26853 lies between two runs of one file).
        let Some(first) = found.first_from(offset) else {
            return Ok(Decoded::default());
        };
        let end = found.run_end(first);
        found.next = Some(end);
        let mut from = offset;
        // Strictly increasing from `offset`: a repeated offset (SMQ handing out a lost one
        // again, proto/README.md) is served once, as first stored.
        found.retain_offsets(|offset| {
            let keep = offset >= from && offset < end;
            if keep {
                from = offset + 1;
            }
            keep
        });
        Ok(found)
    }

    /// Where a broker that loads the partition counts its buffer from: the offset after the
    /// largest `offset_max` the files' attributes claim, as last listed.
    pub fn claimed_end(&self, tp: &TopicPartition) -> i64 {
        let partitions = self.partitions.borrow();
        partitions.get(tp).map_or(0, |log| log.borrow().claimed_end)
    }

    /// The offset the broker's offset manager counts on from when it loads the partition:
    /// one after its last checkpoint (`mq/offset/manager.go`), as last listed.
    pub fn counted_from(&self, tp: &TopicPartition) -> i64 {
        let partitions = self.partitions.borrow();
        let checkpoint = partitions.get(tp).and_then(|log| log.borrow().checkpoint);
        checkpoint.map_or(0, |last| last + 1)
    }

    /// The offset after the last one this shard knows flushed (0 if none), as the files'
    /// attributes and what was read of them say when last listed.
    pub fn known_end(&self, tp: &TopicPartition) -> i64 {
        self.partitions.borrow().get(tp).map_or(0, |log| {
            let log = log.borrow();
            let last = log.files.iter().filter_map(|f| f.span.last()).max();
            last.map_or(0, |last| last + 1)
        })
    }

    /// The offset after the last one flushed to the filer (0 if none), listed afresh unless
    /// a listing less than `FLUSH_POLL` old already said (`WATCHED_POLL` while the watch
    /// keeps the partition's files up to date). A file whose span its attributes do not
    /// give (a partition's first) is read to learn it.
    pub async fn flushed_end(&self, tp: &TopicPartition, partition: &Partition) -> Result<i64> {
        self.flushed_end_listed(tp, partition, false).await
    }

    /// As `flushed_end`, always listed afresh: for deciding that SMQ lost records, where a
    /// file the watch has not reported yet (it replays what it missed after SeaweedFS
    /// restarts, in its own time) must not count as lost.
    pub async fn flushed_end_now(&self, tp: &TopicPartition, partition: &Partition) -> Result<i64> {
        self.flushed_end_listed(tp, partition, true).await
    }

    async fn flushed_end_listed(
        &self,
        tp: &TopicPartition,
        partition: &Partition,
        always: bool,
    ) -> Result<i64> {
        let log = self.partition(tp);
        let directory = self.directory(&tp.topic, partition);
        self.watched
            .borrow_mut()
            .entry_ref(directory.as_str())
            .or_insert_with(|| log.clone());
        let poll = if self.watch_live() {
            WATCHED_POLL
        } else {
            FLUSH_POLL
        };
        let due = always || log.borrow().polled_at.is_none_or(|at| at.elapsed() >= poll);
        if due {
            log.borrow_mut().polled_at = Some(Instant::now());
            self.refresh(&log, &directory).await?;
        }
        let unknown: Vec<(String, Vec<FileChunk>)> = log
            .borrow()
            .files
            .iter()
            .filter(|f| f.span == Span::Unknown)
            .map(|f| (f.name.clone(), f.chunks.clone()))
            .collect();
        for (name, chunks) in unknown {
            self.read_span(&log, &directory, &name, &chunks).await?;
        }
        Ok(self.known_end(tp))
    }

    /// How many changes to the partition's files the watch has seen: the mark
    /// `next_change` waits past.
    pub fn changes(&self, tp: &TopicPartition) -> u64 {
        let partitions = self.partitions.borrow();
        partitions.get(tp).map_or(0, |log| log.borrow().changes)
    }

    /// Waits, at most `within`, until there may be more of the partition flushed than
    /// `flushed_end` last said, `seen` being `changes` before it was asked: until the watch
    /// (started here when first needed) sees the next change, or `WATCHED_POLL` passes;
    /// while the watch is not live, for `FLUSH_POLL`.
    pub async fn next_change(self: &Rc<Self>, tp: &TopicPartition, seen: u64, within: Duration) {
        self.start_watch();
        let log = self.partition(tp);
        if log.borrow().changes != seen {
            return;
        }
        if !self.watch_live() {
            glommio::timer::sleep(FLUSH_POLL.min(within)).await;
            return;
        }
        let (waiter, changed) = oneshot::channel();
        {
            let mut log = log.borrow_mut();
            log.change_waiters.retain(|w| !w.is_canceled());
            log.change_waiters.push(waiter);
        }
        let timer = pin!(glommio::timer::sleep(WATCHED_POLL.min(within)));
        select(changed, timer).await;
    }

    fn watch_live(&self) -> bool {
        self.watch_heard
            .get()
            .is_some_and(|at| at.elapsed() < WATCH_SILENCE)
    }

    fn start_watch(self: &Rc<Self>) {
        if self.watch_started.replace(true) {
            return;
        }
        let prefix = format!("/topics/{}/", self.namespace);
        let watch = watch(Rc::downgrade(self), self.filer.clone(), prefix);
        glommio::spawn_local(watch).detach();
    }

    /// A change the filer reported: a file written in a watched partition's directory is
    /// taken in as a listing would, and the partition's waiters are woken.
    fn take_in(&self, response: SubscribeMetadataResponse) {
        let Some(event) = response.event_notification else {
            return;
        };
        let Some(entry) = event.new_entry else {
            return;
        };
        let directory = if event.new_parent_path.is_empty() {
            response.directory
        } else {
            event.new_parent_path
        };
        let Some(log) = self.watched.borrow().get(&directory).cloned() else {
            return;
        };
        let mut log = log.borrow_mut();
        log.take_in(vec![entry]);
        log.changes += 1;
        for waiter in log.change_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }

    /// The watch broke: its waiters go back to listing.
    fn watch_broken(&self) {
        self.watch_heard.set(None);
        for log in self.watched.borrow().values() {
            for waiter in log.borrow_mut().change_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }

    /// Lists the partition's files if this shard never has, so that `known_end` knows
    /// what was flushed before it started.
    pub async fn list_once(&self, tp: &TopicPartition, partition: &Partition) -> Result<()> {
        let log = self.partition(tp);
        if log.borrow().listed {
            return Ok(());
        }
        self.refresh(&log, &self.directory(&tp.topic, partition))
            .await
    }

    fn partition(&self, tp: &TopicPartition) -> Rc<RefCell<PartitionLog>> {
        self.partitions
            .borrow_mut()
            .entry(tp.clone())
            .or_default()
            .clone()
    }

    fn directory(&self, topic: &str, partition: &Partition) -> String {
        format!(
            "/topics/{}/{topic}/{}/{:04}-{:04}",
            self.namespace,
            generation_name(partition.unix_time_ns),
            partition.range_start,
            partition.range_stop
        )
    }

    /// Lists the directory from a little before its last known file on (which may have
    /// grown a chunk): a file is named by its first record's time, and a broker that
    /// reloaded a partition takes a new buffer's first timestamp as it comes, so a file
    /// flushed later can be named a moment earlier.
    async fn refresh(&self, log: &RefCell<PartitionLog>, directory: &str) -> Result<()> {
        let from = log
            .borrow()
            .files
            .last()
            .map(|f| file_name_before(&f.name, RELIST_SECONDS))
            .unwrap_or_default();
        let entries = self.filer.list_files_from(directory, &from).await?;
        let mut log = log.borrow_mut();
        log.listed = true;
        log.take_in(entries);
        Ok(())
    }

    /// Every record of the file, in stored order, its span noted in the listing.
    async fn read_span(
        &self,
        log: &RefCell<PartitionLog>,
        directory: &str,
        name: &str,
        chunks: &[FileChunk],
    ) -> Result<Decoded> {
        let found = self.read_file(directory, name, chunks).await?;
        if let Some(file) = log.borrow_mut().files.iter_mut().find(|f| f.name == name) {
            file.span = Span::Read(found.span());
        }
        Ok(found)
    }

    /// Every record of the file, in stored order.
    async fn read_file(
        &self,
        directory: &str,
        name: &str,
        chunks: &[FileChunk],
    ) -> Result<Decoded> {
        let mut chunks = chunks.to_vec();
        chunks.sort_by_key(|c| c.offset);
        let mut found = Decoded::default();
        for chunk in chunks.iter().filter(|c| c.size > 0) {
            if chunk.is_chunk_manifest || !chunk.cipher_key.is_empty() {
                return Err(Error::Unavailable(format!(
                    "{directory}/{name}: chunk {} is {}, which tidegate does not read",
                    chunk.file_id,
                    if chunk.is_chunk_manifest {
                        "a manifest"
                    } else {
                        "encrypted"
                    }
                )));
            }
            let data = self.read_chunk(chunk).await?;
            decode_entries(data, &mut found).map_err(|e| {
                Error::Unavailable(format!("{directory}/{name}: chunk {}: {e}", chunk.file_id))
            })?;
        }
        Ok(found)
    }

    /// The chunk's bytes, from the first of its volume's servers that has them.
    async fn read_chunk(&self, chunk: &FileChunk) -> Result<Bytes> {
        let volume = chunk
            .file_id
            .split_once(',')
            .map(|(volume, _)| volume.to_string())
            .ok_or_else(|| Error::Unavailable(format!("malformed file id {}", chunk.file_id)))?;
        let mut failures = Vec::new();
        for attempt in 0..2 {
            let urls = match self.volumes.borrow().get(&volume) {
                Some(urls) if attempt == 0 => urls.clone(),
                _ => Vec::new(),
            };
            let urls = if urls.is_empty() {
                // A volume may move: on the second try its servers are looked up again.
                let found = self.filer.lookup_volumes(vec![volume.clone()]).await?;
                let mut volumes = self.volumes.borrow_mut();
                for (id, urls) in found {
                    volumes.insert(id, urls);
                }
                volumes.get(&volume).cloned().unwrap_or_default()
            } else {
                urls
            };
            for url in &urls {
                match volume::read_chunk(url, &chunk.file_id, chunk.size).await {
                    Ok(data) => return Ok(data),
                    Err(error) => failures.push(error),
                }
            }
        }
        Err(Error::Unavailable(format!(
            "chunk {} not read: {}",
            chunk.file_id,
            if failures.is_empty() {
                "no volume server holds it".to_string()
            } else {
                failures.join("; ")
            }
        )))
    }
}

/// A file of records (not a directory, a `.parquet` or `.offset` file, or one kept inline).
fn is_log_file(entry: &Entry) -> bool {
    !entry.is_directory
        && entry.content.is_empty()
        && !entry.chunks.is_empty()
        && !entry.name.ends_with(".parquet")
        && !entry.name.ends_with(".offset")
}

fn claimed_span(entry: &Entry) -> Span {
    let attribute = |name: &str| {
        let bytes: [u8; 8] = entry.extended.get(name)?.as_ref().try_into().ok()?;
        Some(i64::from_be_bytes(bytes))
    };
    match attribute("offset_max") {
        Some(last) if attribute("offset_min").is_some() => Span::Claimed { last },
        _ => Span::Unknown,
    }
}

/// A chunk's file id as a listing names it, `<volume id>,<needle id and cookie in hex>`,
/// from its parts, which are all the filer's change events carry: the needle id's
/// big-endian bytes without their leading zeros, then the cookie's four
/// (`storage/needle/file_id.go`).
fn file_id_string(fid: &FileId) -> String {
    let mut bytes = [0u8; 12];
    bytes[..8].copy_from_slice(&fid.file_key.to_be_bytes());
    bytes[8..].copy_from_slice(&fid.cookie.to_be_bytes());
    let first = bytes[..8].iter().position(|&b| b != 0).unwrap_or(8);
    let hex: String = bytes[first..].iter().map(|b| format!("{b:02x}")).collect();
    format!("{},{hex}", fid.volume_id)
}

/// Appends the chunk's records: (u32 big-endian length, LogEntry) pairs to its end.
fn decode_entries(mut data: Bytes, found: &mut Decoded) -> std::result::Result<(), String> {
    while data.has_remaining() {
        if data.remaining() < 4 {
            return Err(format!("{} bytes after the last entry", data.remaining()));
        }
        let size = data.get_u32() as usize;
        if size > data.remaining() {
            return Err(format!(
                "an entry of {size} bytes where {} remain",
                data.remaining()
            ));
        }
        let entry = LogEntry::decode(data.split_to(size)).map_err(|e| e.to_string())?;
        found.push(entry.key, entry.data, entry.ts_ns, entry.offset);
    }
    Ok(())
}

/// The directory name of the partition generation created at `unix_time_ns`:
/// `v2006-01-02-15-04-05` in UTC (`mq/topic/local_partition.go`, PartitionGenerationFormat).
fn generation_name(unix_time_ns: i64) -> String {
    format!("v{}", time_name(unix_time_ns.div_euclid(1_000_000_000)))
}

/// `2006-01-02-15-04-05` in UTC, as SMQ names generations and log files.
fn time_name(seconds: i64) -> String {
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}-{:02}-{:02}-{:02}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// The name of a time `seconds` before the one `name` gives; empty (the directory's
/// start) if `name` is not a time.
fn file_name_before(name: &str, seconds: i64) -> String {
    let parts: Vec<i64> = name.split('-').map_while(|p| p.parse().ok()).collect();
    let [year, month, day, hour, minute, second] = parts[..] else {
        return String::new();
    };
    // Howard Hinnant's days_from_civil.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    time_name(days * 86_400 + hour * 3600 + minute * 60 + second - seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    #[test]
    fn a_listing_starts_seconds_before_the_last_file_across_days() {
        assert_eq!(
            file_name_before("2026-03-01-00-00-05", 10),
            "2026-02-28-23-59-55"
        );
        assert_eq!(
            file_name_before("2000-03-01-00-00-00", 1),
            "2000-02-29-23-59-59"
        );
        assert_eq!(
            file_name_before("2026-11-29-13-05-09", 0),
            "2026-11-29-13-05-09"
        );
        assert_eq!(file_name_before("checkpoint.offset", 10), "");
    }

    #[test]
    fn file_ids_are_spelled_as_the_filer_lists_them() {
        let fid = |volume_id, file_key, cookie| FileId {
            volume_id,
            file_key,
            cookie,
        };
        // As `weed` lists them: leading zero bytes of the needle id dropped, the cookie's
        // eight digits always there.
        assert_eq!(
            file_id_string(&fid(3, 0x0001_6370_37d6, 0x1234_5678)),
            "3,01637037d612345678"
        );
        assert_eq!(file_id_string(&fid(7, 0x1a, 0x0000_00ff)), "7,1a000000ff");
        assert_eq!(file_id_string(&fid(1, 0, 0xdead_beef)), "1,deadbeef");
        assert_eq!(
            file_id_string(&fid(4_000_000_000, u64::MAX, 0)),
            "4000000000,ffffffffffffffff00000000"
        );
    }

    #[test]
    fn generation_names_are_utc_times() {
        assert_eq!(generation_name(0), "v1970-01-01-00-00-00");
        // 2026-11-29 13:05:09.5 UTC
        assert_eq!(
            generation_name(1_795_957_509_500_000_000),
            "v2026-11-29-13-05-09"
        );
        assert_eq!(
            generation_name(951_782_400_000_000_000),
            "v2000-02-29-00-00-00"
        );
    }

    fn entry(offset: i64, value: &str) -> Bytes {
        let entry = LogEntry {
            ts_ns: 1_000_000 * (offset + 1),
            partition_key_hash: 0,
            data: Bytes::copy_from_slice(value.as_bytes()),
            key: Bytes::from_static(b"k"),
            offset,
        };
        let mut framed = bytes::BytesMut::new();
        framed.put_u32(entry.encoded_len() as u32);
        entry.encode(&mut framed).expect("room");
        framed.freeze()
    }

    #[test]
    fn a_chunk_decodes_to_its_records_with_their_offsets() {
        let chunk = [entry(7, "a"), entry(8, "b"), entry(10, "c")].concat();
        let mut found = Decoded::default();
        decode_entries(Bytes::from(chunk), &mut found).expect("decodes");
        let seen: Vec<_> = found
            .records
            .iter()
            .map(|r| (r.offset, r.value.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            seen,
            [
                (7, Bytes::from("a")),
                (8, Bytes::from("b")),
                (10, Bytes::from("c"))
            ]
        );
    }

    #[test]
    fn a_chunk_cut_short_or_lying_about_a_length_is_refused() {
        let chunk = [entry(1, "a"), entry(2, "b")].concat();
        for cut in [chunk.len() - 1, chunk.len() - 3, 2] {
            let mut found = Decoded::default();
            let error = decode_entries(Bytes::copy_from_slice(&chunk[..cut]), &mut found);
            assert!(error.is_err(), "cut at {cut}: {found:?}");
        }
        let mut lying = chunk.clone();
        lying[0] = 0x7f;
        assert!(decode_entries(Bytes::from(lying), &mut Decoded::default()).is_err());
    }
}
