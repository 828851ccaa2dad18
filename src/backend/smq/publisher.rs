//! One long-lived PublishMessage stream per owned partition, pipelined.
//!
//! `publish` queues a request's messages synchronously, so requests keep the order in
//! which they reached the shard; the stream answers every message in order with its
//! assigned offset, and a background task matches answers to the waiting requests. One
//! stream per partition because two streams on one partition can store records out of
//! offset order, and an open stream keeps the broker from unloading the partition.

use super::channel::SmqClient;
use super::codec::SmqMessage;
use super::proto::messaging_pb::publish_message_request::{InitMessage, Message};
use super::proto::messaging_pb::{DataMessage, PublishMessageRequest};
use super::proto::schema_pb::{Partition, Topic};
use crate::error::{Error, Result};
use futures::channel::{mpsc, oneshot};
use futures::future::LocalBoxFuture;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

/// Where a partition's stream goes: its leader's client, the topic, the full partition.
pub type Target = (SmqClient, Topic, Partition);

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
    pub fn open(
        target: LocalBoxFuture<'static, Result<Target>>,
        name: String,
        now_ns: i64,
    ) -> Self {
        let (requests, queued) = mpsc::unbounded();
        let state = Rc::new(RefCell::new(State::default()));
        let task_state = state.clone();
        let (end, ended) = oneshot::channel();
        glommio::spawn_local(async move {
            let reason = run(target, queued, name, task_state.clone()).await;
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
            let data = DataMessage {
                key: message.key,
                value: message.value,
                ts_ns: message.ts_ns,
                ctrl: None,
            };
            let _ = self.requests.unbounded_send(PublishMessageRequest {
                message: Some(Message::Data(data)),
            });
        }
        answer
    }
}

/// Runs the stream until it ends; returns why it ended.
async fn run(
    target: LocalBoxFuture<'static, Result<Target>>,
    queued: mpsc::UnboundedReceiver<PublishMessageRequest>,
    name: String,
    state: Rc<RefCell<State>>,
) -> String {
    let (mut client, topic, partition) = match target.await {
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
    let outbound = futures::stream::StreamExt::chain(futures::stream::iter([init]), queued);
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
    loop {
        let ack = match responses.message().await {
            Ok(Some(ack)) => ack,
            Ok(None) => return "publish stream closed by the broker".into(),
            Err(status) => return format!("publish stream failed: {}", status.message()),
        };
        if !ack.error.is_empty() {
            return format!("publish failed: {}", ack.error);
        }
        acknowledge(&state, ack.assigned_offset);
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
