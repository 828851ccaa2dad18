//! A shard's part in a graceful shutdown: once it begins, listeners stop accepting,
//! connections stop reading, every request already read is answered, and long waits
//! (a Fetch's long poll, a JoinGroup parked for a rebalance) end early so that answering
//! does not take their full timeout. `drain` returns once every connection has closed.

use glommio::sync::{Gate, Pass, Semaphore};
use std::cell::Cell;
use std::future::Future;

/// One per shard, shared by its listeners and connections.
pub struct Shutdown {
    /// Closed when shutdown begins, which wakes every waiter at once (a semaphore that
    /// never has units is glommio's broadcast event).
    begun: Semaphore,
    has_begun: Cell<bool>,
    /// Entered by every connection; closing it waits for them all.
    connections: Gate,
    /// Connections open when shutdown began, and requests answered after it.
    drained: Cell<Drained>,
}

/// What a shard finished after shutdown began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    pub connections: usize,
    pub requests: usize,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            begun: Semaphore::new(0),
            has_begun: Cell::new(false),
            connections: Gate::new(),
            drained: Cell::default(),
        }
    }
}

impl Shutdown {
    /// Starts the shutdown; every `begun()` waiter wakes.
    pub fn begin(&self) {
        self.has_begun.set(true);
        self.begun.close();
    }

    pub fn has_begun(&self) -> bool {
        self.has_begun.get()
    }

    /// Completes when shutdown begins (at once if it has).
    pub async fn begun(&self) {
        // Never granted: the semaphore has no units, so this ends only when it closes.
        let _ = self.begun.acquire(1).await;
    }

    /// `work`'s answer, or `None` if shutdown begins first.
    pub async fn unless_begun<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        let work = std::pin::pin!(work);
        let begun = std::pin::pin!(self.begun());
        match futures::future::select(work, begun).await {
            futures::future::Either::Left((answer, _)) => Some(answer),
            futures::future::Either::Right(_) => None,
        }
    }

    /// A pass for a new connection, held while it is open; `None` once shutdown has begun.
    pub fn enter(&self) -> Option<Pass> {
        if self.has_begun() {
            return None;
        }
        self.connections.enter().ok()
    }

    /// Counts a request answered after shutdown began.
    pub fn answered(&self) {
        if self.has_begun() {
            let mut drained = self.drained.get();
            drained.requests += 1;
            self.drained.set(drained);
        }
    }

    /// Counts a connection closed after shutdown began.
    pub fn closed(&self) {
        if self.has_begun() {
            let mut drained = self.drained.get();
            drained.connections += 1;
            self.drained.set(drained);
        }
    }

    /// Begins the shutdown if it has not begun and waits until every connection has closed.
    pub async fn drain(&self) -> Drained {
        self.begin();
        let _ = self.connections.close().await;
        self.drained.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn drain_waits_for_open_connections_and_wakes_waiters() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let shutdown = Rc::new(Shutdown::default());
                let pass = shutdown.enter().expect("open before shutdown");
                let parked = {
                    let shutdown = shutdown.clone();
                    glommio::spawn_local(async move {
                        shutdown
                            .unless_begun(futures::future::pending::<()>())
                            .await
                    })
                };
                let connection = {
                    let shutdown = shutdown.clone();
                    glommio::spawn_local(async move {
                        shutdown.begun().await;
                        shutdown.answered();
                        shutdown.closed();
                        drop(pass);
                    })
                };
                let drained = shutdown.drain().await;
                assert_eq!(
                    drained,
                    Drained {
                        connections: 1,
                        requests: 1
                    }
                );
                assert_eq!(parked.await, None, "a long wait ends when shutdown begins");
                connection.await;
                assert!(shutdown.enter().is_none(), "no connection after shutdown");
            })
            .expect("executor")
            .join()
            .expect("test ran");
    }
}
