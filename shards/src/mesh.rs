//! The cross-shard mesh: one bounded inbox per shard, any shard may send to any other.
//!
//! Each inbox is a fixed-size lock-free queue (`crossbeam_queue::ArrayQueue`): shards on
//! different cores push and pop without a lock, and a full inbox makes the sender wait
//! (`send` is async) instead of growing memory. The queue fills only when the receiving
//! shard falls behind (its core is busy); the work it has taken out is bounded by its
//! callers' own limits, not here. Messages one task sends arrive in the order it sent
//! them, and a caller that needs several sends kept in order (appends) awaits each before
//! the next. A message that wants an answer carries its own reply channel (`call`).
//!
//! Waking: the receiver parks on an `AtomicWaker`; senders that found the queue full park on
//! a lock-free list of wakers, all woken when the receiver takes a message out. glommio wakes
//! a task from another thread through its foreign-wake queue, so this works across
//! executors.

use crate::ShardId;
use crossbeam_queue::{ArrayQueue, SegQueue};
use futures::channel::oneshot;
use futures::task::AtomicWaker;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};

/// Why a message could not be delivered or answered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MeshError {
    #[error("shard {0} does not exist")]
    NoSuchShard(ShardId),
    #[error("shard {0} has stopped")]
    ShardGone(ShardId),
}

/// One shard's inbox, shared by its senders and its receiver.
struct Inbox<M> {
    queue: ArrayQueue<M>,
    /// The receiving shard, parked on an empty queue.
    receiver: AtomicWaker,
    /// Senders parked on a full queue.
    blocked_senders: SegQueue<Waker>,
    /// False once the receiver is gone: sends fail.
    receiving: AtomicBool,
}

impl<M> Inbox<M> {
    fn wake_blocked_senders(&self) {
        while let Some(waker) = self.blocked_senders.pop() {
            waker.wake();
        }
    }
}

/// What every clone of a [`Mesh`] shares: the inboxes, and how many clones are alive (the
/// receivers end once none is).
struct Shared<M> {
    inboxes: Vec<Inbox<M>>,
    senders: AtomicUsize,
}

/// The sending side of the mesh: cheap to clone, `Send`, one per shard.
pub struct Mesh<M> {
    shared: Arc<Shared<M>>,
}

impl<M> Clone for Mesh<M> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::AcqRel);
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<M> Drop for Mesh<M> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            for inbox in &self.shared.inboxes {
                inbox.receiver.wake();
            }
        }
    }
}

/// The receiving side, owned by one shard.
pub struct MeshInbox<M> {
    shared: Arc<Shared<M>>,
    shard: ShardId,
}

impl<M> Drop for MeshInbox<M> {
    fn drop(&mut self) {
        let inbox = &self.shared.inboxes[self.shard];
        inbox.receiving.store(false, Ordering::Release);
        inbox.wake_blocked_senders();
    }
}

impl<M> Mesh<M> {
    /// A mesh for `nr_shards` shards, each inbox holding up to `capacity` messages (at
    /// least one), and the inbox of each, in shard order.
    pub fn new(nr_shards: usize, capacity: usize) -> (Self, Vec<MeshInbox<M>>) {
        let inboxes = (0..nr_shards)
            .map(|_| Inbox {
                queue: ArrayQueue::new(capacity.max(1)),
                receiver: AtomicWaker::new(),
                blocked_senders: SegQueue::new(),
                receiving: AtomicBool::new(true),
            })
            .collect();
        let shared = Arc::new(Shared {
            inboxes,
            senders: AtomicUsize::new(1),
        });
        let receivers = (0..nr_shards)
            .map(|shard| MeshInbox {
                shared: shared.clone(),
                shard,
            })
            .collect();
        (Self { shared }, receivers)
    }

    pub fn nr_shards(&self) -> usize {
        self.shared.inboxes.len()
    }

