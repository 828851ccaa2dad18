//! A shard's part in a graceful shutdown: once it begins, listeners stop accepting,
//! connections stop reading, every request already read is answered, and long waits
//! (a Fetch's long poll, a JoinGroup parked for a rebalance) end early so that answering
//! does not take their full timeout. `drain` returns once every connection has closed.

use glommio::sync::{Gate, Pass};
use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// One per shard, shared by its listeners and connections.
pub struct Shutdown {
    has_begun: Cell<bool>,
    /// Woken all at once when shutdown begins: a slot per `Watch` that has waited.
    waiters: RefCell<Waiters>,
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
            has_begun: Cell::new(false),
            waiters: RefCell::default(),
            connections: Gate::new(),
            drained: Cell::default(),
        }
    }
}

impl Shutdown {
    /// Starts the shutdown; every `begun()` waiter wakes.
    pub fn begin(&self) {
        self.has_begun.set(true);
        let wakers: Vec<Waker> = self.waiters.borrow_mut().take_all();
        for waker in wakers {
            waker.wake();
        }
    }

    pub fn has_begun(&self) -> bool {
        self.has_begun.get()
    }

    /// Completes when shutdown begins (at once if it has).
    pub async fn begun(&self) {
        let mut watch = self.watch();
        poll_fn(|cx| watch.poll_begun(cx)).await
    }

    /// `work`'s answer, or `None` if shutdown begins first.
    pub async fn unless_begun<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        self.watch().unless_begun(work).await
    }

    /// A watch for many waits in turn (a connection's reads, one per request).
    pub fn watch(&self) -> Watch<'_> {
        Watch {
            shutdown: self,
            slot: None,
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

/// Waits for shutdown to begin, again and again. Its place among the shard's waiters is
/// taken at the first wait and kept until it is dropped, and the waker is cloned only when
/// another task waits: a connection races every read against shutdown, so that race costs
/// a flag and a pointer compare, not a registration per request.
pub struct Watch<'a> {
    shutdown: &'a Shutdown,
    slot: Option<usize>,
}

impl Watch<'_> {
    /// `work`'s answer, or `None` if shutdown begins first. `work` is polled first, so an
    /// answer that is ready is taken even after shutdown began.
    pub async fn unless_begun<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        let mut work = pin!(work);
        poll_fn(|cx| match work.as_mut().poll(cx) {
            Poll::Ready(answer) => Poll::Ready(Some(answer)),
            Poll::Pending => self.poll_begun(cx).map(|()| None),
        })
        .await
    }

    fn poll_begun(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.shutdown.has_begun() {
            return Poll::Ready(());
        }
        let mut waiters = self.shutdown.waiters.borrow_mut();
        match self.slot {
            Some(slot) => waiters.update(slot, cx.waker()),
            None => self.slot = Some(waiters.insert(cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            self.shutdown.waiters.borrow_mut().remove(slot);
        }
    }
}

/// Wakers in numbered slots; a slot is reused once its watch is dropped.
#[derive(Default)]
struct Waiters {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl Waiters {
    fn insert(&mut self, waker: Waker) -> usize {
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(waker);
                slot
            }
            None => {
                self.slots.push(Some(waker));
                self.slots.len() - 1
            }
        }
    }

    fn update(&mut self, slot: usize, waker: &Waker) {
        let entry = &mut self.slots[slot];
        if !entry.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *entry = Some(waker.clone());
        }
    }

    fn remove(&mut self, slot: usize) {
        self.slots[slot] = None;
        self.free.push(slot);
    }

    /// Every waker, leaving the slots empty but still held by their watches.
    fn take_all(&mut self) -> Vec<Waker> {
        self.slots.iter_mut().filter_map(Option::take).collect()
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
                assert_eq!(
                    shutdown.unless_begun(async { 7 }).await,
                    Some(7),
                    "ready first"
                );
            })
            .expect("executor")
            .join()
            .expect("test ran");
    }

    #[test]
    fn a_watch_serves_many_waits_and_ends_the_one_under_way_at_shutdown() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let shutdown = Rc::new(Shutdown::default());
                let reader = {
                    let shutdown = shutdown.clone();
                    glommio::spawn_local(async move {
                        let mut watch = shutdown.watch();
                        let mut answered = 0;
                        loop {
                            // Three reads that wait a little, then one that waits forever.
                            let last = answered == 3;
                            let read = async move {
                                if last {
                                    futures::future::pending::<()>().await;
                                }
                                glommio::executor().yield_now().await;
                            };
                            match watch.unless_begun(read).await {
                                Some(()) => answered += 1,
                                None => return answered,
                            }
                        }
                    })
                };
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                shutdown.begin();
                assert_eq!(reader.await, 3);
                shutdown.begun().await;
            })
            .expect("executor")
            .join()
            .expect("test ran");
    }
}
