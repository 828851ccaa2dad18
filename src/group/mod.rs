//! Consumer groups and their committed offsets. Each group is coordinated by the shard that
//! owns hash(group id); that shard's [`Coordinator`] holds the group's membership
//! ([`groups::Groups`], one map for classic and consumer-protocol groups) and its committed
//! offsets ([`offsets::OffsetCache`] in front of the backend's offset store, which it owns).
//! A handler checks the request reached the coordinator and calls one method here per
//! request. Nothing here is shared between shards, so requests for a group that reach
//! another shard get NOT_COORDINATOR and the client asks FindCoordinator again.
//!
//! The membership protocols themselves are pure state machines that read no clock:
//! [`state`] (JoinGroup/SyncGroup) and [`consumer`] (KIP-848).

pub mod consumer;
pub mod groups;
pub mod offsets;
pub mod state;

use crate::backend::{CommittedOffset, GroupOffsets, OffsetStore};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::TopicPartition;
use bytes::Bytes;
use consumer::{HeartbeatRequest, HeartbeatResult, Partitions};
use groups::{AnyGroup, Groups, Listing, CLASSIC, CONSUMER};
use hashbrown::HashMap;
use kafka_protocol::ResponseError;
use offsets::{OffsetCache, CACHED_GROUPS};
use state::{GroupSettings, GroupState, JoinRequest, JoinResult, Pending, SyncResult};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How often sessions and rebalance deadlines are checked.
pub const TICK: Duration = Duration::from_millis(100);

/// ConsumerGroupHeartbeat's member epoch for a member leaving.
pub const LEAVE: i32 = -1;
/// ConsumerGroupHeartbeat's member epoch for a static member leaving for now.
pub const STATIC_LEAVE: i32 = -2;

/// A group as DescribeGroups and ConsumerGroupDescribe see it.
#[derive(Debug)]
pub enum Description {
    Classic {
        state: &'static str,
        protocol_type: String,
        protocol: String,
        members: Vec<ClassicMember>,
    },
    Consumer {
        state: &'static str,
        epoch: i32,
        members: Vec<ConsumerMemberView>,
    },
    /// No members, but known: its last member left recently, or it has committed offsets.
    Empty(Listing),
    /// Not known here.
    Dead,
}

/// A classic group's member, as DescribeGroups shows it.
#[derive(Debug)]
pub struct ClassicMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The member's metadata for the group's protocol.
    pub metadata: Bytes,
    /// Empty unless the group is Stable.
    pub assignment: Bytes,
}

/// A consumer-protocol member, copied out so no borrow crosses an `.await`.
#[derive(Debug)]
pub struct ConsumerMemberView {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed: Vec<String>,
    pub assigned: Partitions,
    pub target: Partitions,
}

/// The groups one shard coordinates, and their committed offsets.
pub struct Coordinator {
    groups: Groups,
    offsets: OffsetCache,
    settings: GroupSettings,
    /// Groups the metrics name, at most (`--metrics-group-limit`).
    metrics_group_limit: usize,
    consumer_session_timeout: Duration,
    /// What ConsumerGroupHeartbeat tells members (`--group-consumer-heartbeat-interval-ms`).
    pub consumer_heartbeat_interval: Duration,
}

