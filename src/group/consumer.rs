//! A group on the new consumer protocol (KIP-848, ConsumerGroupHeartbeat): the coordinator
//! computes the assignment itself and hands it out over heartbeats, one member at a time,
//! so that no partition is ever owned by two members at once.
//!
//! Epochs: every change of membership, subscriptions or topic sizes bumps the group epoch
//! and recomputes the target assignment. A member moves to the target epoch in steps: first
//! it gives up what the target takes from it (its epoch stays until it confirms), then it
//! gets what the target gives it, minus partitions another member still has to release.
//!
//! No I/O and no clock of its own, like [`super::state`].

use kafka_protocol::ResponseError;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Partitions by topic name.
pub type Partitions = BTreeMap<String, BTreeSet<i32>>;

/// The assignors a client may ask for; both are served by the same range assignor.
pub const ASSIGNORS: [&str; 2] = ["uniform", "range"];

#[derive(Debug, Clone)]
pub struct HeartbeatRequest {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: Duration,
    /// `None`: unchanged since the last heartbeat.
    pub subscribed: Option<Vec<String>>,
    /// What the member owns now; `None`: unchanged.
    pub owned: Option<Partitions>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatResult {
    pub member_id: String,
    pub member_epoch: i32,
    /// The member's assignment when it changed (or on joining); `None` otherwise.
    pub assignment: Option<Partitions>,
}

#[derive(Debug)]
pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub epoch: i32,
    previous_epoch: i32,
    pub subscribed: Vec<String>,
    /// Partitions the member may consume now.
    pub assigned: Partitions,
    /// Partitions taken from it that it has not confirmed giving up yet.
    revoking: Partitions,
    revoking_since: Option<Instant>,
    rebalance_timeout: Duration,
    last_seen: Instant,
}

#[derive(Debug)]
pub struct ConsumerGroup {
    pub id: String,
    pub epoch: i32,
    pub members: indexmap::IndexMap<String, ConsumerMember>,
    pub target: BTreeMap<String, Partitions>,
    /// Partition counts of the subscribed topics the target was computed from.
    topics: BTreeMap<String, i32>,
    session_timeout: Duration,
}

impl ConsumerGroup {
    pub fn new(id: &str, session_timeout: Duration) -> Self {
        Self {
            id: id.to_string(),
            epoch: 0,
            members: indexmap::IndexMap::new(),
            target: BTreeMap::new(),
            topics: BTreeMap::new(),
            session_timeout,
        }
    }

