//! Memory budgets: the bytes a shard, and each connection on it, may hold in requests being
//! read and handled and in responses waiting to be written.
//!
//! Bytes are charged where they enter. A request is charged before its body is read: when
//! the budget is spent, the connection stops reading from its socket until earlier requests
//! are answered (backpressure), instead of growing. Nothing waits while holding part of a
//! request, so readers cannot deadlock each other. A response is charged when it is encoded
//! (it exists by then; what bounds it is that the next request is not read) and released
//! when written, so a client that never reads holds at most its connection's budget.
//!
//! One request larger than a whole budget is still read, once nothing else is charged to
//! it: budgets bound what is held at once, `--max-request-size` bounds a request.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Bytes held against a capacity, with a queue of readers waiting for room (first come,
/// first served). A connection's budget has its shard's as parent: a charge counts in both.
pub struct MemoryBudget {
    capacity: usize,
    used: Cell<usize>,
    parent: Option<Rc<MemoryBudget>>,
    waiters: RefCell<VecDeque<(u64, Option<Waker>)>>,
    /// `waiters.len()`, read without a borrow: every request asks whether anyone waits.
    nr_waiting: Cell<usize>,
    next_waiter: Cell<u64>,
    /// Time callers of `reserve` and `has_room` waited here or in the parent, summed over
    /// finished waits (a shard's: what its connections' reading was paused for, for the
    /// metrics); the waits under way are added when asked (`waited`).
    waited: Cell<Duration>,
    /// Waits under way, and the sum of their starts (as time since `created`).
    waiting: Cell<u32>,
    waiting_since: Cell<Duration>,
    created: Instant,
}

