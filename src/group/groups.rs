//! The one map of a shard's groups, of both protocols, and what it remembers of groups
//! that lost their last member.
//!
//! A group id names one group: classic (JoinGroup/SyncGroup) or consumer (KIP-848,
//! ConsumerGroupHeartbeat). A request of the other protocol for a live group is refused
//! with the error its caller chooses ([`Groups::classic_or_new`],
//! [`Groups::consumer_or_new`]).

use super::consumer::ConsumerGroup;
use super::state::{self, Group, GroupSettings};
use crate::error::{Error, Result};
use crate::metrics::labels::CappedLabels;
use hashbrown::HashMap;
use indexmap::IndexMap;
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// How long a group whose last member left is still known, as Empty, when nothing else
/// (committed offsets) keeps it: Kafka drops such a group at its next offset-expiry pass
/// (`offsets.retention.check.interval.ms`, 10 minutes), and until then DeleteGroups,
/// DescribeGroups and ListGroups see it.
pub const EMPTY_GROUP_RETENTION: Duration = Duration::from_secs(600);

/// At most this many emptied groups are remembered per shard; the oldest goes first.
const EMPTIED_GROUPS: usize = 10_000;

/// A live group, of either protocol.
pub enum AnyGroup {
    Classic(Group),
    Consumer(ConsumerGroup),
}

impl AnyGroup {
    fn tick(&mut self, now: Instant) {
        match self {
            AnyGroup::Classic(g) => g.tick(now),
            AnyGroup::Consumer(g) => g.tick(now),
        }
    }

    /// Nothing left to coordinate: the group leaves the map and is remembered as emptied
    /// (its committed offsets stay stored).
    fn is_gone(&self) -> bool {
        match self {
            AnyGroup::Classic(g) => g.state == state::GroupState::Empty && g.is_empty(),
            AnyGroup::Consumer(g) => g.members.is_empty(),
        }
    }

    /// Bumped by every rebalance: a classic group's generation, a consumer group's epoch.
    fn generation(&self) -> i32 {
        match self {
            AnyGroup::Classic(g) => g.generation,
            AnyGroup::Consumer(g) => g.epoch,
        }
    }

    fn members(&self) -> usize {
        match self {
            AnyGroup::Classic(g) => g.members.len(),
            AnyGroup::Consumer(g) => g.members.len(),
        }
    }

    /// What ListGroups shows of it.
    pub fn listing(&self) -> Listing {
        match self {
            AnyGroup::Classic(g) => Listing {
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name(),
                group_type: CLASSIC,
            },
            AnyGroup::Consumer(g) => Listing {
                protocol_type: CONSUMER.to_string(),
                state: g.state(),
                group_type: CONSUMER,
            },
        }
    }
}

/// `group_type` of a classic group.
pub const CLASSIC: &str = "classic";
/// `group_type` (and protocol type) of a consumer-protocol group (KIP-848).
pub const CONSUMER: &str = "consumer";

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub protocol_type: String,
    pub state: &'static str,
    /// [`CLASSIC`] or [`CONSUMER`].
    pub group_type: &'static str,
}

/// A group that lost its last member.
struct Emptied {
    listing: Listing,
    since: Instant,
}

/// A group's members and rebalances, as a scrape sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCounts {
    pub members: u64,
    pub rebalances: u64,
}

/// The groups one shard coordinates.
pub struct Groups {
    live: RefCell<HashMap<String, AnyGroup>>,
    /// Groups whose members have all gone, oldest first.
    emptied: RefCell<IndexMap<String, Emptied>>,
    /// Rebalances completed, by group (`--metrics-group-limit` groups at most).
    rebalances: RefCell<CappedLabels<u64>>,
}

impl Groups {
    /// No groups yet; rebalances counted for `metrics_group_limit` groups at most.
    pub fn new(metrics_group_limit: usize) -> Self {
        Self {
            live: RefCell::default(),
            emptied: RefCell::default(),
            rebalances: RefCell::new(CappedLabels::new(metrics_group_limit)),
        }
    }

    /// Members and rebalances by group, within the same limit of groups: those that
    /// rebalanced first, then live groups that have not.
    pub fn counts(&self, metrics_group_limit: usize) -> Vec<(String, GroupCounts)> {
        let mut counts = CappedLabels::<GroupCounts>::new(metrics_group_limit);
        for (group, rebalances) in self.rebalances.borrow().snapshot() {
            if let Some(counts) = counts.get_mut(&group) {
                counts.rebalances += rebalances;
            }
        }
        for (group, live) in self.live.borrow().iter() {
            if let Some(counts) = counts.get_mut(group) {
                counts.members += live.members() as u64;
            }
        }
        counts.snapshot()
    }

    /// Runs `f` on a group, counting the rebalance it completes, if it does.
    fn run<R>(&self, id: &str, group: &mut AnyGroup, f: impl FnOnce(&mut AnyGroup) -> R) -> R {
        let generation = group.generation();
        let result = f(group);
        if group.generation() != generation {
            if let Some(count) = self.rebalances.borrow_mut().get_mut(id) {
                *count += 1;
            }
        }
        result
    }