    /// Every topic a member subscribes to (the handler looks up their sizes).
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| m.subscribed.iter().cloned())
            .collect()
    }

    /// The state ListGroups and ConsumerGroupDescribe show.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self
            .members
            .values()
            .all(|m| m.epoch == self.epoch && m.revoking.is_empty())
        {
            "Stable"
        } else {
            "Reconciling"
        }
    }

    pub fn heartbeat(
        &mut self,
        request: HeartbeatRequest,
        topics: &BTreeMap<String, i32>,
        now: Instant,
    ) -> Result<HeartbeatResult, ResponseError> {
        if request.member_epoch == 0 {
            self.join(&request, now);
        } else {
            self.check_epoch(&request)?;
        }
        let id = request.member_id.clone();
        let changed = self.update_member(&request, now);
        let subscribed = self.subscribed_topics();
        let topics: BTreeMap<String, i32> = topics
            .iter()
            .filter(|(name, _)| subscribed.contains(*name))
            .map(|(name, count)| (name.clone(), *count))
            .collect();
        if changed || topics != self.topics {
            self.topics = topics;
            self.bump_epoch();
        }
        let joining = request.member_epoch == 0;
        let result = self.reconcile(&id, request.owned.as_ref(), now, joining);
        tracing::debug!(
            group = %self.id,
            member = %id,
            epoch = request.member_epoch,
            owned = ?request.owned,
            answer = ?result,
            "consumer heartbeat"
        );
        result
    }

    fn join(&mut self, request: &HeartbeatRequest, now: Instant) {
        // A static member coming back takes over its old self.
        let replaced = request.instance_id.as_ref().and_then(|instance| {
            self.members
                .values()
                .find(|m| m.instance_id.as_ref() == Some(instance))
                .map(|m| m.id.clone())
        });
        let old = replaced.and_then(|old| self.members.shift_remove(&old));
        let old = old.or_else(|| self.members.shift_remove(&request.member_id));
        let member = ConsumerMember {
            id: request.member_id.clone(),
            instance_id: request.instance_id.clone(),
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            epoch: 0,
            previous_epoch: 0,
            subscribed: Vec::new(),
            // A rejoining member starts over with nothing; what it had goes to the others.
            assigned: Partitions::new(),
            revoking: Partitions::new(),
            revoking_since: None,
            rebalance_timeout: request.rebalance_timeout,
            last_seen: now,
        };
        if old.is_some() {
            self.bump_epoch();
        }
        self.members.insert(member.id.clone(), member);
    }

    fn check_epoch(&self, request: &HeartbeatRequest) -> Result<(), ResponseError> {
        let member = self
            .members
            .get(&request.member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        // A heartbeat whose answer was lost still carries the epoch before it.
        if request.member_epoch == member.epoch || request.member_epoch == member.previous_epoch {
            return Ok(());
        }
        Err(ResponseError::FencedMemberEpoch)
    }

    /// Applies the request's fields; true if the subscription changed.
    fn update_member(&mut self, request: &HeartbeatRequest, now: Instant) -> bool {
        let Some(member) = self.members.get_mut(&request.member_id) else {
            return false;
        };
        member.last_seen = now;
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        if request.rack_id.is_some() {
            member.rack_id = request.rack_id.clone();
        }
        if !request.rebalance_timeout.is_zero() {
            member.rebalance_timeout = request.rebalance_timeout;
        }
        match &request.subscribed {
            Some(topics) => {
                let mut topics = topics.clone();
                topics.sort();
                topics.dedup();
                let changed = topics != member.subscribed;
                member.subscribed = topics;
                changed
            }
            None => false,
        }
    }

    fn bump_epoch(&mut self) {
        self.epoch += 1;
        self.target = self.assign();
    }

    /// Range assignment per topic over the members subscribed to it, in member-id order.
    fn assign(&self) -> BTreeMap<String, Partitions> {
        let mut target: BTreeMap<String, Partitions> = self
            .members
            .keys()
            .map(|id| (id.clone(), Partitions::new()))
            .collect();
        for (topic, &count) in &self.topics {
            let mut subscribers: Vec<&String> = self
                .members
                .values()
                .filter(|m| m.subscribed.contains(topic))
                .map(|m| &m.id)
                .collect();
            subscribers.sort();
            if subscribers.is_empty() || count <= 0 {
                continue;
            }
            let per_member = count as usize / subscribers.len();
            let extra = count as usize % subscribers.len();
            let mut next = 0;
            for (i, id) in subscribers.into_iter().enumerate() {
                let share = per_member + usize::from(i < extra);
                let partitions: BTreeSet<i32> = (next..next + share).map(|p| p as i32).collect();
                next += share;
                if !partitions.is_empty() {
                    if let Some(assignment) = target.get_mut(id) {
                        assignment.insert(topic.clone(), partitions);
                    }
                }
            }
        }
        target
    }

    /// One reconciliation step for `id`; see the module comment.
    fn reconcile(
        &mut self,
        id: &str,
        owned: Option<&Partitions>,
        now: Instant,
        joining: bool,
    ) -> Result<HeartbeatResult, ResponseError> {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let taken = self.taken_by_others(id);
        let epoch = self.epoch;
        let member = self
            .members
            .get_mut(id)
            .ok_or(ResponseError::UnknownMemberId)?;
        let before = (member.epoch, member.assigned.clone());

        if !member.revoking.is_empty() {
            let released = owned.is_some_and(|owned| !overlaps(owned, &member.revoking));
            if !released {
                return Ok(result(member, joining));
            }
            member.revoking.clear();
            member.revoking_since = None;
        }
        let revoke = difference(&member.assigned, &target);
        if !revoke.is_empty() {
            member.assigned = intersection(&member.assigned, &target);
            member.revoking = revoke;
            member.revoking_since = Some(now);
            return Ok(result(member, true));
        }
        // Everything the target gives that nobody else still holds.
        let mut assigned = member.assigned.clone();
        for (topic, partitions) in &target {
            for &partition in partitions {
                let busy = taken
                    .get(topic)
                    .is_some_and(|held| held.contains(&partition));
                if !busy {
                    assigned.entry(topic.clone()).or_default().insert(partition);
                }
            }
        }
        member.assigned = assigned;
        if member.epoch != epoch {
            member.previous_epoch = member.epoch;
            member.epoch = epoch;
        }
        let changed = before != (member.epoch, member.assigned.clone());
        Ok(result(member, changed || joining))
    }

    /// Partitions other members hold or are still giving up.
    fn taken_by_others(&self, id: &str) -> Partitions {
        let mut taken = Partitions::new();
        for member in self.members.values().filter(|m| m.id != id) {
            for held in [&member.assigned, &member.revoking] {
                for (topic, partitions) in held {
                    taken
                        .entry(topic.clone())
                        .or_default()
                        .extend(partitions.iter().copied());
                }
            }
        }
        taken
    }

    /// The member leaves (epoch -1 or -2 in its heartbeat, or its session ran out).
    pub fn leave(&mut self, id: &str) -> Result<(), ResponseError> {
        self.members
            .shift_remove(id)
            .ok_or(ResponseError::UnknownMemberId)?;
        self.bump_epoch();
        Ok(())
    }

    /// Sessions that ran out, and members that did not give up partitions in time, go.
    pub fn tick(&mut self, now: Instant) {
        let session = self.session_timeout;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                now.duration_since(m.last_seen) > session
                    || m.revoking_since
                        .is_some_and(|since| now.duration_since(since) > m.rebalance_timeout)
            })
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            tracing::info!(group = %self.id, member = %id, "consumer member expired");
            let _ = self.leave(&id);
        }
    }

    /// OffsetCommit from a member: its current epoch, or a commit without membership while
    /// the group has no members.
    pub fn check_commit(&self, member_id: &str, epoch: i32) -> Result<(), ResponseError> {
        if epoch < 0 && member_id.is_empty() && self.members.is_empty() {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        if epoch != member.epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        Ok(())
    }
}