impl MemoryBudget {
    pub fn new(capacity: usize, parent: Option<Rc<MemoryBudget>>) -> Rc<Self> {
        Rc::new(Self {
            capacity,
            used: Cell::new(0),
            parent,
            waiters: RefCell::default(),
            nr_waiting: Cell::new(0),
            next_waiter: Cell::new(0),
            waited: Cell::new(Duration::ZERO),
            waiting: Cell::new(0),
            waiting_since: Cell::new(Duration::ZERO),
            created: Instant::now(),
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Time callers have waited for room, here or in the parent, the waits under way
    /// included: a pause shows while it lasts.
    pub fn waited(&self) -> Duration {
        let now = self.created.elapsed();
        let under_way = (now * self.waiting.get()).saturating_sub(self.waiting_since.get());
        self.waited.get() + under_way
    }

    /// Counts a wait in this budget and its parents from now until the guard is dropped
    /// (when the wait ends, or is given up).
    fn pause(self: &Rc<Self>) -> Pause {
        let began = Instant::now();
        let mut budget = Some(self);
        while let Some(b) = budget {
            let since = began.saturating_duration_since(b.created);
            b.waiting.set(b.waiting.get() + 1);
            b.waiting_since.set(b.waiting_since.get() + since);
            budget = b.parent.as_ref();
        }
        Pause {
            budget: self.clone(),
            began,
        }
    }

    /// Bytes charged now (may exceed the capacity: see the module comment).
    pub fn used(&self) -> usize {
        self.used.get()
    }

    /// Bytes that can be charged before this budget, or its parent's, is spent.
    pub fn room(&self) -> usize {
        let own = self.capacity.saturating_sub(self.used.get());
        self.parent.as_ref().map_or(own, |p| own.min(p.room()))
    }

    /// Charges `bytes` at once, whatever is left.
    pub fn charge(self: &Rc<Self>, bytes: usize) -> Charge {
        self.add(bytes);
        Charge {
            budget: Some(self.clone()),
            bytes,
        }
    }

    /// Charges `bytes` once they fit (or once nothing else is charged), here and in the
    /// parent, waiting in line behind earlier callers.
    pub async fn reserve(self: &Rc<Self>, bytes: usize) -> Charge {
        // What the waits below would answer at once, without a future in line.
        if self.fits_now(bytes) && self.parent.as_ref().is_none_or(|p| p.fits_now(bytes)) {
            return self.charge(bytes);
        }
        let pause = self.pause();
        self.wait_to_fit(bytes).await;
        if let Some(parent) = &self.parent {
            parent.wait_to_fit(bytes).await;
        }
        drop(pause);
        self.charge(bytes)
    }

    /// Waits until anything more can be charged: room for a byte here and in the parent.
    pub async fn has_room(self: &Rc<Self>) {
        // Almost always true: answered without a future in line (once per request).
        if self.fits_now(1) && self.parent.as_ref().is_none_or(|p| p.fits_now(1)) {
            return;
        }
        let _pause = self.pause();
        self.wait_to_fit(1).await;
        if let Some(parent) = &self.parent {
            parent.wait_to_fit(1).await;
        }
    }

    /// Room for `bytes`, with nobody waiting in line for it.
    fn fits_now(&self, bytes: usize) -> bool {
        self.fits(bytes) && self.nr_waiting.get() == 0
    }

    fn fits(&self, bytes: usize) -> bool {
        let used = self.used.get();
        used == 0 || used.saturating_add(bytes) <= self.capacity
    }

    fn wait_to_fit(&self, bytes: usize) -> WaitToFit<'_> {
        WaitToFit {
            budget: self,
            bytes,
            key: None,
        }
    }

    fn add(&self, bytes: usize) {
        self.used.set(self.used.get() + bytes);
        if let Some(parent) = &self.parent {
            parent.add(bytes);
        }
    }

    fn release(&self, bytes: usize) {
        self.used.set(self.used.get().saturating_sub(bytes));
        self.wake_first();
        if let Some(parent) = &self.parent {
            parent.release(bytes);
        }
    }

    /// Wakes the first waiter; a waiter that goes ahead wakes the next one, so a release
    /// lets through as many as fit, in order.
    fn wake_first(&self) {
        if self.nr_waiting.get() == 0 {
            return;
        }
        if let Some((_, waker)) = self.waiters.borrow_mut().front_mut() {
            if let Some(waker) = waker.take() {
                waker.wake();
            }
        }
    }
}

/// A wait for room under way, counted in a budget and its parents until dropped.
struct Pause {
    budget: Rc<MemoryBudget>,
    began: Instant,
}

impl Drop for Pause {
    fn drop(&mut self) {
        let took = self.began.elapsed();
        let mut budget = Some(&self.budget);
        while let Some(b) = budget {
            // The start this wait added: its budget's clock at `began`.
            let since = self.began.saturating_duration_since(b.created);
            b.waiting.set(b.waiting.get() - 1);
            b.waiting_since
                .set(b.waiting_since.get().saturating_sub(since));
            b.waited.set(b.waited.get() + took);
            budget = b.parent.as_ref();
        }
    }
}

/// Bytes charged to a budget, given back when dropped.
pub struct Charge {
    budget: Option<Rc<MemoryBudget>>,
    bytes: usize,
}

impl Charge {
    /// A charge to no budget (nothing is counted).
    pub fn none() -> Self {
        Self {
            budget: None,
            bytes: 0,
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds `bytes` to the charge at once, whatever is left (as `MemoryBudget::charge`).
    pub fn grow(&mut self, bytes: usize) {
        if let Some(budget) = &self.budget {
            budget.add(bytes);
            self.bytes += bytes;
        }
    }

    /// Gives back all but `bytes` of the charge.
    pub fn shrink_to(&mut self, bytes: usize) {
        if bytes < self.bytes {
            if let Some(budget) = &self.budget {
                budget.release(self.bytes - bytes);
            }
            self.bytes = bytes;
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.shrink_to(0);
    }
}

/// Waits in `budget`'s line until `bytes` fit.
struct WaitToFit<'a> {
    budget: &'a MemoryBudget,
    bytes: usize,
    /// This waiter's place in line, once it has one.
    key: Option<u64>,
}

impl Future for WaitToFit<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let budget = self.budget;
        let mut waiters = budget.waiters.borrow_mut();
        let first = match self.key {
            Some(key) => waiters.front().is_some_and(|(k, _)| *k == key),
            None => waiters.is_empty(),
        };
        if first && budget.fits(self.bytes) {
            if self.key.take().is_some() {
                waiters.pop_front();
                budget.nr_waiting.set(waiters.len());
            }
            drop(waiters);
            budget.wake_first();
            return Poll::Ready(());
        }
        let waker = Some(cx.waker().clone());
        match self.key {
            Some(key) => {
                if let Some(entry) = waiters.iter_mut().find(|(k, _)| *k == key) {
                    entry.1 = waker;
                }
            }
            None => {
                let key = budget.next_waiter.get();
                budget.next_waiter.set(key + 1);
                waiters.push_back((key, waker));
                budget.nr_waiting.set(waiters.len());
                self.key = Some(key);
            }
        }
        Poll::Pending
    }
}

impl Drop for WaitToFit<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut waiters = self.budget.waiters.borrow_mut();
        let was_first = waiters.front().is_some_and(|(k, _)| *k == key);
        waiters.retain(|(k, _)| *k != key);
        self.budget.nr_waiting.set(waiters.len());
        drop(waiters);
        if was_first {
            // It may have been woken for room it will not use now.
            self.budget.wake_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: Future<Output = ()> + 'static>(test: impl FnOnce() -> F + Send + 'static) {
        glommio::LocalExecutorBuilder::default()
            .spawn(test)
            .expect("executor")
            .join()
            .expect("test ran");
    }

    #[test]
    fn a_charge_counts_in_the_connection_and_its_shard_until_dropped() {
        let shard = MemoryBudget::new(100, None);
        let connection = MemoryBudget::new(60, Some(shard.clone()));
        let mut charge = connection.charge(40);
        charge.grow(10);
        assert_eq!((connection.used(), shard.used()), (50, 50));
        assert_eq!((charge.bytes(), connection.room()), (50, 10));
        charge.shrink_to(20);
        assert_eq!((connection.used(), shard.used()), (20, 20));
        drop(charge);
        assert_eq!((connection.used(), shard.used()), (0, 0));
    }

    #[test]
    fn reading_waits_for_room_in_order_and_an_oversized_request_goes_alone() {
        run(|| async {
            let shard = MemoryBudget::new(100, None);
            let held = shard.charge(90);
            let order = Rc::new(RefCell::new(Vec::new()));
            let waiter = |name: &'static str, bytes: usize| {
                let (shard, order) = (shard.clone(), order.clone());
                glommio::spawn_local(async move {
                    let charge = shard.reserve(bytes).await;
                    order.borrow_mut().push(name);
                    charge
                })
            };
            let big = waiter("big", 500); // over the capacity: only alone
            let small = waiter("small", 5); // would fit now, but waits its turn
            glommio::executor().yield_now().await;
            assert!(order.borrow().is_empty(), "nothing jumps the line");
            drop(held);
            let big = big.await;
            assert_eq!(shard.used(), 500);
            drop(big);
            let small = small.await;
            assert_eq!(*order.borrow(), ["big", "small"]);
            assert_eq!(shard.used(), 5);
            drop(small);
            assert_eq!(shard.used(), 0);
        });
    }

