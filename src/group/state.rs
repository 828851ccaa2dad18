//! One classic consumer group's membership state machine, as Kafka's group coordinator runs
//! it: Empty → PreparingRebalance (members (re)join) → CompletingRebalance (the leader
//! assigns) → Stable, and back to PreparingRebalance whenever membership changes.
//!
//! No I/O and no clock of its own: callers pass `now`, answers that must wait (JoinGroup until
//! the rebalance completes, SyncGroup until the leader's assignment) are oneshot receivers.

use bytes::Bytes;
use futures::channel::oneshot;
use hashbrown::HashMap;
use indexmap::IndexMap;
use kafka_protocol::ResponseError;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    /// The name DescribeGroups and ListGroups use.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// What a JoinGroup asks for.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: an unknown member first gets its id with MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

/// A JoinGroup answer.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinResult {
    pub error: Option<ResponseError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only: every member with its metadata for the chosen protocol.
    pub members: Vec<JoinedMember>,
    /// The leader's assignment still stands (a static leader rejoined); KIP-814.
    pub skip_assignment: bool,
}

impl JoinResult {
    pub fn failed(error: ResponseError, member_id: &str) -> Self {
        Self {
            error: Some(error),
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

/// A SyncGroup answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncResult {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn failed(error: ResponseError) -> Self {
        Self {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// An answer now, or one to wait for.
pub enum Pending<T> {
    Ready(T),
    Wait(oneshot::Receiver<T>),
}

#[derive(Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    last_seen: Instant,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    /// Metadata the member sent for `protocol`.
    pub fn metadata(&self, protocol: Option<&str>) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| Some(name.as_str()) == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    /// A member waiting for a JoinGroup or SyncGroup answer is alive by definition.
    fn expired(&self, now: Instant) -> bool {
        self.join_waiter.is_none()
            && self.sync_waiter.is_none()
            && now.duration_since(self.last_seen) > self.session_timeout
    }
}

/// Settings shared by every group of a shard.
#[derive(Debug, Clone, Copy)]
pub struct GroupSettings {
    pub initial_rebalance_delay: Duration,
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
}

#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// In join order: the first member leads when the old leader is gone.
    pub members: IndexMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED, with the deadline to come back by.
    pending: HashMap<String, Instant>,
    /// group.instance.id → member id, for static members.
    static_members: HashMap<String, String>,
    /// The rebalance completes once everyone joined, but not before this (the initial
    /// delay of an empty group that lets more consumers arrive).
    join_not_before: Instant,
    /// …and at the latest at this point, without those who did not rejoin.
    join_deadline: Instant,
    settings: GroupSettings,
}

impl Group {
    pub fn new(id: &str, settings: GroupSettings, now: Instant) -> Self {
        Self {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: IndexMap::new(),
            pending: HashMap::new(),
            static_members: HashMap::new(),
            join_not_before: now,
            join_deadline: now,
            settings,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty()
    }

    pub fn join(&mut self, request: JoinRequest, now: Instant) -> Pending<JoinResult> {
        let timeout = request.session_timeout;
        if timeout < self.settings.min_session_timeout
            || timeout > self.settings.max_session_timeout
        {
            return Pending::Ready(JoinResult::failed(
                ResponseError::InvalidSessionTimeout,
                &request.member_id,
            ));
        }
        if !self.supports(&request) {
            return Pending::Ready(JoinResult::failed(
                ResponseError::InconsistentGroupProtocol,
                &request.member_id,
            ));
        }
        if request.member_id.is_empty() {
            return self.join_unknown(request, now);
        }
        if let Some(error) = self.fenced(&request.member_id, request.instance_id.as_deref()) {
            return Pending::Ready(JoinResult::failed(error, &request.member_id));
        }
        if self.pending.remove(&request.member_id).is_some() {
            let id = request.member_id.clone();
            return self.add_member_and_rebalance(id, request, now);
        }
        if !self.members.contains_key(&request.member_id) {
            return Pending::Ready(JoinResult::failed(
                ResponseError::UnknownMemberId,
                &request.member_id,
            ));
        }
        self.join_known(request, now)
    }

    /// An empty group takes any protocol type; otherwise the type must match and at least
    /// one protocol must be one every member supports.
    fn supports(&self, request: &JoinRequest) -> bool {
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(request.protocol_type.as_str()) {
            return false;
        }
        let others = self.members.values().filter(|m| m.id != request.member_id);
        let common = self.common_protocols(others);
        request
            .protocols
            .iter()
            .any(|(name, _)| common.as_ref().is_none_or(|c| c.contains(name)))
    }

    /// Protocols every given member supports; `None` when there are no members.
    fn common_protocols<'a>(
        &self,
        members: impl Iterator<Item = &'a Member>,
    ) -> Option<Vec<String>> {
        let mut common: Option<Vec<String>> = None;
        for member in members {
            let supports = |name: &String| member.protocols.iter().any(|(n, _)| n == name);
            // Candidates keep the first member's order of preference.
            common = Some(match common {
                None => member
                    .protocols
                    .iter()
                    .map(|(name, _)| name.clone())
                    .collect(),
                Some(c) => c.into_iter().filter(supports).collect(),
            });
        }
        common
    }

    fn join_unknown(&mut self, request: JoinRequest, now: Instant) -> Pending<JoinResult> {
        let new_id = format!("{}-{}", request.client_id, uuid::Uuid::new_v4());
        if let Some(instance) = request.instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&instance).cloned() {
                return self.replace_static_member(old_id, new_id, request, now);
            }
            return self.add_member_and_rebalance(new_id, request, now);
        }
        if request.require_known_member_id {
            let deadline = now + request.session_timeout;
            self.pending.insert(new_id.clone(), deadline);
            return Pending::Ready(JoinResult::failed(ResponseError::MemberIdRequired, &new_id));
        }
        self.add_member_and_rebalance(new_id, request, now)
    }