fn result(member: &ConsumerMember, with_assignment: bool) -> HeartbeatResult {
    HeartbeatResult {
        member_id: member.id.clone(),
        member_epoch: member.epoch,
        assignment: with_assignment.then(|| member.assigned.clone()),
    }
}

fn overlaps(a: &Partitions, b: &Partitions) -> bool {
    a.iter()
        .any(|(topic, ps)| b.get(topic).is_some_and(|other| !ps.is_disjoint(other)))
}

fn difference(a: &Partitions, b: &Partitions) -> Partitions {
    combine(a, b, |x, y| x.difference(y).copied().collect())
}

fn intersection(a: &Partitions, b: &Partitions) -> Partitions {
    combine(a, b, |x, y| x.intersection(y).copied().collect())
}

fn combine(
    a: &Partitions,
    b: &Partitions,
    op: impl Fn(&BTreeSet<i32>, &BTreeSet<i32>) -> BTreeSet<i32>,
) -> Partitions {
    let empty = BTreeSet::new();
    a.iter()
        .map(|(topic, ps)| (topic.clone(), op(ps, b.get(topic).unwrap_or(&empty))))
        .filter(|(_, ps)| !ps.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(id: &str, epoch: i32, owned: Option<Partitions>) -> HeartbeatRequest {
        HeartbeatRequest {
            member_id: id.into(),
            member_epoch: epoch,
            instance_id: None,
            rack_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout: Duration::from_secs(30),
            subscribed: (epoch == 0).then(|| vec!["t".to_string()]),
            owned,
        }
    }

    fn topics() -> BTreeMap<String, i32> {
        BTreeMap::from([("t".to_string(), 4)])
    }

    fn parts(list: &[i32]) -> Partitions {
        Partitions::from([("t".to_string(), list.iter().copied().collect())])
    }

    #[test]
    fn partitions_move_only_after_their_owner_gives_them_up() {
        let now = Instant::now();
        let mut group = ConsumerGroup::new("g", Duration::from_secs(45));
        let a = group
            .heartbeat(heartbeat("a", 0, None), &topics(), now)
            .expect("join a");
        assert_eq!(
            (a.member_epoch, a.assignment),
            (1, Some(parts(&[0, 1, 2, 3])))
        );

        let b = group
            .heartbeat(heartbeat("b", 0, None), &topics(), now)
            .expect("join b");
        assert_eq!(b.member_epoch, 2);
        assert_eq!(
            b.assignment,
            Some(Partitions::new()),
            "a still owns everything"
        );

        // a learns it must give up 2 and 3; its epoch stays until it confirms.
        let a = group
            .heartbeat(
                heartbeat("a", 1, Some(parts(&[0, 1, 2, 3]))),
                &topics(),
                now,
            )
            .expect("a");
        assert_eq!((a.member_epoch, a.assignment), (1, Some(parts(&[0, 1]))));
        let b = group
            .heartbeat(heartbeat("b", 2, Some(parts(&[]))), &topics(), now)
            .expect("b");
        assert_eq!(b.assignment, None, "nothing released yet");

        let a = group
            .heartbeat(heartbeat("a", 1, Some(parts(&[0, 1]))), &topics(), now)
            .expect("a confirms");
        assert_eq!(a.member_epoch, 2);
        let b = group
            .heartbeat(heartbeat("b", 2, Some(parts(&[]))), &topics(), now)
            .expect("b");
        assert_eq!(b.assignment, Some(parts(&[2, 3])));
        assert_eq!(group.state(), "Stable");
    }

    #[test]
    fn stale_epochs_are_fenced_and_leavers_free_their_partitions() {
        let now = Instant::now();
        let mut group = ConsumerGroup::new("g", Duration::from_secs(45));
        group
            .heartbeat(heartbeat("a", 0, None), &topics(), now)
            .expect("a");
        group
            .heartbeat(heartbeat("b", 0, None), &topics(), now)
            .expect("b");
        assert_eq!(
            group.heartbeat(heartbeat("a", 7, None), &topics(), now),
            Err(ResponseError::FencedMemberEpoch)
        );
        group.leave("a").expect("a leaves");
        let b = group
            .heartbeat(heartbeat("b", 2, Some(parts(&[]))), &topics(), now)
            .expect("b");
        assert_eq!(b.assignment, Some(parts(&[0, 1, 2, 3])));
        group.tick(now + Duration::from_secs(46));
        assert!(group.members.is_empty(), "b's session ran out");
    }
}
