//! One long-lived PublishMessage stream per owned partition, pipelined.
//!
//! `publish` queues a request's messages synchronously, so requests keep the order in
//! which they reached the shard; the stream answers every message in order with its
//! assigned offset, and a background task matches answers to the waiting requests. One
//! stream per partition because two streams on one partition can store records out of
//! offset order, and an open stream keeps the broker from unloading the partition.
//!
//! A stream may start with a probe: SMQ's offset manager restarts from a checkpoint up to
//! 2 s old, not from its files (proto/README.md, "PublishMessage"), so after a crash it can
//! hand out offsets its files already hold, and a record given one would be hidden behind
//! the one stored there first. When the partition's files end past the last checkpoint
//! (and still do once a live broker would have checkpointed, `SmqLookup::resolve`), the
//! stream publishes one filler (`codec::filler`, which readers skip) before any request's
//! records and, if the broker gave it an offset below the files' end, fillers up to that
//! end.

use super::channel::SmqClient;
use super::codec::{self, SmqMessage};
use super::proto::messaging_pb::publish_message_request::{InitMessage, Message};
use super::proto::messaging_pb::{DataMessage, PublishMessageRequest, PublishMessageResponse};
use super::proto::schema_pb::{Partition, Topic};
use crate::error::{Error, Result};
use futures::channel::{mpsc, oneshot};
use futures::future::LocalBoxFuture;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

/// Where a partition's stream goes: its leader's client, the topic, the full partition.
pub type Target = (SmqClient, Topic, Partition);

/// What a partition's files hold, for a stream that must publish past them.
#[derive(Debug, Clone, Copy)]
pub struct FilesEnd {
    /// The offset after the last record in them.
    pub end: i64,
    /// The offset after the largest `offset_max` their attributes claim: where a broker
    /// that loads the partition counts its buffer from.
    pub claimed_end: i64,
}

/// Most fillers a stream publishes to get past its partition's files: a broker that lags
/// further than this behind them is not followed (the stream fails, and is opened again).
const MAX_FILLERS: i64 = 10_000_000;

pub struct Publisher {
    requests: mpsc::UnboundedSender<PublishMessageRequest>,
    state: Rc<RefCell<State>>,
    /// The last `ts_ns` sent; the broker needs them strictly increasing.
    pub last_ts_ns: Cell<i64>,
    /// Completes when the stream's task ends.
    ended: oneshot::Receiver<()>,
}

#[derive(Default)]
struct State {
    waiting: VecDeque<Waiting>,
    failed: Option<String>,
    /// Set by `close`: the stream's end is expected, not a failure to report.
    closing: bool,
    /// How far the broker's high-water mark runs ahead of the records (see `overcount`).
    overcount: i64,
}

struct Waiting {
    remaining: usize,
    base_offset: Option<i64>,
    done: oneshot::Sender<Result<Acked>>,
}

/// The offsets the broker gave a published request's first and last message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    pub first: i64,
    pub last: i64,
}

impl Publisher {
    /// Opens the stream in the background once `target` resolves; messages published
    /// before that wait in the queue.
    /// `target` also resolves to the end of what the partition's files hold, if the
    /// broker may hand out offsets below it.
    pub fn open(
        target: LocalBoxFuture<'static, Result<(Target, Option<FilesEnd>)>>,
        name: String,
        now_ns: i64,
    ) -> Self {
        let (requests, queued) = mpsc::unbounded();
        let state = Rc::new(RefCell::new(State::default()));
        let task_state = state.clone();
        let (end, ended) = oneshot::channel();
        glommio::spawn_local(async move {
            let reason = run(target, queued, name, now_ns, task_state.clone()).await;
            fail_all(&task_state, reason);
            let _ = end.send(());
        })
        .detach();
        Self {
            requests,
            state,
            last_ts_ns: Cell::new(now_ns),
            ended,
        }
    }

    /// Ends the stream once every message sent is acknowledged (the broker closes its side
    /// when ours ends), and waits for that.
    pub async fn close(self) {
        self.state.borrow_mut().closing = true;
        drop(self.requests);
        let _ = self.ended.await;
    }

    /// How far the partition's high-water mark, as the broker counts it, runs ahead of its
    /// records. A broker that loads a partition counts its buffer on from where its files'
    /// attributes end but hands out offsets from its offset manager's older checkpoint:
    /// every filler is counted twice, for as long as it keeps the partition loaded.
    pub fn overcount(&self) -> i64 {
        self.state.borrow().overcount
    }

    /// False once the stream broke; the owner opens a new one.
    pub fn is_healthy(&self) -> bool {
        self.state.borrow().failed.is_none()
    }

    /// Queues `messages`; the answer is the offsets given to the first and the last.
    pub fn publish(&self, messages: Vec<SmqMessage>) -> oneshot::Receiver<Result<Acked>> {
        let (done, answer) = oneshot::channel();
        let mut state = self.state.borrow_mut();
        if let Some(reason) = &state.failed {
            let _ = done.send(Err(Error::Unavailable(reason.clone())));
            return answer;
        }
        state.waiting.push_back(Waiting {
            remaining: messages.len(),
            base_offset: None,
            done,
        });
        for message in messages {
            let _ = self.requests.unbounded_send(request(message));
        }
        answer
    }
}

