//! Authorization: the stage of dispatch, after a request is decoded and before its handler
//! starts, that applies the ACLs to it as Kafka's `KafkaApis` does (the per-API table is in
//! [`crate::security::acl`]).
//!
//! Why a stage and not a call in each handler: no handler can forget it, and handlers stay
//! ignorant of principals. For each API there is one function here (by family: [`topics`],
//! [`groups`], [`cluster`]) that decides one of:
//!
//! - the request is allowed as it is: the handler runs on it unchanged;
//! - some of its resources are denied: they are taken out of the request before the handler
//!   sees it, and an [`Amend`] puts their error entries into the handler's answer, where
//!   and in the shape Kafka puts them (the second tier of failure);
//! - the whole request is denied: its error response is answered and no handler runs.
//!
//! Cost: when nothing can be denied (no ACL at all and `allow_everyone_if_no_acl_found`,
//! the default of a gateway whose listeners do not authenticate) the stage is one atomic
//! load and a flag. Otherwise each check is one lookup in the shard's decision cache, which
//! allocates nothing on a hit; Produce asks once per topic.
//!
//! Topics named by id (Produce v13, Fetch v13+, DeleteTopics v6) are checked by name, so
//! their ids are resolved first; that lookup may wait on the backend on a cache miss, and
//! the stage is then finished in the handler's task ([`Admitted::ResolveIds`]).

pub mod cluster;
pub mod groups;
pub mod topics;

use crate::handlers::RequestContext;
use crate::security::access::Access;
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_NAME};
use crate::shard::Shard;
use kafka_protocol::messages::{RequestKind, ResponseKind};
use std::net::IpAddr;

/// What the stage made of a request.
pub enum Admitted {
    /// Run the handler on this request (narrowed to what is allowed), then amend its answer.
    Run(RequestKind, Option<Amend>),
    /// Answer this and run no handler (`None`: answer nothing, as Produce with acks=0).
    Answer(Option<ResponseKind>),
    /// The request names topics by id: resolve them, then decide ([`resolve_ids`], [`admit`]).
    ResolveIds(RequestKind),
}

/// Puts the error entries of denied resources into the handler's answer, or takes out of it
/// what the client may not see (asking the ACLs as they are when the answer comes).
pub type Amend = Box<dyn FnOnce(&Who, &mut ResponseKind)>;

/// Who is asking: the connection's principal and address, and this shard's view of the ACLs.
pub struct Who<'a> {
    pub access: &'a Access,
    /// "User:alice".
    pub principal: &'a str,
    pub host: IpAddr,
}