    /// Puts `message` in `shard`'s inbox, waiting while it is full.
    pub async fn send(&self, shard: ShardId, message: M) -> Result<(), MeshError> {
        let inbox = self
            .shared
            .inboxes
            .get(shard)
            .ok_or(MeshError::NoSuchShard(shard))?;
        let mut message = Some(message);
        poll_fn(|cx| {
            if !inbox.receiving.load(Ordering::Acquire) {
                return Poll::Ready(Err(MeshError::ShardGone(shard)));
            }
            let Some(unsent) = message.take() else {
                return Poll::Ready(Ok(()));
            };
            let unsent = match inbox.queue.push(unsent) {
                Ok(()) => {
                    inbox.receiver.wake();
                    return Poll::Ready(Ok(()));
                }
                Err(unsent) => unsent,
            };
            // Full: park, then try once more, so a message taken out in between (whose
            // wake-up came before this waker was listed) is not missed.
            inbox.blocked_senders.push(cx.waker().clone());
            match inbox.queue.push(unsent) {
                Ok(()) => {
                    inbox.receiver.wake();
                    Poll::Ready(Ok(()))
                }
                Err(unsent) => {
                    message = Some(unsent);
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Sends the message built around a fresh reply channel and waits for the answer.
    pub async fn call<R>(
        &self,
        shard: ShardId,
        message: impl FnOnce(oneshot::Sender<R>) -> M,
    ) -> Result<R, MeshError> {
        let (reply, answer) = oneshot::channel();
        self.send(shard, message(reply)).await?;
        answer.await.map_err(|_| MeshError::ShardGone(shard))
    }
}

impl<M> MeshInbox<M> {
    /// The next message, or `None` once every sender is gone and the inbox is empty.
    pub async fn recv(&mut self) -> Option<M> {
        let inbox = &self.shared.inboxes[self.shard];
        poll_fn(|cx| {
            if let Some(message) = inbox.queue.pop() {
                inbox.wake_blocked_senders();
                return Poll::Ready(Some(message));
            }
            inbox.receiver.register(cx.waker());
            // Again after registering: a push (or the last sender leaving) in between
            // woke the waker that was registered before.
            if let Some(message) = inbox.queue.pop() {
                inbox.wake_blocked_senders();
                return Poll::Ready(Some(message));
            }
            match self.shared.senders.load(Ordering::Acquire) {
                0 => Poll::Ready(None),
                _ => Poll::Pending,
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    #[test]
    fn call_reaches_the_owner_and_returns_its_answer() {
        type Msg = (u32, oneshot::Sender<u32>);
        let (mesh, mut inboxes) = Mesh::<Msg>::new(2, 4);
        let mut inbox = inboxes.remove(1);
        let server = std::thread::spawn(move || {
            futures::executor::block_on(async move {
                while let Some((n, reply)) = inbox.recv().await {
                    let _ = reply.send(n * 2);
                }
            })
        });
        let answer = futures::executor::block_on(mesh.call(1, |reply| (21, reply)));
        assert_eq!(answer, Ok(42));
        assert_eq!(
            futures::executor::block_on(mesh.call(5, |reply| (1, reply))),
            Err(MeshError::NoSuchShard(5))
        );
        drop(mesh);
        drop(inboxes);
        assert!(server.join().is_ok());
    }

    #[test]
    fn a_full_inbox_holds_the_sender_until_the_receiver_takes_a_message() {
        let (mesh, mut inboxes) = Mesh::<u32>::new(1, 2);
        let mut inbox = inboxes.remove(0);
        futures::executor::block_on(async {
            mesh.send(0, 1).await.expect("room");
            mesh.send(0, 2).await.expect("room");
        });
        let mut third = Box::pin(mesh.send(0, 3));
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(
            third.as_mut().poll(&mut cx).is_pending(),
            "full: the sender waits"
        );
        assert!(third.as_mut().poll(&mut cx).is_pending(), "still full");
        let first = futures::executor::block_on(inbox.recv());
        assert_eq!(first, Some(1));
        assert_eq!(third.as_mut().poll(&mut cx), Poll::Ready(Ok(())));
        drop(third);
        drop(mesh);
        let rest: Vec<_> = futures::executor::block_on(async {
            let mut rest = Vec::new();
            while let Some(message) = inbox.recv().await {
                rest.push(message);
            }
            rest
        });
        assert_eq!(rest, vec![2, 3], "in the order sent, then the end");
    }

    #[test]
    fn sending_to_a_stopped_shard_fails_even_when_its_inbox_was_full() {
        let (mesh, mut inboxes) = Mesh::<u32>::new(1, 1);
        futures::executor::block_on(mesh.send(0, 1)).expect("room");
        let mut blocked = Box::pin(mesh.send(0, 2));
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(blocked.as_mut().poll(&mut cx).is_pending());
        drop(inboxes.remove(0));
        assert_eq!(
            blocked.as_mut().poll(&mut cx),
            Poll::Ready(Err(MeshError::ShardGone(0)))
        );
    }
}
