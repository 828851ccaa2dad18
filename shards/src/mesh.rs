//! The cross-shard mesh: one inbox per shard, any shard may send to any other.
//!
//! Cross-shard traffic is rare (a request that reached the wrong core, a topic change), so an
//! unbounded FIFO per destination is enough; messages from one sender arrive in the order
//! they were sent, which the gateway relies on to keep appends in order. A message that
//! wants an answer carries its own reply channel (`call`). glommio wakes a task from another
//! thread through its foreign-wake queue, so futures channels work across executors.

use crate::ShardId;
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;

/// Why a message could not be delivered or answered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MeshError {
    #[error("shard {0} does not exist")]
    NoSuchShard(ShardId),
    #[error("shard {0} has stopped")]
    ShardGone(ShardId),
}

/// The sending side of the mesh: cheap to clone, `Send`, one per shard.
pub struct Mesh<M> {
    inboxes: Vec<mpsc::UnboundedSender<M>>,
}

impl<M> Clone for Mesh<M> {
    fn clone(&self) -> Self {
        Self {
            inboxes: self.inboxes.clone(),
        }
    }
}

/// The receiving side, owned by one shard.
pub struct MeshInbox<M> {
    receiver: mpsc::UnboundedReceiver<M>,
}

impl<M> Mesh<M> {
    /// A mesh for `nr_shards` shards and the inbox of each, in shard order.
    pub fn new(nr_shards: usize) -> (Self, Vec<MeshInbox<M>>) {
        let (inboxes, receivers) = (0..nr_shards)
            .map(|_| mpsc::unbounded())
            .unzip::<_, _, Vec<_>, Vec<_>>();
        let receivers = receivers
            .into_iter()
            .map(|receiver| MeshInbox { receiver })
            .collect();
        (Self { inboxes }, receivers)
    }

    pub fn nr_shards(&self) -> usize {
        self.inboxes.len()
    }

    /// Sends `message` to `shard` without waiting for anything.
    pub fn send(&self, shard: ShardId, message: M) -> Result<(), MeshError> {
        let inbox = self
            .inboxes
            .get(shard)
            .ok_or(MeshError::NoSuchShard(shard))?;
        inbox
            .unbounded_send(message)
            .map_err(|_| MeshError::ShardGone(shard))
    }

    /// Sends the message built around a fresh reply channel and waits for the answer.
    pub async fn call<R>(
        &self,
        shard: ShardId,
        message: impl FnOnce(oneshot::Sender<R>) -> M,
    ) -> Result<R, MeshError> {
        let (reply, answer) = oneshot::channel();
        self.send(shard, message(reply))?;
        answer.await.map_err(|_| MeshError::ShardGone(shard))
    }
}

impl<M> MeshInbox<M> {
    /// The next message, or `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<M> {
        self.receiver.next().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_reaches_the_owner_and_returns_its_answer() {
        type Msg = (u32, oneshot::Sender<u32>);
        let (mesh, mut inboxes) = Mesh::<Msg>::new(2);
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
}