    #[test]
    fn time_spent_waiting_for_room_is_counted_in_the_connection_and_its_shard() {
        run(|| async {
            let shard = MemoryBudget::new(100, None);
            let connection = MemoryBudget::new(100, Some(shard.clone()));
            connection.has_room().await;
            drop(connection.reserve(10).await);
            assert_eq!(shard.waited(), Duration::ZERO, "no wait, nothing counted");
            let held = connection.charge(100);
            let waiting = {
                let connection = connection.clone();
                glommio::spawn_local(async move { connection.has_room().await })
            };
            glommio::timer::sleep(Duration::from_millis(20)).await;
            // Shown while it lasts, not only once it ends.
            assert!(shard.waited() >= Duration::from_millis(20));
            drop(held);
            waiting.await;
            let waited = connection.waited();
            assert!(waited >= Duration::from_millis(20));
            assert_eq!(
                shard.waited(),
                waited,
                "the shard counts its connections' waits"
            );
            glommio::timer::sleep(Duration::from_millis(5)).await;
            assert_eq!(shard.waited(), waited, "and stops once they end");
        });
    }

    #[test]
    fn a_waiter_given_up_lets_the_next_one_through() {
        run(|| async {
            let shard = MemoryBudget::new(10, None);
            let held = shard.charge(10);
            let first = {
                let shard = shard.clone();
                glommio::spawn_local(async move { drop(shard.reserve(8).await) })
            };
            let second = {
                let shard = shard.clone();
                glommio::spawn_local(async move { shard.reserve(2).await })
            };
            glommio::executor().yield_now().await;
            drop(first); // cancelled while first in line
            drop(held);
            let second = second.await;
            assert_eq!(second.bytes(), 2);
        });
    }
}