    /// A static member came back (with a new member id): it takes over its old place, and
    /// unless its protocols change the protocol the group would select, the group does not
    /// rebalance (KIP-345). The subscription bytes may well differ: the Java client puts the
    /// partitions it owns and its generation in them, which a restarted member no longer
    /// has. Kafka compares the selected protocol too, not the bytes.
    fn replace_static_member(
        &mut self,
        old_id: String,
        new_id: String,
        request: JoinRequest,
        now: Instant,
    ) -> Pending<JoinResult> {
        let Some(mut member) = self.members.shift_remove(&old_id) else {
            return self.add_member_and_rebalance(new_id, request, now);
        };
        if let Some(waiter) = member.join_waiter.take() {
            let _ = waiter.send(JoinResult::failed(ResponseError::FencedInstanceId, &old_id));
        }
        if let Some(waiter) = member.sync_waiter.take() {
            let _ = waiter.send(SyncResult::failed(ResponseError::FencedInstanceId));
        }
        member.id = new_id.clone();
        member.last_seen = now;
        if let Some(instance) = &request.instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        self.members.insert(new_id.clone(), member);
        self.update_member(&new_id, request, now);
        let settled = matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance
        );
        if settled && self.select_protocol() == self.protocol_name {
            let mut result = self.current_generation(&new_id);
            result.skip_assignment = self.state == GroupState::Stable;
            return Pending::Ready(result);
        }
        self.join_and_wait(&new_id, now)
    }

    fn add_member_and_rebalance(
        &mut self,
        id: String,
        request: JoinRequest,
        now: Instant,
    ) -> Pending<JoinResult> {
        if let Some(instance) = &request.instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        let member = Member {
            id: id.clone(),
            instance_id: request.instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            session_timeout: request.session_timeout,
            rebalance_timeout: request.rebalance_timeout,
            protocol_type: request.protocol_type,
            protocols: request.protocols,
            assignment: Bytes::new(),
            last_seen: now,
            join_waiter: None,
            sync_waiter: None,
        };
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        self.members.insert(id.clone(), member);
        if self.state == GroupState::PreparingRebalance {
            self.extend_initial_delay(now);
        }
        self.join_and_wait(&id, now)
    }

    fn join_known(&mut self, request: JoinRequest, now: Instant) -> Pending<JoinResult> {
        let id = request.member_id.clone();
        let unchanged = self
            .members
            .get(&id)
            .is_some_and(|m| m.protocols == request.protocols);
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        match self.state {
            GroupState::CompletingRebalance if unchanged => {
                Pending::Ready(self.current_generation(&id))
            }
            GroupState::Stable if unchanged && !is_leader => {
                Pending::Ready(self.current_generation(&id))
            }
            _ => {
                self.update_member(&id, request, now);
                self.join_and_wait(&id, now)
            }
        }
    }

    fn update_member(&mut self, id: &str, request: JoinRequest, now: Instant) {
        if let Some(member) = self.members.get_mut(id) {
            member.protocols = request.protocols;
            member.session_timeout = request.session_timeout;
            member.rebalance_timeout = request.rebalance_timeout;
            member.client_id = request.client_id;
            member.client_host = request.client_host;
            member.last_seen = now;
        }
    }

    /// Parks the member's JoinGroup until the rebalance completes (starting one if needed).
    fn join_and_wait(&mut self, id: &str, now: Instant) -> Pending<JoinResult> {
        let (sender, receiver) = oneshot::channel();
        if let Some(member) = self.members.get_mut(id) {
            if let Some(old) = member.join_waiter.replace(sender) {
                // The client gave up on its earlier JoinGroup and sent another.
                let _ = old.send(JoinResult::failed(ResponseError::UnknownMemberId, id));
            }
        }
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now);
        }
        self.try_complete_join(now);
        Pending::Wait(receiver)
    }

    fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == GroupState::CompletingRebalance {
            // The assignment being made is for a generation that will not be: tell the
            // members waiting for it to rejoin.
            for member in self.members.values_mut() {
                if let Some(waiter) = member.sync_waiter.take() {
                    let _ = waiter.send(SyncResult::failed(ResponseError::RebalanceInProgress));
                }
            }
        }
        let longest = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        let initial = self.state == GroupState::Empty;
        self.join_deadline = now + longest;
        self.join_not_before = match initial {
            true => (now + self.settings.initial_rebalance_delay).min(self.join_deadline),
            false => now,
        };
        self.state = GroupState::PreparingRebalance;
    }

    /// Each consumer arriving during the initial delay restarts it, up to the deadline.
    fn extend_initial_delay(&mut self, now: Instant) {
        if self.join_not_before > now {
            self.join_not_before =
                (now + self.settings.initial_rebalance_delay).min(self.join_deadline);
        }
    }

    fn try_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let everyone_joined =
            self.pending.is_empty() && self.members.values().all(|m| m.join_waiter.is_some());
        if (everyone_joined && now >= self.join_not_before) || now >= self.join_deadline {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: Instant) {
        // Those who did not rejoin in time are out.
        let missing: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in missing {
            tracing::info!(group = %self.id, member = %id, "member did not rejoin in time");
            self.forget_member(&id);
        }
        self.pending.clear();
        self.generation += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol_name = None;
            self.leader = None;
            return;
        }
        self.protocol_name = self.select_protocol();
        self.state = GroupState::CompletingRebalance;
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        tracing::info!(
            group = %self.id,
            generation = self.generation,
            members = self.members.len(),
            protocol = self.protocol_name.as_deref().unwrap_or(""),
            "rebalance completed"
        );
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.current_generation(&id);
            if let Some(member) = self.members.get_mut(&id) {
                member.assignment = Bytes::new();
                member.last_seen = now;
                if let Some(waiter) = member.join_waiter.take() {
                    let _ = waiter.send(result);
                }
            }
        }
    }

    /// Kafka's vote: among the protocols every member supports, each member votes for its
    /// most preferred; the most votes wins, ties to the earlier candidate.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.common_protocols(self.members.values())?;
        let mut votes = vec![0usize; candidates.len()];
        for member in self.members.values() {
            let choice = member
                .protocols
                .iter()
                .find_map(|(name, _)| candidates.iter().position(|c| c == name));
            if let Some(index) = choice {
                votes[index] += 1;
            }
        }
        let best = (0..candidates.len()).max_by_key(|&i| (votes[i], std::cmp::Reverse(i)))?;
        candidates.get(best).cloned()
    }

    /// The JoinGroup answer for the current generation; the leader also gets the members.
    fn current_generation(&self, id: &str) -> JoinResult {
        let is_leader = self.leader.as_deref() == Some(id);
        let protocol = self.protocol_name.as_deref();
        let members = match is_leader {
            true => self
                .members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    metadata: m.metadata(protocol),
                })
                .collect(),
            false => Vec::new(),
        };
        JoinResult {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: id.to_string(),
            members,
            skip_assignment: false,
        }
    }

    /// A member id that is not the one registered for its static instance id.
    fn fenced(&self, member_id: &str, instance_id: Option<&str>) -> Option<ResponseError> {
        let instance = instance_id?;
        match self.static_members.get(instance) {
            Some(registered) if registered != member_id => Some(ResponseError::FencedInstanceId),
            _ => None,
        }
    }

    /// Checks that a request comes from a current member of `generation`.
    pub fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        if let Some(error) = self.fenced(member_id, instance_id) {
            return Err(error);
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
    ) -> Pending<SyncResult> {
        if let Err(error) = self.check_member(member_id, instance_id, generation) {
            return Pending::Ready(SyncResult::failed(error));
        }
        let (protocol_type, protocol_name) = protocol;
        let type_differs = protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref());
        let name_differs = protocol_name.is_some_and(|n| Some(n) != self.protocol_name.as_deref());
        if type_differs || name_differs {
            return Pending::Ready(SyncResult::failed(ResponseError::InconsistentGroupProtocol));
        }
        match self.state {
            GroupState::Empty => Pending::Ready(SyncResult::failed(ResponseError::UnknownMemberId)),
            GroupState::PreparingRebalance => {
                Pending::Ready(SyncResult::failed(ResponseError::RebalanceInProgress))
            }
            GroupState::Stable => Pending::Ready(self.sync_result(member_id)),
            GroupState::CompletingRebalance => {
                let (sender, receiver) = oneshot::channel();
                if let Some(member) = self.members.get_mut(member_id) {
                    member.sync_waiter = Some(sender);
                }
                if self.leader.as_deref() == Some(member_id) {
                    self.assign(assignments);
                }
                Pending::Wait(receiver)
            }
        }
    }

    /// The leader's assignment: the group is stable, everyone waiting gets their part.
    fn assign(&mut self, assignments: Vec<(String, Bytes)>) {
        let mut assignments: HashMap<String, Bytes> = assignments.into_iter().collect();
        for member in self.members.values_mut() {
            member.assignment = assignments.remove(&member.id).unwrap_or_default();
        }
        self.state = GroupState::Stable;
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.sync_result(&id);
            if let Some(waiter) = self.members.get_mut(&id).and_then(|m| m.sync_waiter.take()) {
                let _ = waiter.send(result);
            }
        }
    }

    fn sync_result(&self, member_id: &str) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), ResponseError> {
        if self.state == GroupState::Empty {
            return Err(ResponseError::UnknownMemberId);
        }
        self.check_member(member_id, instance_id, generation)?;
        if let Some(member) = self.members.get_mut(member_id) {
            member.last_seen = now;
        }
        match self.state {
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// LeaveGroup for one member, named by member id, instance id or both.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
    ) -> Result<(), ResponseError> {
        let id = match instance_id {
            Some(instance) => {
                let registered = self
                    .static_members
                    .get(instance)
                    .ok_or(ResponseError::UnknownMemberId)?;
                if !member_id.is_empty() && registered != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
                registered.clone()
            }
            None => member_id.to_string(),
        };
        if self.pending.remove(&id).is_some() {
            self.try_complete_join(now);
            return Ok(());
        }
        if !self.members.contains_key(&id) {
            return Err(ResponseError::UnknownMemberId);
        }
        tracing::info!(group = %self.id, member = %id, "member left");
        self.remove_member(&id, now);
        Ok(())
    }

    /// Takes a member out and rebalances the others.
    fn remove_member(&mut self, id: &str, now: Instant) {
        self.forget_member(id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now),
            GroupState::PreparingRebalance | GroupState::Empty => {}
        }
        self.try_complete_join(now);
    }

    fn forget_member(&mut self, id: &str) {
        if let Some(mut member) = self.members.shift_remove(id) {
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(JoinResult::failed(ResponseError::UnknownMemberId, id));
            }
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncResult::failed(ResponseError::UnknownMemberId));
            }
            if let Some(instance) = &member.instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(id) {
                    self.static_members.remove(instance);
                }
            }
        }
    }

    /// Time passes: sessions expire, delayed rebalances complete.
    pub fn tick(&mut self, now: Instant) {
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.expired(now))
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "session expired");
            self.remove_member(&id, now);
        }
        self.try_complete_join(now);
    }

    /// OffsetCommit from a member: allowed for the current generation unless the leader's
    /// assignment is pending. A commit with no member and generation -1 (admin tools,
    /// consumers using `assign()`) is allowed while the group has no members.
    pub fn check_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        if generation < 0 && member_id.is_empty() && self.members.is_empty() {
            return Ok(());
        }
        self.check_member(member_id, instance_id, generation)?;
        match self.state {
            GroupState::CompletingRebalance => Err(ResponseError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Topics the members subscribe to, where the consumer protocol says.
    pub fn subscribed_topics(&self) -> Vec<String> {
        use kafka_protocol::messages::ConsumerProtocolSubscription;
        use kafka_protocol::protocol::Decodable;
        if self.protocol_type.as_deref() != Some("consumer") {
            return Vec::new();
        }
        let protocol = self.protocol_name.as_deref();
        let mut topics = Vec::new();
        for member in self.members.values() {
            let mut metadata = member.metadata(protocol);
            if metadata.len() < 2 {
                continue;
            }
            let version = i16::from_be_bytes([metadata[0], metadata[1]]);
            let _ = bytes::Buf::get_i16(&mut metadata);
            // Newer clients may send versions this codec does not know; read what it can.
            let version = version.clamp(0, 3);
            if let Ok(subscription) = ConsumerProtocolSubscription::decode(&mut metadata, version) {
                topics.extend(subscription.topics.iter().map(|t| t.to_string()));
            }
        }
        topics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(delay_ms: u64) -> GroupSettings {
        GroupSettings {
            initial_rebalance_delay: Duration::from_millis(delay_ms),
            min_session_timeout: Duration::from_secs(1),
            max_session_timeout: Duration::from_secs(600),
        }
    }

    fn request(member_id: &str, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            member_id: member_id.into(),
            instance_id: None,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::from(format!("meta-{p}"))))
                .collect(),
            require_known_member_id: true,
        }
    }

    fn ready<T>(pending: Pending<T>) -> T {
        match pending {
            Pending::Ready(result) => result,
            Pending::Wait(_) => panic!("expected an answer now"),
        }
    }

    fn waiting<T>(pending: Pending<T>) -> oneshot::Receiver<T> {
        match pending {
            Pending::Wait(receiver) => receiver,
            Pending::Ready(_) => panic!("expected to wait"),
        }
    }

    fn answered<T>(receiver: &mut oneshot::Receiver<T>) -> T {
        match receiver.try_recv() {
            Ok(Some(result)) => result,
            other => panic!("no answer yet ({})", other.is_ok()),
        }
    }

    /// The two-step join of a new consumer: MEMBER_ID_REQUIRED, then a parked JoinGroup.
    fn join_new(
        group: &mut Group,
        protocols: &[&str],
        now: Instant,
    ) -> (String, oneshot::Receiver<JoinResult>) {
        let first = ready(group.join(request("", protocols), now));
        assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
        let id = first.member_id.clone();
        (
            id.clone(),
            waiting(group.join(request(&id, protocols), now)),
        )
    }

    #[test]
    fn first_rebalance_waits_for_the_initial_delay_then_elects_a_leader() {
        let start = Instant::now();
        let mut group = Group::new("g", settings(3000), start);
        let (a, mut a_join) = join_new(&mut group, &["range", "roundrobin"], start);
        let (b, mut b_join) = join_new(&mut group, &["roundrobin", "range"], start);
        assert_eq!(group.state, GroupState::PreparingRebalance);
        group.tick(start + Duration::from_millis(2000));
        assert!(
            a_join.try_recv().is_ok_and(|r| r.is_none()),
            "before the delay"
        );

        group.tick(start + Duration::from_millis(3001));
        let (a_result, b_result) = (answered(&mut a_join), answered(&mut b_join));
        assert_eq!(group.state, GroupState::CompletingRebalance);
        assert_eq!(
            (a_result.generation, a_result.leader.as_str()),
            (1, a.as_str())
        );
        assert_eq!(a_result.members.len(), 2, "the leader sees everyone");
        assert!(b_result.members.is_empty());
        // One vote each: the tie goes to the earlier candidate.
        assert_eq!(a_result.protocol_name.as_deref(), Some("range"));
        assert_eq!(a_result.members[1].metadata, Bytes::from("meta-range"));

        let mut b_sync = waiting(group.sync(&b, None, 1, (None, None), vec![]));
        let assignments = vec![(a.clone(), Bytes::from("A")), (b.clone(), Bytes::from("B"))];
        let a_sync = answered(&mut waiting(group.sync(
            &a,
            None,
            1,
            (None, None),
            assignments,
        )));
        assert_eq!(a_sync.assignment, Bytes::from("A"));
        assert_eq!(answered(&mut b_sync).assignment, Bytes::from("B"));
        assert_eq!(group.state, GroupState::Stable);
    }

    #[test]
    fn a_new_member_rebalances_a_stable_group_without_delay() {
        let start = Instant::now();
        let mut group = Group::new("g", settings(0), start);
        let (a, mut a_join) = join_new(&mut group, &["range"], start);
        assert_eq!(answered(&mut a_join).generation, 1);
        let _ = group.sync(
            &a,
            None,
            1,
            (None, None),
            vec![(a.clone(), Bytes::from("x"))],
        );
        assert_eq!(group.state, GroupState::Stable);

        let (_b, mut b_join) = join_new(&mut group, &["range"], start);
        assert_eq!(
            group.heartbeat(&a, None, 1, start),
            Err(ResponseError::RebalanceInProgress)
        );
        let mut a_rejoin = waiting(group.join(request(&a, &["range"]), start));
        assert_eq!(answered(&mut a_rejoin).generation, 2);
        assert_eq!(answered(&mut b_join).generation, 2);
        assert_eq!(
            group.sync(&a, None, 1, (None, None), vec![]).error_now(),
            Some(ResponseError::IllegalGeneration)
        );
    }

    #[test]
    fn an_expired_session_rebalances_the_others() {
        let start = Instant::now();
        let mut group = Group::new("g", settings(0), start);
        let (a, mut a_join) = join_new(&mut group, &["range"], start);
        assert_eq!(answered(&mut a_join).generation, 1);
        let (b, mut b_join) = join_new(&mut group, &["range"], start);
        let mut a_rejoin = waiting(group.join(request(&a, &["range"]), start));
        assert_eq!(answered(&mut a_rejoin).generation, 2);
        assert_eq!(answered(&mut b_join).generation, 2);
        let _ = group.sync(&a, None, 2, (None, None), vec![]);
        let later = start + Duration::from_secs(8);
        assert_eq!(group.heartbeat(&a, None, 2, later), Ok(()));
        let expiry = start + Duration::from_secs(11);
        group.tick(expiry);
        assert!(!group.members.contains_key(&b), "b never heartbeat");
        assert_eq!(group.state, GroupState::PreparingRebalance);
        let mut rejoin = waiting(group.join(request(&a, &["range"]), expiry));
        let result = answered(&mut rejoin);
        assert_eq!((result.generation, result.leader), (3, a));
    }

    #[test]
    fn leaving_last_member_empties_the_group() {
        let start = Instant::now();
        let mut group = Group::new("g", settings(0), start);
        let (a, mut a_join) = join_new(&mut group, &["range"], start);
        answered(&mut a_join);
        assert_eq!(group.leave(&a, None, start), Ok(()));
        assert_eq!(group.state, GroupState::Empty);
        assert_eq!(
            group.leave(&a, None, start),
            Err(ResponseError::UnknownMemberId)
        );
        assert_eq!(group.check_commit("", None, -1), Ok(()));
    }

    #[test]
    fn protocols_must_overlap() {
        let start = Instant::now();
        let mut group = Group::new("g", settings(0), start);
        let (_a, _a_join) = join_new(&mut group, &["range"], start);
        let refused = ready(group.join(request("", &["sticky"]), start));
        assert_eq!(
            refused.error,
            Some(ResponseError::InconsistentGroupProtocol)
        );
    }

    #[test]
    fn a_static_member_coming_back_keeps_its_assignment() {
        let start = Instant::now();
        let mut group = Group::new("g", settings(0), start);
        let mut join = request("", &["range"]);
        join.instance_id = Some("pod-1".into());
        let mut first = waiting(group.join(join.clone(), start));
        let first = answered(&mut first);
        let old = first.member_id.clone();
        let _ = group.sync(
            &old,
            Some("pod-1"),
            1,
            (None, None),
            vec![(old.clone(), Bytes::from("p0"))],
        );
        assert_eq!(group.state, GroupState::Stable);

        let again = ready(group.join(join, start));
        assert_ne!(again.member_id, old);
        assert_eq!(again.generation, 1, "no rebalance");
        assert!(again.skip_assignment);
        assert_eq!(
            group.heartbeat(&old, Some("pod-1"), 1, start),
            Err(ResponseError::FencedInstanceId)
        );
        let sync = ready(group.sync(&again.member_id, Some("pod-1"), 1, (None, None), vec![]));
        assert_eq!(sync.assignment, Bytes::from("p0"));
    }

    /// A restarted Java consumer sends other subscription bytes (no owned partitions, no
    /// generation) under the same protocol names: still no rebalance. Only a change of the
    /// protocol the group would select rebalances it.
    #[test]
    fn a_static_member_with_new_subscription_bytes_keeps_its_place() {
        let start = Instant::now();
        let mut group = Group::new("g", settings(0), start);
        let mut join = request("", &["range", "cooperative-sticky"]);
        join.instance_id = Some("pod-1".into());
        let mut first = waiting(group.join(join.clone(), start));
        let first = answered(&mut first);
        let _ = group.sync(&first.member_id, Some("pod-1"), 1, (None, None), vec![]);
        assert_eq!(group.state, GroupState::Stable);

        let mut restarted = join.clone();
        for (_, metadata) in &mut restarted.protocols {
            *metadata = Bytes::from_static(b"owned partitions: none, generation: -1");
        }
        let again = ready(group.join(restarted.clone(), start));
        assert_eq!((again.error, again.generation), (None, 1), "no rebalance");
        assert_eq!(
            group.members[&again.member_id].protocols, restarted.protocols,
            "the member's new subscription is kept for the next rebalance"
        );

        let mut switched = join;
        switched.protocols.reverse();
        let mut rebalanced = waiting(group.join(switched, start));
        let rebalanced = answered(&mut rebalanced);
        assert_eq!(
            (rebalanced.generation, rebalanced.protocol_name.as_deref()),
            (2, Some("cooperative-sticky")),
            "the selected protocol changes: a rebalance"
        );
    }

    impl Pending<SyncResult> {
        fn error_now(self) -> Option<ResponseError> {
            ready(self).error
        }
    }
}
