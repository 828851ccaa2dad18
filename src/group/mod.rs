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
use indexmap::IndexMap;
use offsets::{OffsetCache, CACHED_GROUPS};
use state::{Group, GroupSettings};
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// How often sessions and rebalance deadlines are checked.
pub const TICK: Duration = Duration::from_millis(100);

/// How long a group whose last member left is still known, as Empty, when nothing else
/// (committed offsets) keeps it: Kafka drops such a group at its next offset-expiry pass
/// (`offsets.retention.check.interval.ms`, 10 minutes), and until then DeleteGroups,
/// DescribeGroups and ListGroups see it.
pub const EMPTY_GROUP_RETENTION: Duration = Duration::from_secs(600);

/// At most this many emptied groups are remembered per shard; the oldest goes first.
const EMPTIED_GROUPS: usize = 10_000;

/// A group that lost its last member: what ListGroups and DescribeGroups still say of it.
#[derive(Debug, Clone)]
pub struct EmptiedGroup {
    pub protocol_type: String,
    /// "classic" or "consumer" (KIP-848).
    pub group_type: &'static str,
    since: Instant,
}

type Emptied = RefCell<IndexMap<String, EmptiedGroup>>;

/// The groups one shard coordinates.
pub struct Coordinator {
    groups: RefCell<HashMap<String, Group>>,
    /// Groups on the new consumer protocol (KIP-848).
    consumer_groups: RefCell<HashMap<String, ConsumerGroup>>,
    /// Groups of either kind whose members have all gone, oldest first.
    emptied: Emptied,
    pub offsets: OffsetCache,
    settings: GroupSettings,
    pub consumer_session_timeout: Duration,
    pub consumer_heartbeat_interval: Duration,
}

impl Coordinator {
    /// The coordinator of a shard, with `store` keeping its groups' committed offsets.
    pub fn new(config: &Config, store: crate::backend::OffsetStore) -> Self {
        Self {
            groups: RefCell::default(),
            consumer_groups: RefCell::default(),
            emptied: RefCell::default(),
            offsets: OffsetCache::new(store, CACHED_GROUPS),
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
        run_on(&self.groups, &self.emptied, id, new, f)
    }

    /// Runs `f` on the group if it exists.
    pub fn with_group<R>(&self, id: &str, f: impl FnOnce(&mut Group) -> R) -> Option<R> {
        run_on_existing(&self.groups, &self.emptied, id, f)
    }

    /// Runs `f` on the consumer-protocol group, creating it if it does not exist yet.
    pub fn with_consumer_group_or_new<R>(
        &self,
        id: &str,
        f: impl FnOnce(&mut ConsumerGroup) -> R,
    ) -> R {
        let new = || ConsumerGroup::new(id, self.consumer_session_timeout);
        run_on(&self.consumer_groups, &self.emptied, id, new, f)
    }

    /// Runs `f` on the consumer-protocol group if it exists.
    pub fn with_consumer_group<R>(
        &self,
        id: &str,
        f: impl FnOnce(&mut ConsumerGroup) -> R,
    ) -> Option<R> {
        run_on_existing(&self.consumer_groups, &self.emptied, id, f)
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

    /// A group whose members have all gone, if it is still remembered.
    pub fn emptied(&self, id: &str) -> Option<EmptiedGroup> {
        self.emptied.borrow().get(id).cloned()
    }

    /// The emptied groups still remembered, by name.
    pub fn emptied_groups(&self) -> Vec<(String, EmptiedGroup)> {
        let emptied = self.emptied.borrow();
        emptied
            .iter()
            .map(|(id, g)| (id.clone(), g.clone()))
            .collect()
    }

    /// Forgets an emptied group (it was deleted).
    pub fn forget_emptied(&self, id: &str) {
        self.emptied.borrow_mut().shift_remove(id);
    }

    /// Expires sessions and completes rebalances whose time has come; groups left without
    /// members are remembered as emptied for [`EMPTY_GROUP_RETENTION`] (their committed
    /// offsets stay in the store regardless).
    pub fn tick(&self) {
        let now = Instant::now();
        tick_groups(&self.groups, &self.emptied, now);
        tick_groups(&self.consumer_groups, &self.emptied, now);
        let mut emptied = self.emptied.borrow_mut();
        while emptied
            .first()
            .is_some_and(|(_, g)| now.duration_since(g.since) >= EMPTY_GROUP_RETENTION)
        {
            emptied.shift_remove_index(0);
        }
    }
}

/// What the coordinator needs of both kinds of group. A group with nothing left to
/// coordinate is gone: dropped from the live map and remembered as emptied (its committed
/// offsets stay stored).
trait Gone {
    /// Advances the group's deadlines (the shard's timer calls it every [`TICK`]).
    fn tick(&mut self, now: Instant);
    fn is_gone(&self) -> bool;
    /// Protocol type and group type, as ListGroups shows them.
    fn kind(&self) -> (String, &'static str);
}

impl Gone for Group {
    fn tick(&mut self, now: Instant) {
        Group::tick(self, now);
    }

    fn is_gone(&self) -> bool {
        self.state == state::GroupState::Empty && self.is_empty()
    }

    fn kind(&self) -> (String, &'static str) {
        (self.protocol_type.clone().unwrap_or_default(), "classic")
    }
}

impl Gone for ConsumerGroup {
    fn tick(&mut self, now: Instant) {
        ConsumerGroup::tick(self, now);
    }

    fn is_gone(&self) -> bool {
        self.members.is_empty()
    }

    fn kind(&self) -> (String, &'static str) {
        ("consumer".to_string(), "consumer")
    }
}

fn remember_emptied<G: Gone>(emptied: &Emptied, id: &str, group: &G, now: Instant) {
    let (protocol_type, group_type) = group.kind();
    let mut emptied = emptied.borrow_mut();
    emptied.shift_remove(id);
    if emptied.len() >= EMPTIED_GROUPS {
        emptied.shift_remove_index(0);
    }
    let group = EmptiedGroup {
        protocol_type,
        group_type,
        since: now,
    };
    emptied.insert(id.to_string(), group);
}

fn tick_groups<G: Gone>(groups: &RefCell<HashMap<String, G>>, emptied: &Emptied, now: Instant) {
    let mut groups = groups.borrow_mut();
    groups.retain(|id, group| {
        group.tick(now);
        let gone = group.is_gone();
        if gone {
            remember_emptied(emptied, id, group, now);
        }
        !gone
    });
}

fn run_on<G: Gone, R>(
    groups: &RefCell<HashMap<String, G>>,
    emptied: &Emptied,
    id: &str,
    new: impl FnOnce() -> G,
    f: impl FnOnce(&mut G) -> R,
) -> R {
    let mut groups = groups.borrow_mut();
    let group = groups.entry_ref(id).or_insert_with(|| {
        emptied.borrow_mut().shift_remove(id);
        new()
    });
    let result = f(group);
    if group.is_gone() {
        remember_emptied(emptied, id, group, Instant::now());
        groups.remove(id);
    }
    result
}

fn run_on_existing<G: Gone, R>(
    groups: &RefCell<HashMap<String, G>>,
    emptied: &Emptied,
    id: &str,
    f: impl FnOnce(&mut G) -> R,
) -> Option<R> {
    let mut groups = groups.borrow_mut();
    let group = groups.get_mut(id)?;
    let result = f(group);
    if group.is_gone() {
        remember_emptied(emptied, id, group, Instant::now());
        groups.remove(id);
    }
    Some(result)
}

/// Kafka's group id rule: any non-empty string.
pub fn valid_group_id(id: &str) -> bool {
    !id.is_empty()
}