    /// Runs `f` on the classic group, creating it if no group has the id; a consumer group
    /// of that id answers `refused`.
    pub fn classic_or_new<R>(
        &self,
        id: &str,
        settings: GroupSettings,
        refused: Error,
        f: impl FnOnce(&mut Group) -> R,
    ) -> Result<R> {
        let new = || AnyGroup::Classic(Group::new(id, settings, Instant::now()));
        self.run_or_new(id, new, |group| match group {
            AnyGroup::Classic(g) => Ok(f(g)),
            AnyGroup::Consumer(_) => Err(refused),
        })
    }

    /// Runs `f` on the consumer group, creating it if no group has the id; a classic group
    /// of that id answers `refused`.
    pub fn consumer_or_new<R>(
        &self,
        id: &str,
        session_timeout: Duration,
        refused: Error,
        f: impl FnOnce(&mut ConsumerGroup) -> R,
    ) -> Result<R> {
        let new = || AnyGroup::Consumer(ConsumerGroup::new(id, session_timeout));
        self.run_or_new(id, new, |group| match group {
            AnyGroup::Consumer(g) => Ok(f(g)),
            AnyGroup::Classic(_) => Err(refused),
        })
    }

    /// Runs `f` on the live group, if there is one.
    pub fn with<R>(&self, id: &str, f: impl FnOnce(&mut AnyGroup) -> R) -> Option<R> {
        let mut live = self.live.borrow_mut();
        let result = self.run(id, live.get_mut(id)?, f);
        self.settle(&mut live, id);
        Some(result)
    }

    /// Runs `f` on the live classic group, if there is one.
    pub fn with_classic<R>(&self, id: &str, f: impl FnOnce(&mut Group) -> R) -> Option<R> {
        self.with(id, |group| match group {
            AnyGroup::Classic(g) => Some(f(g)),
            AnyGroup::Consumer(_) => None,
        })
        .flatten()
    }

    /// Runs `f` on the live consumer group, if there is one.
    pub fn with_consumer<R>(&self, id: &str, f: impl FnOnce(&mut ConsumerGroup) -> R) -> Option<R> {
        self.with(id, |group| match group {
            AnyGroup::Consumer(g) => Some(f(g)),
            AnyGroup::Classic(_) => None,
        })
        .flatten()
    }

    /// Whether the group has members here.
    pub fn is_live(&self, id: &str) -> bool {
        self.live.borrow().contains_key(id)
    }

    /// What ListGroups shows of every group here, live or emptied.
    pub fn listings(&self) -> Vec<(String, Listing)> {
        let emptied = self.emptied.borrow();
        let live = self.live.borrow();
        let emptied = emptied
            .iter()
            .map(|(id, e)| (id.clone(), e.listing.clone()));
        emptied
            .chain(live.iter().map(|(id, g)| (id.clone(), g.listing())))
            .collect()
    }

    /// A group whose members have all gone, if it is still remembered.
    pub fn emptied(&self, id: &str) -> Option<Listing> {
        self.emptied.borrow().get(id).map(|e| e.listing.clone())
    }

    /// Forgets an emptied group (it was deleted).
    pub fn forget_emptied(&self, id: &str) {
        self.emptied.borrow_mut().shift_remove(id);
    }

    /// Expires sessions and completes rebalances whose time has come; groups left without
    /// members are remembered as emptied for [`EMPTY_GROUP_RETENTION`].
    pub fn tick(&self) {
        let now = Instant::now();
        let mut live = self.live.borrow_mut();
        live.retain(|id, group| {
            self.run(id, group, |group| group.tick(now));
            let gone = group.is_gone();
            if gone {
                self.remember_emptied(id, group, now);
            }
            !gone
        });
        let mut emptied = self.emptied.borrow_mut();
        while emptied
            .first()
            .is_some_and(|(_, g)| now.duration_since(g.since) >= EMPTY_GROUP_RETENTION)
        {
            emptied.shift_remove_index(0);
        }
    }

    fn run_or_new<R>(
        &self,
        id: &str,
        new: impl FnOnce() -> AnyGroup,
        f: impl FnOnce(&mut AnyGroup) -> R,
    ) -> R {
        let mut live = self.live.borrow_mut();
        let group = live.entry_ref(id).or_insert_with(|| {
            self.emptied.borrow_mut().shift_remove(id);
            new()
        });
        let result = self.run(id, group, f);
        self.settle(&mut live, id);
        result
    }

    /// After a request ran on a group: one left without members goes to the emptied.
    fn settle(&self, live: &mut HashMap<String, AnyGroup>, id: &str) {
        if let Some(group) = live.get(id).filter(|g| g.is_gone()) {
            self.remember_emptied(id, group, Instant::now());
            live.remove(id);
        }
    }

    fn remember_emptied(&self, id: &str, group: &AnyGroup, now: Instant) {
        let mut listing = group.listing();
        listing.state = "Empty";
        let mut emptied = self.emptied.borrow_mut();
        emptied.shift_remove(id);
        if emptied.len() >= EMPTIED_GROUPS {
            emptied.shift_remove_index(0);
        }
        emptied.insert(
            id.to_string(),
            Emptied {
                listing,
                since: now,
            },
        );
    }
}