impl Coordinator {
    /// The coordinator of a shard, with `store` keeping its groups' committed offsets.
    pub fn new(config: &Config, store: OffsetStore) -> Self {
        Self {
            groups: Groups::new(config.metrics_group_limit),
            metrics_group_limit: config.metrics_group_limit,
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

    /// Members and rebalances by group, for the metrics.
    pub fn group_counts(&self) -> Vec<(String, groups::GroupCounts)> {
        self.groups.counts(self.metrics_group_limit)
    }

    /// Committed offsets by group and partition, for the lag metric: of every group this shard
    /// coordinates with offsets in the store (the first `--metrics-group-limit` by name), so a
    /// consumer that died before this process started still shows its lag. If the store does
    /// not answer, of the groups in the cache.
    pub async fn committed_offsets(
        &self,
        coordinated: impl Fn(&str) -> bool,
    ) -> Vec<(String, TopicPartition, i64)> {
        let mut names: Vec<String> = match self.offsets.stored_groups().await {
            Ok(stored) => stored.into_iter().filter(|g| coordinated(g)).collect(),
            Err(_) => self.offsets.cached_groups(),
        };
        names.sort_unstable();
        names.truncate(self.metrics_group_limit);
        let mut committed = Vec::new();
        for name in names {
            let Ok(offsets) = self.offsets.fetch(&name).await else {
                continue;
            };
            committed.extend(
                offsets
                    .into_iter()
                    .map(|(tp, offset)| (name.clone(), tp, offset.offset)),
            );
        }
        committed
    }

    /// Keeps the groups' clocks running: expires sessions and completes rebalances whose
    /// time has come, every [`TICK`].
    pub async fn run_timers(&self) {
        loop {
            glommio::timer::sleep(TICK).await;
            self.groups.tick();
        }
    }

    /// JoinGroup: waits until the rebalance completes. A consumer-protocol group of the
    /// same id refuses classic members.
    pub async fn join(&self, group_id: &str, join: JoinRequest) -> JoinResult {
        let member_id = join.member_id.clone();
        let refused = Error::Group(ResponseError::InconsistentGroupProtocol);
        let joined = self
            .groups
            .classic_or_new(group_id, self.settings, refused, |g| {
                g.join(join, Instant::now())
            });
        match joined {
            Err(error) => JoinResult::failed(error.group_error(), &member_id),
            Ok(Pending::Ready(result)) => result,
            Ok(Pending::Wait(receiver)) => receiver
                .await
                .unwrap_or_else(|_| JoinResult::failed(ResponseError::UnknownMemberId, &member_id)),
        }
    }

    /// SyncGroup: the leader hands in the assignment; every member waits for its part.
    pub async fn sync(
        &self,
        group_id: &str,
        member: (&str, Option<&str>),
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResult {
        let (member_id, instance_id) = member;
        let pending = self.groups.with_classic(group_id, |g| {
            g.sync(member_id, instance_id, generation, protocol, assignments)
        });
        let unknown = || SyncResult::failed(ResponseError::UnknownMemberId);
        match pending {
            None => unknown(),
            Some(Pending::Ready(result)) => result,
            Some(Pending::Wait(receiver)) => receiver.await.unwrap_or_else(|_| unknown()),
        }
    }

    /// Heartbeat: keeps a classic member's session alive.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member: (&str, Option<&str>),
        generation: i32,
    ) -> Result<()> {
        let (member_id, instance_id) = member;
        self.groups
            .with_classic(group_id, |g| {
                g.heartbeat(member_id, instance_id, generation, Instant::now())
            })
            .unwrap_or(Err(ResponseError::UnknownMemberId))
            .map_err(Error::Group)
    }

    /// LeaveGroup: one outcome per member leaving.
    pub fn leave(&self, group_id: &str, leavers: &[(&str, Option<&str>)]) -> Vec<Result<()>> {
        leavers
            .iter()
            .map(|(member_id, instance_id)| {
                self.groups
                    .with_classic(group_id, |g| {
                        g.leave(member_id, *instance_id, Instant::now())
                    })
                    .unwrap_or(Err(ResponseError::UnknownMemberId))
                    .map_err(Error::Group)
            })
            .collect()
    }

    /// The topics a consumer-protocol group's members subscribe to (empty for none), whose
    /// partition counts its next heartbeat needs.
    pub fn consumer_subscriptions(&self, group_id: &str) -> BTreeSet<String> {
        self.groups
            .with_consumer(group_id, |g| g.subscribed_topics())
            .unwrap_or_default()
    }

    /// ConsumerGroupHeartbeat: joins, heartbeats or leaves (member epoch [`LEAVE`] or
    /// [`STATIC_LEAVE`]); `topics` are the partition counts of the subscribed topics that
    /// exist. A classic group of the same id is not found, as in Kafka.
    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        member: HeartbeatRequest,
        topics: &BTreeMap<String, i32>,
    ) -> Result<HeartbeatResult> {
        let classic = || Error::GroupIdNotFound(format!("{group_id} is a classic group"));
        if matches!(member.member_epoch, LEAVE | STATIC_LEAVE) {
            let left = self.groups.with(group_id, |group| match group {
                AnyGroup::Consumer(g) => g.leave(&member.member_id).map_err(Error::Group),
                AnyGroup::Classic(_) => Err(classic()),
            });
            left.unwrap_or(Err(Error::Group(ResponseError::UnknownMemberId)))?;
            return Ok(HeartbeatResult {
                member_id: member.member_id,
                member_epoch: member.member_epoch,
                assignment: None,
            });
        }
        let timeout = self.consumer_session_timeout;
        self.groups
            .consumer_or_new(group_id, timeout, classic(), |g| {
                g.heartbeat(member, topics, Instant::now())
            })?
            .map_err(Error::Group)
    }

    /// OffsetCommit: checks the committer is a member of the current generation (or, for
    /// a group without members here, claims no membership), then stores the offsets in
    /// one write.
    pub async fn commit(
        &self,
        group_id: &str,
        member: (&str, Option<&str>),
        generation: i32,
        offsets: GroupOffsets,
    ) -> Result<()> {
        let (member_id, instance_id) = member;
        let checked = self.groups.with(group_id, |group| match group {
            AnyGroup::Classic(g) => g.check_commit(member_id, instance_id, generation),
            AnyGroup::Consumer(g) => g.check_commit(member_id, generation),
        });
        match checked {
            Some(outcome) => outcome.map_err(Error::Group)?,
            // No members here (none yet, or none since a restart).
            None if generation < 0 && member_id.is_empty() => {}
            None => return Err(Error::Group(ResponseError::UnknownMemberId)),
        }
        if offsets.is_empty() {
            return Ok(());
        }
        self.offsets.commit(group_id, offsets).await
    }

    /// OffsetFetch: every committed offset of the group.
    pub async fn committed(
        &self,
        group_id: &str,
    ) -> Result<HashMap<TopicPartition, CommittedOffset>> {
        self.offsets.fetch(group_id).await
    }

    /// DescribeGroups and ConsumerGroupDescribe.
    pub async fn describe(&self, group_id: &str) -> Result<Description> {
        let live = self.groups.with(group_id, |group| match group {
            AnyGroup::Classic(g) => {
                let stable = g.state == GroupState::Stable;
                let protocol = g.protocol_name.clone();
                let members = g
                    .members
                    .values()
                    .map(|m| ClassicMember {
                        id: m.id.clone(),
                        instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        metadata: m.metadata(protocol.as_deref()),
                        assignment: match stable {
                            true => m.assignment.clone(),
                            false => Bytes::new(),
                        },
                    })
                    .collect();
                Description::Classic {
                    state: g.state.name(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    protocol: protocol.unwrap_or_default(),
                    members,
                }
            }
            AnyGroup::Consumer(g) => Description::Consumer {
                state: g.state(),
                epoch: g.epoch,
                members: g
                    .members
                    .values()
                    .map(|m| ConsumerMemberView {
                        id: m.id.clone(),
                        instance_id: m.instance_id.clone(),
                        rack_id: m.rack_id.clone(),
                        epoch: m.epoch,
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        subscribed: m.subscribed.clone(),
                        assigned: m.assigned.clone(),
                        target: g.target.get(&m.id).cloned().unwrap_or_default(),
                    })
                    .collect(),
            },
        });
        if let Some(described) = live {
            return Ok(described);
        }
        if let Some(emptied) = self.groups.emptied(group_id) {
            return Ok(Description::Empty(emptied));
        }
        match self.offsets.fetch(group_id).await?.is_empty() {
            true => Ok(Description::Dead),
            false => Ok(Description::Empty(stored_only())),
        }
    }

    /// ListGroups: every group this shard coordinates, live, recently emptied, or with
    /// committed offsets in the store (which every shard shares, so `coordinated` says
    /// which are this shard's).
    pub async fn list(&self, coordinated: impl Fn(&str) -> bool) -> Result<Vec<(String, Listing)>> {
        let stored = self.offsets.stored_groups().await?;
        let mut groups: BTreeMap<String, Listing> = stored
            .into_iter()
            .filter(|g| coordinated(g))
            .map(|g| (g, stored_only()))
            .collect();
        groups.extend(self.groups.listings());
        Ok(groups.into_iter().collect())
    }

    /// DeleteGroups: a group without members goes, with its committed offsets.
    pub async fn delete(&self, group_id: &str) -> Result<()> {
        if self.groups.is_live(group_id) {
            return Err(Error::Group(ResponseError::NonEmptyGroup));
        }
        let offsets = self.offsets.fetch(group_id).await?;
        // A group whose last member just left exists (Empty) even without commits, as in Kafka.
        if offsets.is_empty() && self.groups.emptied(group_id).is_none() {
            return Err(Error::Group(ResponseError::GroupIdNotFound));
        }
        self.offsets.delete(group_id, None).await?;
        // Only now: a store failure above leaves the group as it was, to be deleted again.
        self.groups.forget_emptied(group_id);
        tracing::info!(group = group_id, "group deleted");
        Ok(())
    }

    /// OffsetDelete: forgets the group's committed offsets of these partitions, except
    /// those of topics its members subscribe to (GROUP_SUBSCRIBED_TO_TOPIC). The outer
    /// error is the group's, the inner ones each partition's.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<Result<()>>> {
        let subscribed: BTreeSet<String> = self
            .groups
            .with(group_id, |group| match group {
                AnyGroup::Classic(g) => g.subscribed_topics().into_iter().collect(),
                AnyGroup::Consumer(g) => g.subscribed_topics(),
            })
            .unwrap_or_default();
        let committed = self.offsets.fetch(group_id).await?;
        if committed.is_empty() && !self.groups.is_live(group_id) {
            return Err(Error::Group(ResponseError::GroupIdNotFound));
        }
        let in_use = |tp: &TopicPartition| subscribed.contains(&*tp.topic);
        let deletable: Vec<TopicPartition> = partitions
            .iter()
            .filter(|tp| !in_use(tp))
            .cloned()
            .collect();
        if !deletable.is_empty() {
            self.offsets.delete(group_id, Some(&deletable)).await?;
        }
        Ok(partitions
            .iter()
            .map(|tp| match in_use(tp) {
                true => Err(Error::Group(ResponseError::GroupSubscribedToTopic)),
                false => Ok(()),
            })
            .collect())
    }
}

/// A group known only by its committed offsets.
fn stored_only() -> Listing {
    Listing {
        protocol_type: String::new(),
        state: "Empty",
        group_type: CLASSIC,
    }
}

/// Kafka's group id rule: any non-empty string.
pub fn valid_group_id(id: &str) -> bool {
    !id.is_empty()
}

/// Whether a listing is of a consumer-protocol group.
pub fn is_consumer(listing: &Listing) -> bool {
    listing.group_type == CONSUMER
}
