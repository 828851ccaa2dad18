//! Consumer groups. Each group is coordinated by the shard that owns hash(group id); that
//! shard holds its membership ([`state::Group`]) and its committed offsets
//! ([`offsets::OffsetCache`] in front of the backend's store). Nothing here is shared
//! between shards, so requests for a group that reach another shard get NOT_COORDINATOR
//! and the client asks FindCoordinator again.

pub mod offsets;
pub mod state;

use crate::config::Config;
use hashbrown::HashMap;
use offsets::{OffsetCache, CACHED_GROUPS};
use state::{Group, GroupSettings};
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// How often sessions and rebalance deadlines are checked.
pub const TICK: Duration = Duration::from_millis(100);

/// The groups one shard coordinates.
pub struct Coordinator {
    groups: RefCell<HashMap<String, Group>>,
    pub offsets: OffsetCache,
    settings: GroupSettings,
}

impl Coordinator {
    pub fn new(config: &Config) -> Self {
        Self {
            groups: RefCell::default(),
            offsets: OffsetCache::new(CACHED_GROUPS),
            settings: GroupSettings {
                initial_rebalance_delay: Duration::from_millis(
                    config.group_initial_rebalance_delay_ms,
                ),
                min_session_timeout: Duration::from_millis(config.group_min_session_timeout_ms),
                max_session_timeout: Duration::from_millis(config.group_max_session_timeout_ms),
            },
        }
    }

    /// Runs `f` on the group, creating it (empty) if it does not exist yet.
    pub fn with_group_or_new<R>(&self, id: &str, f: impl FnOnce(&mut Group) -> R) -> R {
        let now = Instant::now();
        let mut groups = self.groups.borrow_mut();
        let group = groups
            .entry_ref(id)
            .or_insert_with(|| Group::new(id, self.settings, now));
        let result = f(group);
        if group.state == state::GroupState::Empty && group.is_empty() {
            groups.remove(id);
        }
        result
    }

    /// Runs `f` on the group if it exists.
    pub fn with_group<R>(&self, id: &str, f: impl FnOnce(&mut Group) -> R) -> Option<R> {
        let mut groups = self.groups.borrow_mut();
        let group = groups.get_mut(id)?;
        let result = f(group);
        if group.state == state::GroupState::Empty && group.is_empty() {
            groups.remove(id);
        }
        Some(result)
    }

    /// Names of the groups with members here.
    pub fn group_ids(&self) -> Vec<String> {
        self.groups.borrow().keys().cloned().collect()
    }

    /// Expires sessions and completes rebalances whose time has come; empty groups go
    /// (their committed offsets stay in the store).
    pub fn tick(&self) {
        let now = Instant::now();
        let mut groups = self.groups.borrow_mut();
        for group in groups.values_mut() {
            group.tick(now);
        }
        groups.retain(|_, g| !(g.state == state::GroupState::Empty && g.is_empty()));
    }
}

/// Kafka's group id rule: any non-empty string.
pub fn valid_group_id(id: &str) -> bool {
    !id.is_empty()
}