/// Runs the stream until it ends; returns why it ended.
async fn run(
    target: LocalBoxFuture<'static, Result<(Target, Option<FilesEnd>)>>,
    queued: mpsc::UnboundedReceiver<PublishMessageRequest>,
    name: String,
    since_ns: i64,
    state: Rc<RefCell<State>>,
) -> String {
    let ((mut client, topic, partition), files_end) = match target.await {
        Ok(target) => target,
        Err(error) => return error.to_string(),
    };
    let init = PublishMessageRequest {
        message: Some(Message::Init(InitMessage {
            topic: Some(topic),
            partition: Some(partition),
            ack_interval: 1,
            follower_broker: String::new(),
            publisher_name: name,
        })),
    };
    // The probe and fillers go out first; requests' records follow once `prelude` ends.
    let (prelude, prelude_out) = mpsc::unbounded();
    let outbound = futures::stream::StreamExt::chain(
        futures::stream::iter([init]),
        futures::stream::StreamExt::chain(prelude_out, queued),
    );
    let mut responses = match client.publish_message(outbound).await {
        Ok(response) => response.into_inner(),
        Err(status) => return format!("publish stream refused: {}", status.message()),
    };
    // The broker answers the init with one empty response, or with an error.
    match responses.message().await {
        Ok(Some(hello)) if hello.error.is_empty() => {}
        Ok(Some(hello)) => return format!("publish init failed: {}", hello.error),
        Ok(None) => return "publish stream closed at init".into(),
        Err(status) => return format!("publish init failed: {}", status.message()),
    }
    let send_fillers = |count: i64| {
        for _ in 0..count {
            let _ = prelude.unbounded_send(request(codec::filler(since_ns)));
        }
    };
    if let Some(files) = files_end {
        match fill_to(&mut responses, &send_fillers, files).await {
            Ok(overcount) => state.borrow_mut().overcount = overcount,
            Err(reason) => return reason,
        }
    }
    drop(prelude);
    loop {
        match next_ack(&mut responses).await {
            Ok(offset) => acknowledge(&state, offset),
            Err(reason) => return reason,
        }
    }
}

/// Publishes a filler, and fillers up to the files' end if the broker gave it an offset
/// below; returns once all are acknowledged with how far the broker's mark then runs
/// ahead of the records (`Publisher::overcount`), or why the stream ended.
async fn fill_to(
    responses: &mut tonic::Streaming<PublishMessageResponse>,
    send_fillers: &impl Fn(i64),
    files: FilesEnd,
) -> Result<i64, String> {
    let files_end = files.end;
    send_fillers(1);
    let probed = next_ack(responses).await?;
    let behind = files_end - 1 - probed;
    if behind <= 0 {
        tracing::info!(
            offset = probed,
            files_end,
            "a filler holds an offset: SeaweedMQ's checkpoint was behind the partition's files"
        );
        return Ok(0);
    }
    if behind > MAX_FILLERS {
        return Err(format!(
            "SeaweedMQ hands out offset {probed}, {behind} below what its files hold"
        ));
    }
    tracing::warn!(offset = probed, files_end,
        "SeaweedMQ hands out offsets its files already hold (it restarted from an older checkpoint): filling them before publishing");
    send_fillers(behind);
    let mut last = probed;
    for _ in 0..behind {
        last = next_ack(responses).await?;
    }
    if last < files_end - 1 {
        return Err(format!(
            "SeaweedMQ gave filler offsets up to {last}, not past {files_end}"
        ));
    }
    // Its buffer counted from `claimed_end` when the manager counted from `probed` at the
    // latest (earlier if others published since it loaded the partition).
    Ok((files.claimed_end - probed).max(0))
}

/// The offset the broker gave the next message, or why the stream ended.
async fn next_ack(responses: &mut tonic::Streaming<PublishMessageResponse>) -> Result<i64, String> {
    match responses.message().await {
        Ok(Some(ack)) if ack.error.is_empty() => Ok(ack.assigned_offset),
        Ok(Some(ack)) => Err(format!("publish failed: {}", ack.error)),
        Ok(None) => Err("publish stream closed by the broker".to_string()),
        Err(status) => Err(format!("publish stream failed: {}", status.message())),
    }
}

fn request(message: SmqMessage) -> PublishMessageRequest {
    PublishMessageRequest {
        message: Some(Message::Data(DataMessage {
            key: message.key,
            value: message.value,
            ts_ns: message.ts_ns,
            ctrl: None,
        })),
    }
}

fn acknowledge(state: &RefCell<State>, offset: i64) {
    let mut state = state.borrow_mut();
    let Some(front) = state.waiting.front_mut() else {
        tracing::warn!(offset, "SeaweedMQ acknowledged a record nobody waits for");
        return;
    };
    front.base_offset.get_or_insert(offset);
    front.remaining = front.remaining.saturating_sub(1);
    if front.remaining == 0 {
        if let Some(done) = state.waiting.pop_front() {
            let first = done.base_offset.unwrap_or(offset);
            let _ = done.done.send(Ok(Acked {
                first,
                last: offset,
            }));
        }
    }
}

/// Every waiting request learns the stream broke. Their records may or may not be stored;
/// the retriable error makes the client retry (at-least-once, as with a Kafka leader
/// change).
fn fail_all(state: &RefCell<State>, reason: String) {
    let mut state = state.borrow_mut();
    if !(state.closing && state.waiting.is_empty()) {
        tracing::warn!(%reason, "SeaweedMQ publish stream ended");
    }
    for waiting in state.waiting.drain(..) {
        let _ = waiting.done.send(Err(Error::Unavailable(reason.clone())));
    }
    state.failed = Some(reason);
}