impl Who<'_> {
    /// May the client do `operation` on the resource?
    pub fn may(&self, operation: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        (self.access).authorize(self.principal, self.host, operation, resource_type, name)
    }

    pub fn may_topic(&self, operation: AclOperation, topic: &str) -> bool {
        self.may(operation, ResourceType::Topic, topic)
    }

    pub fn may_group(&self, operation: AclOperation, group: &str) -> bool {
        self.may(operation, ResourceType::Group, group)
    }

    pub fn may_cluster(&self, operation: AclOperation) -> bool {
        self.may(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// The `authorized_operations` bitfield of a resource.
    pub fn operations(&self, resource_type: ResourceType, name: &str) -> i32 {
        (self.access).authorized_operations(self.principal, self.host, resource_type, name)
    }
}

/// The stage: what to do with a decoded request before its handler runs. `ids_resolved`:
/// [`resolve_ids`] has run on it. (Dispatch skips the stage when `allows_all`.)
pub fn admit(
    shard: &Shard,
    context: &RequestContext,
    request: RequestKind,
    ids_resolved: bool,
) -> Admitted {
    if shard.access.allows_all() {
        return Admitted::Run(request, None);
    }
    if !ids_resolved && topics::names_by_id(&request) {
        return Admitted::ResolveIds(request);
    }
    let session = context.connection.session.borrow();
    let who = Who {
        access: &shard.access,
        principal: session.principal(),
        host: context.connection.client_ip,
    };
    check(&who, context.version, request)
}

/// Each API's check, by family.
pub fn check(who: &Who, version: i16, request: RequestKind) -> Admitted {
    use RequestKind as R;
    match request {
        R::Produce(r) => topics::produce(who, r),
        R::Fetch(r) => topics::fetch(who, r),
        R::ListOffsets(r) => topics::list_offsets(who, r),
        R::Metadata(r) => topics::metadata(who, version, r),
        R::CreateTopics(r) => topics::create_topics(who, r),
        R::DeleteTopics(r) => topics::delete_topics(who, version, r),
        R::CreatePartitions(r) => topics::create_partitions(who, r),
        R::DeleteRecords(r) => topics::delete_records(who, r),
        R::OffsetForLeaderEpoch(r) => topics::offset_for_leader_epoch(who, r),
        R::DescribeProducers(r) => topics::describe_producers(who, r),
        R::DescribeTopicPartitions(r) => topics::describe_topic_partitions(who, r),

        R::FindCoordinator(r) => groups::find_coordinator(who, version, r),
        R::JoinGroup(r) => groups::join_group(who, version, r),
        R::SyncGroup(r) => groups::sync_group(who, r),
        R::Heartbeat(r) => groups::heartbeat(who, r),
        R::LeaveGroup(r) => groups::leave_group(who, r),
        R::ConsumerGroupHeartbeat(r) => groups::consumer_group_heartbeat(who, r),
        R::OffsetCommit(r) => groups::offset_commit(who, r),
        R::OffsetFetch(r) => groups::offset_fetch(who, version, r),
        R::OffsetDelete(r) => groups::offset_delete(who, r),
        R::DescribeGroups(r) => groups::describe_groups(who, r),
        R::ConsumerGroupDescribe(r) => groups::consumer_group_describe(who, r),
        R::ListGroups(r) => groups::list_groups(who, r),
        R::DeleteGroups(r) => groups::delete_groups(who, r),

        R::InitProducerId(r) => cluster::init_producer_id(who, r),
        R::DescribeConfigs(r) => cluster::describe_configs(who, r),
        R::AlterConfigs(r) => cluster::alter_configs(who, r),
        R::IncrementalAlterConfigs(r) => cluster::incremental_alter_configs(who, r),
        R::DescribeCluster(r) => cluster::describe_cluster(who, r),
        request => cluster::by_api_key(who, version, request),
    }
}

/// Fills in the names of topics a request names by id only, where the id is known (an
/// unknown id is left for the handler to answer UNKNOWN_TOPIC_ID, as Kafka answers it before
/// any authorization).
pub async fn resolve_ids(shard: &Shard, request: RequestKind) -> RequestKind {
    topics::resolve_ids(shard, request).await
}

/// Whether the client of `context` may have `topic` auto-created (Metadata, Produce): Create
/// on the Cluster, else Create on the Topic. Asked only when a missing topic would be created.
pub fn may_create_topic(shard: &Shard, context: &RequestContext, topic: &str) -> bool {
    if shard.access.allows_all() {
        return true;
    }
    let session = context.connection.session.borrow();
    let who = Who {
        access: &shard.access,
        principal: session.principal(),
        host: context.connection.client_ip,
    };
    who.may_cluster(AclOperation::Create) || who.may_topic(AclOperation::Create, topic)
}

/// Takes out of `items` those `allowed` refuses and returns them; `items` keeps its order.
/// Asks once per item, and allocates nothing when all are allowed.
pub fn take_denied<T>(items: &mut Vec<T>, mut allowed: impl FnMut(&T) -> bool) -> Vec<T> {
    let Some(first) = items.iter().position(|item| !allowed(item)) else {
        return Vec::new();
    };
    let mut kept = Vec::with_capacity(items.len());
    let mut denied = Vec::new();
    for (index, item) in items.drain(..).enumerate() {
        match index < first || (index > first && allowed(&item)) {
            true => kept.push(item),
            false => denied.push(item),
        }
    }
    *items = kept;
    denied
}

/// Runs the handler on the request as it is when nothing was denied, else with `amend`.
pub fn run_amended(
    request: RequestKind,
    denied: bool,
    amend: impl FnOnce(&Who, &mut ResponseKind) + 'static,
) -> Admitted {
    match denied {
        false => Admitted::Run(request, None),
        true => Admitted::Run(request, Some(Box::new(amend))),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! What the unit tests of the stage share: a `Who` over ACLs they set.
    use super::*;
    use crate::config::Config;
    use crate::security::acl::{AclBinding, AclPermissionType, Acls, PatternType};
    use crate::security::Security;
    use clap::Parser;
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    pub const ALICE: &str = "User:alice";

    /// An `Access` with these ACLs in force, on a gateway whose listeners authenticate (so
    /// no ACL means no access).
    pub fn access(bindings: &[(ResourceType, &str, PatternType, AclOperation)]) -> Access {
        let config = Config::parse_from([
            "tidegate",
            "--listener",
            "SASL=SASL_PLAINTEXT://127.0.0.1:0",
        ]);
        let security: Arc<Security> = Security::from_config(&config).expect("security");
        let mut acls = Acls::new();
        for &(resource_type, name, pattern_type, operation) in bindings {
            acls.create(AclBinding {
                resource_type,
                resource_name: name.to_owned(),
                pattern_type,
                principal: ALICE.to_owned(),
                host: "*".to_owned(),
                operation,
                permission: AclPermissionType::Allow,
            })
            .expect("valid binding");
        }
        security.set_acls(acls);
        Access::new(security)
    }

    pub fn who(access: &Access) -> Who<'_> {
        Who {
            access,
            principal: ALICE,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }

    /// The request a handler would be given and the amended answer it would give back.
    pub fn run(admitted: Admitted) -> (RequestKind, Option<Amend>) {
        match admitted {
            Admitted::Run(request, amend) => (request, amend),
            Admitted::Answer(_) => panic!("expected the handler to run"),
            Admitted::ResolveIds(_) => panic!("expected a decision"),
        }
    }

    pub fn answer(admitted: Admitted) -> ResponseKind {
        match admitted {
            Admitted::Answer(Some(response)) => response,
            _ => panic!("expected an answer without the handler"),
        }
    }

    pub fn amended(who: &Who, amend: Option<Amend>, mut response: ResponseKind) -> ResponseKind {
        if let Some(amend) = amend {
            amend(who, &mut response);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_denied_keeps_order_and_allocates_nothing_when_all_pass() {
        let mut items = vec![1, 2, 3, 4, 5];
        let denied = take_denied(&mut items, |&i| i % 2 == 1);
        assert_eq!(items, [1, 3, 5]);
        assert_eq!(denied, [2, 4]);
        let mut all = vec![1, 3];
        let none = take_denied(&mut all, |_| true);
        assert!(none.is_empty() && none.capacity() == 0);
        assert_eq!(all, [1, 3]);
    }
}
