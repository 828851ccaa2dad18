//! Committed offsets as the coordinator shard sees them: a bounded cache in front of the
//! backend's offset store, which it owns (handlers never reach the store themselves).
//! Writes go to the store first (one write per commit request) and then to the cache; a
//! group's offsets are loaded from the store the first time they are read.

use crate::backend::{CommittedOffset, GroupOffsets, OffsetStore};
use crate::error::Result;
use crate::TopicPartition;
use glommio::sync::Semaphore;
use hashbrown::HashMap;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

/// Groups whose offsets are kept in memory at once; the least recently used idle group
/// beyond it is dropped and reloaded when asked for again.
pub const CACHED_GROUPS: usize = 10_000;

struct GroupEntry {
    /// Serialises a group's writes and loads, so the cache never goes back in time.
    lock: Semaphore,
    loaded: Cell<bool>,
    offsets: RefCell<HashMap<TopicPartition, CommittedOffset>>,
    last_used: Cell<Instant>,
}

pub struct OffsetCache {
    store: OffsetStore,
    groups: RefCell<HashMap<String, Rc<GroupEntry>>>,
    capacity: usize,
}

impl OffsetCache {
    pub fn new(store: OffsetStore, capacity: usize) -> Self {
        Self {
            store,
            groups: RefCell::default(),
            capacity,
        }
    }

    /// Every group with committed offsets in the store, on any shard.
    pub async fn stored_groups(&self) -> Result<Vec<String>> {
        self.store.list_groups().await
    }

    fn entry(&self, group: &str) -> Rc<GroupEntry> {
        let now = Instant::now();
        if let Some(entry) = self.groups.borrow().get(group) {
            entry.last_used.set(now);
            return entry.clone();
        }
        self.make_room();
        let entry = Rc::new(GroupEntry {
            lock: Semaphore::new(1),
            loaded: Cell::new(false),
            offsets: RefCell::default(),
            last_used: Cell::new(now),
        });
        self.groups
            .borrow_mut()
            .insert(group.to_string(), entry.clone());
        entry
    }

    fn make_room(&self) {
        let mut groups = self.groups.borrow_mut();
        if groups.len() < self.capacity {
            return;
        }
        // An entry in the middle of a write or load stays: its result must land in it.
        let oldest = groups
            .iter()
            .filter(|(_, e)| e.lock.available() > 0 && Rc::strong_count(e) == 1)
            .min_by_key(|(_, e)| e.last_used.get())
            .map(|(name, _)| name.clone());
        if let Some(name) = oldest {
            groups.remove(&name);
        }
    }

    /// The groups this cache holds: what the lag metric names when the store does not answer.
    pub fn cached_groups(&self) -> Vec<String> {
        self.groups.borrow().keys().cloned().collect()
    }

    /// Stores a commit request's offsets (one backend write) and caches them.
    pub async fn commit(&self, group: &str, offsets: GroupOffsets) -> Result<()> {
        let entry = self.entry(group);
        let _permit = entry.lock.acquire_permit(1).await;
        self.store.store(group, &offsets).await?;
        entry.offsets.borrow_mut().extend(offsets);
        Ok(())
    }

    /// Every committed offset of `group`, loaded from the store if not cached.
    pub async fn fetch(&self, group: &str) -> Result<HashMap<TopicPartition, CommittedOffset>> {
        let entry = self.entry(group);
        if !entry.loaded.get() {
            let _permit = entry.lock.acquire_permit(1).await;
            if !entry.loaded.get() {
                let stored = self.store.load(group).await?;
                let mut offsets = entry.offsets.borrow_mut();
                // Commits made while not loaded went to the store first: it has them too.
                offsets.clear();
                offsets.extend(stored);
                entry.loaded.set(true);
            }
        }
        let offsets = entry.offsets.borrow().clone();
        Ok(offsets)
    }

    /// Forgets some (or, with `None`, all) of a group's offsets, in the store and here.
    pub async fn delete(&self, group: &str, partitions: Option<&[TopicPartition]>) -> Result<()> {
        let entry = self.entry(group);
        let _permit = entry.lock.acquire_permit(1).await;
        self.store.delete(group, partitions).await?;
        match partitions {
            None => {
                entry.offsets.borrow_mut().clear();
                entry.loaded.set(true);
            }
            Some(partitions) => {
                let mut offsets = entry.offsets.borrow_mut();
                for tp in partitions {
                    offsets.remove(tp);
                }
            }
        }
        Ok(())
    }
}
