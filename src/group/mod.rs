//! Consumer groups. Each group is coordinated by the shard that owns hash(group id); that
//! shard holds its membership ([`state::Group`]) and its committed offsets
//! ([`offsets::OffsetCache`] in front of the backend's store). Nothing here is shared
//! between shards, so requests for a group that reach another shard get NOT_COORDINATOR
//! and the client asks FindCoordinator again.

pub mod consumer;
pub mod offsets;
pub mod state;

use crate::config::Config;
use consumer::ConsumerGroup;
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
    /// Groups on the new consumer protocol (KIP-848).
    consumer_groups: RefCell<HashMap<String, ConsumerGroup>>,
    pub offsets: OffsetCache,
    settings: GroupSettings,
    pub consumer_session_timeout: Duration,
    pub consumer_heartbeat_interval: Duration,
}

impl Coordinator {
    pub fn new(config: &Config) -> Self {
        Self {
            groups: RefCell::default(),
            consumer_groups: RefCell::default(),
            offsets: OffsetCache::new(CACHED_GROUPS),
            consumer_session_timeout: Duration::from_millis(
                config.group_consumer_session_timeout_ms,
            ),
            consumer_heartbeat_interval: Duration::from_millis(
                config.group_consumer_heartbeat_interval_ms,
            ),
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
        let new = || Group::new(id, self.settings, Instant::now());
        run_on(&self.groups, id, new, f)
    }

    /// Runs `f` on the group if it exists.
    pub fn with_group<R>(&self, id: &str, f: impl FnOnce(&mut Group) -> R) -> Option<R> {
        run_on_existing(&self.groups, id, f)
    }

    /// Runs `f` on the consumer-protocol group, creating it if it does not exist yet.
    pub fn with_consumer_group_or_new<R>(
        &self,
        id: &str,
        f: impl FnOnce(&mut ConsumerGroup) -> R,
    ) -> R {
        let new = || ConsumerGroup::new(id, self.consumer_session_timeout);
        run_on(&self.consumer_groups, id, new, f)
    }

    /// Runs `f` on the consumer-protocol group if it exists.
    pub fn with_consumer_group<R>(
        &self,
        id: &str,
        f: impl FnOnce(&mut ConsumerGroup) -> R,
    ) -> Option<R> {
        run_on_existing(&self.consumer_groups, id, f)
    }

    /// Whether a group (of either protocol) has members here.
    pub fn is_active(&self, id: &str) -> bool {
        self.groups.borrow().contains_key(id) || self.consumer_groups.borrow().contains_key(id)
    }

    /// Names of the groups with members here, classic and consumer-protocol.
    pub fn group_ids(&self) -> Vec<String> {
        let classic = self.groups.borrow().keys().cloned().collect::<Vec<_>>();
        let consumer = self
            .consumer_groups
            .borrow()
            .keys()
            .cloned()
            .collect::<Vec<_>>();
        classic.into_iter().chain(consumer).collect()
    }

    /// Expires sessions and completes rebalances whose time has come; empty groups go
    /// (their committed offsets stay in the store).
    pub fn tick(&self) {
        let now = Instant::now();
        let mut groups = self.groups.borrow_mut();
        groups.values_mut().for_each(|g| g.tick(now));
        groups.retain(|_, g| !g.is_gone());
        let mut consumer_groups = self.consumer_groups.borrow_mut();
        consumer_groups.values_mut().for_each(|g| g.tick(now));
        consumer_groups.retain(|_, g| !g.is_gone());
    }
}

/// A group with nothing left to coordinate: dropped (its committed offsets stay stored).
trait Gone {
    fn is_gone(&self) -> bool;
}

impl Gone for Group {
    fn is_gone(&self) -> bool {
        self.state == state::GroupState::Empty && self.is_empty()
    }
}

impl Gone for ConsumerGroup {
    fn is_gone(&self) -> bool {
        self.members.is_empty()
    }
}

fn run_on<G: Gone, R>(
    groups: &RefCell<HashMap<String, G>>,
    id: &str,
    new: impl FnOnce() -> G,
    f: impl FnOnce(&mut G) -> R,
) -> R {
    let mut groups = groups.borrow_mut();
    let group = groups.entry_ref(id).or_insert_with(new);
    let result = f(group);
    if group.is_gone() {
        groups.remove(id);
    }
    result
}

fn run_on_existing<G: Gone, R>(
    groups: &RefCell<HashMap<String, G>>,
    id: &str,
    f: impl FnOnce(&mut G) -> R,
) -> Option<R> {
    let mut groups = groups.borrow_mut();
    let group = groups.get_mut(id)?;
    let result = f(group);
    if group.is_gone() {
        groups.remove(id);
    }
    Some(result)
}

/// Kafka's group id rule: any non-empty string.
pub fn valid_group_id(id: &str) -> bool {
    !id.is_empty()
}
