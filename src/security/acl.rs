//! ACL bindings and the decision Kafka's `StandardAuthorizer` makes for them.
//!
//! Pure and synchronous: [`Acls`] is the set of bindings (what CreateAcls, DescribeAcls and
//! DeleteAcls change and read, stored as JSON in SeaweedFS's filer); an [`Authorizer`] answers
//! for one immutable snapshot of it; a per-shard [`DecisionCache`] remembers answers for the
//! produce and fetch paths. The enums carry Kafka's wire codes (the `i8` fields of the
//! CreateAcls / DescribeAcls / DeleteAcls messages) and the names `kafka-acls` prints.
//!
//! # What Kafka checks, per API
//!
//! Dispatch follows this table. "X on T" means `authorize(principal, host, X, T, name)`; a
//! Cluster check always names `kafka-cluster`. Checked against Apache Kafka's
//! `core/src/main/scala/kafka/server/KafkaApis.scala` (the `handle*` method named in the last
//! column), `ControllerApis.scala` for the requests a KRaft broker forwards to its controller,
//! `AclApis.scala`, `ConfigHelper.scala`, `AuthHelper.scala` and
//! `handlers/DescribeTopicPartitionsRequestHandler.java` (trunk of 2024-10-25, 1eb7644).
//!
//! | API (key) | Check | When denied | Kafka source |
//! |---|---|---|---|
//! | Produce (0) | Write on each Topic. A batch with transactional records first needs Write on TransactionalId `transactional_id` (a null id is denied). No IdempotentWrite check: since KIP-679 (3.0) that moved to InitProducerId | per partition TOPIC_AUTHORIZATION_FAILED; transactional: whole request TRANSACTIONAL_ID_AUTHORIZATION_FAILED | `handleProduceRequest` |
//! | Fetch (1) | Consumer: Read on each Topic. Follower fetch (replica id set): ClusterAction on Cluster | per partition TOPIC_AUTHORIZATION_FAILED | `handleFetchRequest` |
//! | ListOffsets (2) | Describe on each Topic | per partition TOPIC_AUTHORIZATION_FAILED | `handleListOffsetRequestV1AndAbove` |
//! | Metadata (3) | Describe on each Topic: an all-topics request silently omits the rest; a named topic gets TOPIC_AUTHORIZATION_FAILED with a zero topic id. Auto-creating a missing (described) topic: Create on Cluster, else Create on that Topic. `cluster_authorized_operations` (v8–10): Describe on Cluster, then [`Authorizer::authorized_operations`], else 0. `topic_authorized_operations`: the bitfield | per topic TOPIC_AUTHORIZATION_FAILED | `handleTopicMetadataRequest` |
//! | OffsetCommit (8) | Read on Group, then Read on each Topic | group: whole request GROUP_AUTHORIZATION_FAILED; topic: per partition TOPIC_AUTHORIZATION_FAILED | `handleOffsetCommitRequest` |
//! | OffsetFetch (9) | **Describe** (not Read; Read implies it) on each Group, then Describe on each Topic: named topics get TOPIC_AUTHORIZATION_FAILED, an all-topics fetch omits them | group: GROUP_AUTHORIZATION_FAILED (per group v8+, whole response before); topic: per partition | `handleOffsetFetchRequestFromCoordinator`, `fetchOffsetsForGroup`, `fetchAllOffsetsForGroup` |
//! | FindCoordinator (10) | key type 0: Describe on Group `key`; key type 1: Describe on TransactionalId `key` | GROUP_ / TRANSACTIONAL_ID_AUTHORIZATION_FAILED (per key v4+, else the response's error) | `getCoordinator` |
//! | JoinGroup (11), Heartbeat (12), LeaveGroup (13), SyncGroup (14) | Read on Group | GROUP_AUTHORIZATION_FAILED | `handleJoinGroupRequest` etc. |
//! | DescribeGroups (15) | Describe on each Group; `authorized_operations` is the Group bitfield | per group GROUP_AUTHORIZATION_FAILED | `handleDescribeGroupsRequest` |
//! | ListGroups (16) | Describe on Cluster lists every group; otherwise only groups with Describe on Group | never an error: groups are filtered | `handleListGroupsRequest` |
//! | SaslHandshake (17), ApiVersions (18), SaslAuthenticate (36) | none | — | `handleSaslHandshakeRequest` etc. |
//! | CreateTopics (19) | Create on Cluster, else Create on each Topic. DescribeConfigs on Topic decides whether the created topic's configs are returned; without it `topic_config_error_code` = TOPIC_AUTHORIZATION_FAILED | per topic TOPIC_AUTHORIZATION_FAILED | `ControllerApis.createTopics`, `ReplicationControlManager.createTopic` |
//! | DeleteTopics (20) | Delete on Cluster, else Delete on each Topic; a topic named by id is also checked for Describe on Topic, which decides whether its name is returned with the error | per topic TOPIC_AUTHORIZATION_FAILED | `ControllerApis.deleteTopics` (a ZooKeeper broker checked Delete on Topic only) |
//! | DeleteRecords (21) | Delete on each Topic | per partition TOPIC_AUTHORIZATION_FAILED | `handleDeleteRecordsRequest` |
//! | InitProducerId (22) | With `transactional_id`: Write on TransactionalId. Without: IdempotentWrite on Cluster, **or** [`Authorizer::authorize_by_resource_type`] (Write, Topic): an ALLOW for Write on any topic suffices (KIP-679) | TRANSACTIONAL_ID_ / CLUSTER_AUTHORIZATION_FAILED | `handleInitProducerIdRequest` |
//! | OffsetForLeaderEpoch (23) | ClusterAction on Cluster, else Describe on each Topic | per partition TOPIC_AUTHORIZATION_FAILED | `handleOffsetForLeaderEpochRequest` |
//! | DescribeAcls (29) | Describe on Cluster | CLUSTER_AUTHORIZATION_FAILED | `AclApis.handleDescribeAcls` |
//! | CreateAcls (30), DeleteAcls (31) | Alter on Cluster | CLUSTER_AUTHORIZATION_FAILED | `AclApis.handleCreateAcls`, `handleDeleteAcls` |
//! | DescribeConfigs (32) | BROKER, BROKER_LOGGER, CLIENT_METRICS: DescribeConfigs on Cluster; TOPIC: DescribeConfigs on Topic; GROUP: DescribeConfigs on Group | per resource CLUSTER_ / TOPIC_ / GROUP_AUTHORIZATION_FAILED | `ConfigHelper.handleDescribeConfigsRequest` |
//! | AlterConfigs (33) | BROKER, CLIENT_METRICS: AlterConfigs on Cluster; TOPIC: AlterConfigs on Topic (the controller also maps GROUP to AlterConfigs on Group) | per resource, as above | `processLegacyAlterConfigsRequest`, `ControllerApis.authorizeAlterResource` |
//! | DescribeLogDirs (35) | Describe on Cluster | CLUSTER_AUTHORIZATION_FAILED | `handleDescribeLogDirsRequest` |
//! | CreatePartitions (37) | Alter on each Topic | per topic TOPIC_AUTHORIZATION_FAILED | `ControllerApis.handleCreatePartitions` |
//! | DeleteGroups (42) | Delete on each Group | per group GROUP_AUTHORIZATION_FAILED | `handleDeleteGroupsRequest` |
//! | ElectLeaders (43) | Alter on Cluster | CLUSTER_AUTHORIZATION_FAILED | `handleElectLeaders`, `ControllerApis.handleElectLeaders` |
//! | IncrementalAlterConfigs (44) | BROKER, BROKER_LOGGER, CLIENT_METRICS: AlterConfigs on Cluster; TOPIC: AlterConfigs on Topic; GROUP: AlterConfigs on Group | per resource, as DescribeConfigs | `handleIncrementalAlterConfigsRequest`, `ControllerApis.authorizeAlterResource` |
//! | AlterPartitionReassignments (45) | Alter on Cluster | CLUSTER_AUTHORIZATION_FAILED | `ControllerApis.handleAlterPartitionReassignments` |
//! | ListPartitionReassignments (46) | Describe on Cluster | CLUSTER_AUTHORIZATION_FAILED | `ControllerApis.handleListPartitionReassignments` |
//! | OffsetDelete (47) | Delete on Group, then Read on each Topic | group: whole request; topic: per partition TOPIC_AUTHORIZATION_FAILED | `handleOffsetDeleteRequest` |
//! | DescribeUserScramCredentials (50) | Describe on Cluster | CLUSTER_AUTHORIZATION_FAILED | `handleDescribeUserScramCredentialsRequest` |
//! | AlterUserScramCredentials (51) | Alter on Cluster | CLUSTER_AUTHORIZATION_FAILED | `ControllerApis.handleAlterUserScramCredentials` |
//! | DescribeQuorum (55) | Describe on Cluster | CLUSTER_AUTHORIZATION_FAILED | `ControllerApis.handleDescribeQuorum` |
//! | DescribeCluster (60) | none for the answer; `cluster_authorized_operations` needs Describe on Cluster, then the bitfield | — | `AuthHelper.computeDescribeClusterResponse` |
//! | DescribeProducers (61) | Read on each Topic | per partition TOPIC_AUTHORIZATION_FAILED | `handleDescribeProducersRequest` |
//! | ConsumerGroupHeartbeat (68) | Read on Group (Kafka 4.x also checks Describe on subscribed topics; not in this snapshot, unverified) | GROUP_AUTHORIZATION_FAILED | `handleConsumerGroupHeartbeat` |
//! | ConsumerGroupDescribe (69) | Describe on each Group; `authorized_operations` is the Group bitfield | per group GROUP_AUTHORIZATION_FAILED | `handleConsumerGroupDescribe` |
//! | ListConfigResources (74, was ListClientMetricsResources) | DescribeConfigs on Cluster | CLUSTER_AUTHORIZATION_FAILED | `handleListClientMetricsResources` |
//! | DescribeTopicPartitions (75) | Describe on each Topic (TOPIC_AUTHORIZATION_FAILED, zero topic id); `topic_authorized_operations` is the bitfield | per topic | `DescribeTopicPartitionsRequestHandler` |
//!
//! "Per partition / per topic / per group" is the second tier of failure (an error code inside
//! a normal response); "whole request" is an error response.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hashbrown::{Equivalent, HashMap};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The resource name that stands for every resource of a type, in a LITERAL pattern.
pub const WILDCARD_RESOURCE: &str = "*";
/// The principal that stands for every principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The host that stands for every host.
pub const WILDCARD_HOST: &str = "*";
/// The one name a Cluster resource has.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// A Kafka enum: its wire code (`i8`), and the name Kafka's `toString` gives it, which is
/// also how it is spelled in the stored JSON.
macro_rules! kafka_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $code:literal => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[repr(i8)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant = $code,)+
        }

        impl $name {
            /// The wire code.
            pub const fn code(self) -> i8 {
                self as i8
            }

            /// The value a wire code stands for; `None` for a code Kafka does not define.
            pub const fn from_code(code: i8) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The name as `kafka-acls` prints it (`TRANSACTIONAL_ID`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

kafka_enum! {
    /// What kind of resource an ACL protects (Kafka's `ResourceType`).
    ResourceType {
        Unknown = 0 => "UNKNOWN",
        Any = 1 => "ANY",
        Topic = 2 => "TOPIC",
        Group = 3 => "GROUP",
        Cluster = 4 => "CLUSTER",
        TransactionalId = 5 => "TRANSACTIONAL_ID",
        DelegationToken = 6 => "DELEGATION_TOKEN",
        User = 7 => "USER",
    }
}

kafka_enum! {
    /// How an ACL's resource name is matched (Kafka's `PatternType`). Any and Match exist
    /// only in filters.
    PatternType {
        Unknown = 0 => "UNKNOWN",
        Any = 1 => "ANY",
        Match = 2 => "MATCH",
        Literal = 3 => "LITERAL",
        Prefixed = 4 => "PREFIXED",
    }
}

kafka_enum! {
    /// What an ACL allows or denies (Kafka's `AclOperation`). Any exists only in filters;
    /// All in an ACL covers every operation.
    AclOperation {
        Unknown = 0 => "UNKNOWN",
        Any = 1 => "ANY",
        All = 2 => "ALL",
        Read = 3 => "READ",
        Write = 4 => "WRITE",
        Create = 5 => "CREATE",
        Delete = 6 => "DELETE",
        Alter = 7 => "ALTER",
        Describe = 8 => "DESCRIBE",
        ClusterAction = 9 => "CLUSTER_ACTION",
        DescribeConfigs = 10 => "DESCRIBE_CONFIGS",
        AlterConfigs = 11 => "ALTER_CONFIGS",
        IdempotentWrite = 12 => "IDEMPOTENT_WRITE",
        CreateTokens = 13 => "CREATE_TOKENS",
        DescribeTokens = 14 => "DESCRIBE_TOKENS",
    }
}

kafka_enum! {
    /// Whether an ACL allows or denies (Kafka's `AclPermissionType`). Any exists only in
    /// filters.
    AclPermissionType {
        Unknown = 0 => "UNKNOWN",
        Any = 1 => "ANY",
        Deny = 2 => "DENY",
        Allow = 3 => "ALLOW",
    }
}

/// The operations that mean something for a resource type, as Kafka's
/// `AclEntry.supportedOperations` lists them: what an `authorized_operations` bitfield
/// reports on. Empty for Any and Unknown.
pub const fn supported_operations(resource_type: ResourceType) -> &'static [AclOperation] {
    use AclOperation::*;
    match resource_type {
        ResourceType::Topic => &[
            Read,
            Write,
            Create,
            Describe,
            Delete,
            Alter,
            DescribeConfigs,
            AlterConfigs,
        ],
        ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
        ResourceType::Cluster => &[
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            Alter,
            Describe,
        ],
        ResourceType::TransactionalId => &[Describe, Write],
        ResourceType::DelegationToken => &[Describe],
        ResourceType::User => &[CreateTokens, DescribeTokens],
        ResourceType::Any | ResourceType::Unknown => &[],
    }
}

/// One ACL: a resource pattern and an access-control entry, as CreateAcls carries it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    /// A resource name, or [`WILDCARD_RESOURCE`] in a LITERAL pattern.
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `Type:name`, e.g. `User:alice`, or [`WILDCARD_PRINCIPAL`].
    pub principal: String,
    /// A client IP address, or [`WILDCARD_HOST`].
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermissionType,
}

impl AclBinding {
    /// Whether CreateAcls may store this binding. Every failure is INVALID_REQUEST
    /// ([`Error::InvalidRequest`]), as Kafka answers it per creation: `AclApis.handleCreateAcls`
    /// (Cluster named other than `kafka-cluster`, empty name) and
    /// `AclControlManager.validateNewAcl` (Any or Unknown resource type, operation or
    /// permission; a pattern type other than LITERAL or PREFIXED). Kafka stores a principal
    /// without a colon and fails on it at authorization time; this refuses it up front, and
    /// an empty type or name with it. (CreateAcls v0 accepts LITERAL only: that is the
    /// handler's UNSUPPORTED_VERSION, not a property of the binding.)
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |message: String| Err(Error::InvalidRequest(message));
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_NAME {
            return invalid(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        if self.resource_name.is_empty() {
            return invalid("Invalid empty resource name".to_owned());
        }
        if matches!(
            self.resource_type,
            ResourceType::Unknown | ResourceType::Any
        ) {
            return invalid(format!("Invalid resourceType {}", self.resource_type));
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return invalid(format!("Invalid patternType {}", self.pattern_type));
        }
        if matches!(self.operation, AclOperation::Unknown | AclOperation::Any) {
            return invalid(format!("Invalid operation {}", self.operation));
        }
        if !matches!(
            self.permission,
            AclPermissionType::Allow | AclPermissionType::Deny
        ) {
            return invalid(format!("Invalid permissionType {}", self.permission));
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(()),
            _ => invalid(format!(
                "Could not parse principal from `{}`: expected principalType:principalName",
                self.principal
            )),
        }
    }

    /// Whether this ACL's pattern covers the resource `name` (of the same type):
    /// LITERAL by equality or the wildcard `*`, PREFIXED by prefix.
    fn pattern_matches(&self, name: &str) -> bool {
        match self.pattern_type {
            PatternType::Literal => {
                self.resource_name == name || self.resource_name == WILDCARD_RESOURCE
            }
            PatternType::Prefixed => name.starts_with(self.resource_name.as_str()),
            _ => false,
        }
    }

    fn principal_matches(&self, principal: &str) -> bool {
        self.principal == principal || self.principal == WILDCARD_PRINCIPAL
    }

    /// Kafka compares the ACL's host as text with Java's `getHostAddress()` of the client;
    /// here both are compared as addresses, so `::1` and `0:0:0:0:0:0:0:1` (Java's spelling)
    /// are the same host, and an IPv4-mapped IPv6 client is its IPv4 address, as in Java.
    fn host_matches(&self, host: IpAddr) -> bool {
        self.host == WILDCARD_HOST
            || self
                .host
                .parse::<IpAddr>()
                .is_ok_and(|acl_host| acl_host.to_canonical() == host.to_canonical())
    }
}

impl fmt::Display for AclBinding {
    /// Kafka's `AclBinding.toString`, which `kafka-acls` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "(pattern=ResourcePattern(resourceType={}, name={}, patternType={}), \
             entry=(principal={}, host={}, operation={}, permissionType={}))",
            self.resource_type,
            self.resource_name,
            self.pattern_type,
            self.principal,
            self.host,
            self.operation,
            self.permission
        )
    }
}

/// Which bindings DescribeAcls lists and DeleteAcls removes: Kafka's `AclBindingFilter`
/// (a `ResourcePatternFilter` and an `AccessControlEntryFilter`). `None` matches anything.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AclBindingFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: AclPermissionType,
}

impl AclBindingFilter {
    /// The filter that matches every binding.
    pub fn any() -> Self {
        AclBindingFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermissionType::Any,
        }
    }

    /// Whether DescribeAcls or DeleteAcls may use this filter: an Unknown anywhere is
    /// INVALID_REQUEST (`DescribeAclsRequest`/`DeleteAclsRequest.normalizeAndValidate`,
    /// `AclControlManager.validateFilter`). The v0 rule (pattern ANY read as LITERAL,
    /// others UNSUPPORTED_VERSION) belongs to the handler.
    pub fn validate(&self) -> Result<(), Error> {
        if self.resource_type == ResourceType::Unknown || self.pattern_type == PatternType::Unknown
        {
            return Err(Error::InvalidRequest("Unknown patternFilter.".to_owned()));
        }
        if self.operation == AclOperation::Unknown || self.permission == AclPermissionType::Unknown
        {
            return Err(Error::InvalidRequest("Unknown entryFilter.".to_owned()));
        }
        Ok(())
    }

    /// Kafka's `AclBindingFilter.matches`.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.pattern_matches(binding) && self.entry_matches(binding)
    }

    /// `ResourcePatternFilter.matches`: Any matches every pattern type; Match, given a name,
    /// matches the LITERAL pattern of that name, the LITERAL wildcard, and every PREFIXED
    /// pattern the name starts with; any other pattern type (and Any) matches that type and
    /// that exact name.
    fn pattern_matches(&self, binding: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != binding.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != binding.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == binding.pattern_type {
            return *name == binding.resource_name;
        }
        // Match against a stored LITERAL or PREFIXED pattern.
        binding.pattern_matches(name)
    }

    /// `AccessControlEntryFilter.matches`: exact equality where the filter says something.
    fn entry_matches(&self, binding: &AclBinding) -> bool {
        self.principal
            .as_ref()
            .is_none_or(|p| *p == binding.principal)
            && self.host.as_ref().is_none_or(|h| *h == binding.host)
            && (self.operation == AclOperation::Any || self.operation == binding.operation)
            && (self.permission == AclPermissionType::Any || self.permission == binding.permission)
    }
}

/// Versions are unique in the process, not per set: two different sets never share one, so a
/// [`DecisionCache`] cannot mistake a set read back from JSON for the one it cached.
static NEXT_VERSION: AtomicU64 = AtomicU64::new(1);

fn next_version() -> u64 {
    NEXT_VERSION.fetch_add(1, Ordering::Relaxed)
}

/// The set of ACL bindings, without duplicates, in Kafka's sort order (resource type first).
/// One owner mutates it; authorizers read an `Arc` snapshot of it.
#[derive(Debug, Clone)]
pub struct Acls {
    bindings: BTreeSet<AclBinding>,
    version: u64,
}

/// How the set is stored in the filer.
#[derive(Serialize, Deserialize)]
struct StoredAcls {
    acls: Vec<AclBinding>,
}

/// Why stored ACLs could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum AclsJsonError {
    #[error("stored ACLs are not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("stored ACL {binding} is invalid: {reason}")]
    Invalid {
        binding: Box<AclBinding>,
        reason: Error,
    },
}

impl Default for Acls {
    fn default() -> Self {
        Self::new()
    }
}

impl Acls {
    /// No ACLs.
    pub fn new() -> Self {
        Acls {
            bindings: BTreeSet::new(),
            version: next_version(),
        }
    }

    /// Changes whenever the set changes; a clone keeps its original's version.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// Every binding, in Kafka's order.
    pub fn iter(&self) -> impl Iterator<Item = &AclBinding> {
        self.bindings.iter()
    }

    /// Adds a binding after [`AclBinding::validate`]. Adding one already present succeeds
    /// and changes nothing, as in Kafka: `Ok(true)` if it was added, `Ok(false)` if present.
    pub fn create(&mut self, binding: AclBinding) -> Result<bool, Error> {
        binding.validate()?;
        let added = self.bindings.insert(binding);
        if added {
            self.version = next_version();
        }
        Ok(added)
    }

    /// Whether the set holds exactly this binding.
    pub fn contains(&self, binding: &AclBinding) -> bool {
        self.bindings.contains(binding)
    }

    /// Removes exactly this binding; whether it was there.
    pub fn remove(&mut self, binding: &AclBinding) -> bool {
        let removed = self.bindings.remove(binding);
        if removed {
            self.version = next_version();
        }
        removed
    }

    /// Removes every binding the filter matches and returns them.
    pub fn delete(&mut self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        self.delete_many(std::slice::from_ref(filter))
            .pop()
            .unwrap_or_default()
    }

    /// DeleteAcls with several filters, as Kafka's `AclControlManager.deleteAcls` does it:
    /// each filter's matches are taken from the set as it was before the request, so a
    /// binding two filters match is reported under both, and the removals apply together.
    pub fn delete_many(&mut self, filters: &[AclBindingFilter]) -> Vec<Vec<AclBinding>> {
        let matched: Vec<Vec<AclBinding>> = filters.iter().map(|f| self.describe(f)).collect();
        let before = self.bindings.len();
        self.bindings
            .retain(|binding| !filters.iter().any(|f| f.matches(binding)));
        if self.bindings.len() != before {
            self.version = next_version();
        }
        matched
    }

    /// The bindings the filter matches, in Kafka's order.
    pub fn describe(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        self.bindings
            .iter()
            .filter(|binding| filter.matches(binding))
            .cloned()
            .collect()
    }

    /// The bindings for one resource type: a range of the set, since it sorts by type first.
    fn of_type(&self, resource_type: ResourceType) -> impl Iterator<Item = &AclBinding> {
        let start = AclBinding {
            resource_type,
            resource_name: String::new(),
            pattern_type: PatternType::Unknown,
            principal: String::new(),
            host: String::new(),
            operation: AclOperation::Unknown,
            permission: AclPermissionType::Unknown,
        };
        self.bindings
            .range(start..)
            .take_while(move |binding| binding.resource_type == resource_type)
    }

    /// The set as stored in the filer: `{"acls":[{"resource_type":"TOPIC",…}]}`.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(&StoredAcls {
            acls: self.bindings.iter().cloned().collect(),
        })
    }

    /// Reads back what [`Acls::to_json`] wrote. Every binding is validated again: a stored
    /// set that would not pass CreateAcls is refused whole rather than half-applied.
    pub fn from_json(bytes: &[u8]) -> Result<Self, AclsJsonError> {
        let stored: StoredAcls = serde_json::from_slice(bytes)?;
        let mut acls = Acls::new();
        for binding in stored.acls {
            if let Err(reason) = binding.validate() {
                return Err(AclsJsonError::Invalid {
                    binding: Box::new(binding),
                    reason,
                });
            }
            acls.bindings.insert(binding);
        }
        Ok(acls)
    }
}

/// Kafka's `StandardAuthorizer` over one snapshot of the ACLs. Built once per ACL change and
/// shared by the shards; its super users and default are start-up configuration.
#[derive(Debug, Clone)]
pub struct Authorizer {
    acls: Arc<Acls>,
    super_users: HashSet<String>,
    allow_everyone_if_no_acl_found: bool,
}

/// What one ACL says about an action, once its pattern matched the resource.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allow,
    Deny,
}

impl Authorizer {
    /// `super_users` in `User:alice` form (Kafka's `super.users`);
    /// `allow_everyone_if_no_acl_found` is Kafka's `allow.everyone.if.no.acl.found`
    /// (Kafka's default: false).
    pub fn new(
        acls: Arc<Acls>,
        super_users: Vec<String>,
        allow_everyone_if_no_acl_found: bool,
    ) -> Self {
        Authorizer {
            acls,
            super_users: super_users.into_iter().collect(),
            allow_everyone_if_no_acl_found,
        }
    }

    /// The version of the ACL snapshot this authorizer answers for.
    pub fn version(&self) -> u64 {
        self.acls.version()
    }

    pub fn acls(&self) -> &Arc<Acls> {
        &self.acls
    }

    /// Whether [`Authorizer::authorize`] allows everything: no ACL at all, and
    /// `allow_everyone_if_no_acl_found`.
    pub fn allows_all(&self) -> bool {
        self.acls.is_empty() && self.allow_everyone_if_no_acl_found
    }

    /// May `principal` (`User:alice`) connected from `host` do `operation` on the resource
    /// (`kafka-cluster` for Cluster)? `StandardAuthorizerData.authorize`:
    ///
    /// 1. A super user may do anything.
    /// 2. The ACLs that apply are those of this resource type whose pattern covers the name
    ///    (LITERAL equal, LITERAL `*`, PREFIXED prefix), whatever their principal.
    /// 3. Of those, an ACL whose principal is this one or `User:*` and whose host is this
    ///    one or `*` decides: any DENY wins over every ALLOW.
    /// 4. With no ALLOW either: if step 2 found no ACL at all, the answer is
    ///    `allow_everyone_if_no_acl_found`; otherwise deny.
    ///
    /// The cost is a scan of the ACLs of this resource type; [`DecisionCache`] spares
    /// repeated questions.
    pub fn authorize(
        &self,
        principal: &str,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> bool {
        if self.super_users.contains(principal) {
            return true;
        }
        let mut resource_has_acls = false;
        let mut allowed = false;
        for acl in self.acls.of_type(resource_type) {
            if !acl.pattern_matches(resource_name) {
                continue;
            }
            resource_has_acls = true;
            if !acl.principal_matches(principal) || !acl.host_matches(host) {
                continue;
            }
            match verdict(acl, operation) {
                Some(Verdict::Deny) => return false,
                Some(Verdict::Allow) => allowed = true,
                None => {}
            }
        }
        allowed || (!resource_has_acls && self.allow_everyone_if_no_acl_found)
    }

    /// May `principal` do `operation` on *some* resource of this type? Kafka's default
    /// `Authorizer.authorizeByResourceType` (KIP-679), which InitProducerId uses for an
    /// idempotent producer without IdempotentWrite on the cluster:
    ///
    /// 1. If `authorize` allows a made-up name (`hardcode`), yes: this covers super users,
    ///    `allow_everyone_if_no_acl_found`, and ALLOW ACLs on `*`.
    /// 2. Otherwise, over the ACLs of the type whose principal, host and operation (equal or
    ///    All; no implied operations here) match: a DENY on LITERAL `*` says no; an ALLOW on
    ///    LITERAL `*` says yes; else yes if some ALLOW'd LITERAL name is not itself DENY'd
    ///    LITERAL and no DENY'd PREFIXED pattern is a prefix of it, or some ALLOW'd PREFIXED
    ///    pattern has no DENY'd PREFIXED pattern as its prefix.
    ///
    /// Any and Unknown operations or resource types are refused (Kafka throws).
    pub fn authorize_by_resource_type(
        &self,
        principal: &str,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if matches!(operation, AclOperation::Any | AclOperation::Unknown)
            || matches!(resource_type, ResourceType::Any | ResourceType::Unknown)
        {
            return false;
        }
        if self.authorize(principal, host, operation, resource_type, "hardcode") {
            return true;
        }
        let mut deny_literal: Vec<&str> = Vec::new();
        let mut deny_prefixed: Vec<&str> = Vec::new();
        let mut allow: Vec<(PatternType, &str)> = Vec::new();
        let mut wildcard_allow = false;
        for acl in self.acls.of_type(resource_type) {
            if !acl.host_matches(host)
                || !acl.principal_matches(principal)
                || (acl.operation != operation && acl.operation != AclOperation::All)
            {
                continue;
            }
            let name = acl.resource_name.as_str();
            let wildcard = acl.pattern_type == PatternType::Literal && name == WILDCARD_RESOURCE;
            match (acl.permission, acl.pattern_type) {
                (AclPermissionType::Deny, _) if wildcard => return false,
                (AclPermissionType::Deny, PatternType::Literal) => deny_literal.push(name),
                (AclPermissionType::Deny, PatternType::Prefixed) => deny_prefixed.push(name),
                // Not decided yet: a wildcard DENY later in the scan still wins.
                (AclPermissionType::Allow, _) if wildcard => wildcard_allow = true,
                (AclPermissionType::Allow, pattern) => allow.push((pattern, name)),
                _ => {}
            }
        }
        if wildcard_allow {
            return true;
        }
        allow.iter().any(|&(pattern, name)| {
            let denied_literally = pattern == PatternType::Literal && deny_literal.contains(&name);
            let denied_by_prefix = deny_prefixed.iter().any(|denied| name.starts_with(denied));
            !denied_literally && !denied_by_prefix
        })
    }

    /// The `authorized_operations` bitfield (bit n set for the operation with code n) that
    /// Metadata, DescribeGroups, DescribeCluster, ConsumerGroupDescribe and
    /// DescribeTopicPartitions return: [`supported_operations`] of the type that
    /// [`Authorizer::authorize`] allows (`AuthHelper.authorizedOperations`).
    pub fn authorized_operations(
        &self,
        principal: &str,
        host: IpAddr,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> i32 {
        supported_operations(resource_type)
            .iter()
            .filter(|&&op| self.authorize(principal, host, op, resource_type, resource_name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }
}

/// Whether an ACL (whose resource, principal and host match) allows or denies `operation`,
/// or says nothing about it: `StandardAuthorizerData.findResult`.
///
/// An ACL for All covers every operation, ALLOW or DENY. Otherwise the operation must be the
/// ACL's, except that an ALLOW of Read, Write, Delete or Alter (or Describe) implies
/// Describe, and an ALLOW of AlterConfigs (or DescribeConfigs) implies DescribeConfigs.
/// Implication is for ALLOW only: a DENY of Read does not deny Describe, nor a DENY of
/// AlterConfigs DescribeConfigs; only a DENY of Describe (or All) denies Describe.
fn verdict(acl: &AclBinding, operation: AclOperation) -> Option<Verdict> {
    use AclOperation::*;
    let covers = acl.operation == All
        || match (acl.permission, operation) {
            (AclPermissionType::Allow, Describe) => {
                matches!(acl.operation, Describe | Read | Write | Delete | Alter)
            }
            (AclPermissionType::Allow, DescribeConfigs) => {
                matches!(acl.operation, DescribeConfigs | AlterConfigs)
            }
            _ => acl.operation == operation,
        };
    match (covers, acl.permission) {
        (true, AclPermissionType::Allow) => Some(Verdict::Allow),
        (true, AclPermissionType::Deny) => Some(Verdict::Deny),
        _ => None,
    }
}

/// One shard's memory of [`Authorizer::authorize`] answers, for one ACL version: the produce
/// and fetch paths ask once per topic per request, mostly the same questions.
///
/// Single-threaded (keep it in the shard's `Rc<RefCell<_>>`; the call holds no borrow across
/// an `.await`, having none). A hit allocates nothing: the map is looked up by a borrowed key
/// ([`Equivalent`]). When the authorizer's version differs from the cached one, the cache
/// empties first. When it holds `capacity` answers, it empties before the next insert:
/// simple, bounded, and a full cache is rebuilt from the ACLs at one scan per miss.
#[derive(Debug)]
pub struct DecisionCache {
    version: Option<u64>,
    capacity: usize,
    decisions: HashMap<DecisionKey, bool>,
}

#[derive(Debug, Hash, PartialEq, Eq)]
struct DecisionKey {
    principal: Box<str>,
    host: IpAddr,
    operation: AclOperation,
    resource_type: ResourceType,
    resource_name: Box<str>,
}

/// The borrowed form of [`DecisionKey`]. Its fields are in the same order with types that
/// hash alike (`&str` and `Box<str>` both hash as `str`), so the derived hashes agree.
#[derive(Hash)]
struct DecisionKeyRef<'a> {
    principal: &'a str,
    host: IpAddr,
    operation: AclOperation,
    resource_type: ResourceType,
    resource_name: &'a str,
}

impl Equivalent<DecisionKey> for DecisionKeyRef<'_> {
    fn equivalent(&self, key: &DecisionKey) -> bool {
        self.operation == key.operation
            && self.resource_type == key.resource_type
            && self.host == key.host
            && self.resource_name == &*key.resource_name
            && self.principal == &*key.principal
    }
}

impl DecisionCache {
    /// A cache of at most `capacity` answers (0: remember nothing).
    pub fn new(capacity: usize) -> Self {
        DecisionCache {
            version: None,
            capacity,
            decisions: HashMap::new(),
        }
    }

    /// [`Authorizer::authorize`], answered from the cache when it can be.
    pub fn authorize(
        &mut self,
        authorizer: &Authorizer,
        principal: &str,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> bool {
        if self.version != Some(authorizer.version()) {
            self.decisions.clear();
            self.version = Some(authorizer.version());
        }
        let key = DecisionKeyRef {
            principal,
            host,
            operation,
            resource_type,
            resource_name,
        };
        if let Some(&decision) = self.decisions.get(&key) {
            return decision;
        }
        let decision =
            authorizer.authorize(principal, host, operation, resource_type, resource_name);
        if self.capacity > 0 {
            if self.decisions.len() >= self.capacity {
                self.decisions.clear();
            }
            self.decisions.insert(
                DecisionKey {
                    principal: principal.into(),
                    host,
                    operation,
                    resource_type,
                    resource_name: resource_name.into(),
                },
                decision,
            );
        }
        decision
    }

    /// How many answers are cached.
    pub fn len(&self) -> usize {
        self.decisions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const ALICE: &str = "User:alice";
    const BOB: &str = "User:bob";

    fn client() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))
    }

    fn other_client() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))
    }

    fn binding(
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
        principal: &str,
        operation: AclOperation,
        permission: AclPermissionType,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            resource_name: name.to_owned(),
            pattern_type,
            principal: principal.to_owned(),
            host: WILDCARD_HOST.to_owned(),
            operation,
            permission,
        }
    }

    fn allow_topic(
        name: &str,
        pattern: PatternType,
        principal: &str,
        op: AclOperation,
    ) -> AclBinding {
        binding(
            ResourceType::Topic,
            name,
            pattern,
            principal,
            op,
            AclPermissionType::Allow,
        )
    }

    fn deny_topic(
        name: &str,
        pattern: PatternType,
        principal: &str,
        op: AclOperation,
    ) -> AclBinding {
        binding(
            ResourceType::Topic,
            name,
            pattern,
            principal,
            op,
            AclPermissionType::Deny,
        )
    }

    fn acls(bindings: impl IntoIterator<Item = AclBinding>) -> Acls {
        let mut acls = Acls::new();
        for b in bindings {
            acls.create(b).expect("valid binding");
        }
        acls
    }

    fn authorizer(bindings: impl IntoIterator<Item = AclBinding>) -> Authorizer {
        Authorizer::new(Arc::new(acls(bindings)), vec![], false)
    }

    fn can(a: &Authorizer, principal: &str, op: AclOperation, topic: &str) -> bool {
        a.authorize(principal, client(), op, ResourceType::Topic, topic)
    }

    use AclOperation::*;
    use PatternType::{Literal, Prefixed};

    #[test]
    fn codes_and_names_follow_kafka() {
        assert_eq!(
            ResourceType::from_code(5),
            Some(ResourceType::TransactionalId)
        );
        assert_eq!(ResourceType::User.code(), 7);
        assert_eq!(ResourceType::from_code(8), None);
        assert_eq!(PatternType::from_code(4), Some(Prefixed));
        assert_eq!(PatternType::Match.code(), 2);
        assert_eq!(AclOperation::from_code(12), Some(IdempotentWrite));
        assert_eq!(AclOperation::from_code(15), None);
        assert_eq!(DescribeTokens.code(), 14);
        assert_eq!(
            AclPermissionType::from_code(3),
            Some(AclPermissionType::Allow)
        );
        assert_eq!(AclPermissionType::from_code(-1), None);
        assert_eq!(ClusterAction.name(), "CLUSTER_ACTION");
        assert_eq!(
            ResourceType::DelegationToken.to_string(),
            "DELEGATION_TOKEN"
        );
        for code in 0..=14 {
            let op = AclOperation::from_code(code).expect("defined");
            assert_eq!(op.code(), code);
        }
    }

    #[test]
    fn literal_acl_matches_its_name_only() {
        let a = authorizer([allow_topic("orders", Literal, ALICE, Read)]);
        assert!(can(&a, ALICE, Read, "orders"));
        assert!(!can(&a, ALICE, Read, "orders2"));
        assert!(!can(&a, ALICE, Read, "order"));
        assert!(!can(&a, ALICE, Write, "orders"));
    }

    #[test]
    fn prefixed_acl_matches_names_starting_with_it() {
        let a = authorizer([allow_topic("orders.", Prefixed, ALICE, Read)]);
        assert!(can(&a, ALICE, Read, "orders.eu"));
        assert!(can(&a, ALICE, Read, "orders."));
        assert!(!can(&a, ALICE, Read, "orders"));
        assert!(!can(&a, ALICE, Read, "xorders.eu"));
    }

    #[test]
    fn literal_wildcard_matches_every_name_of_its_type() {
        let a = authorizer([allow_topic("*", Literal, ALICE, Read)]);
        assert!(can(&a, ALICE, Read, "anything"));
        assert!(!a.authorize(ALICE, client(), Read, ResourceType::Group, "anything"));
        // A PREFIXED "*" is no wildcard: only names starting with '*'.
        let a = authorizer([allow_topic("*", Prefixed, ALICE, Read)]);
        assert!(!can(&a, ALICE, Read, "anything"));
        assert!(can(&a, ALICE, Read, "*x"));
    }

    #[test]
    fn deny_overrides_allow_from_any_pattern() {
        let a = authorizer([
            allow_topic("*", Literal, ALICE, All),
            deny_topic("secret.", Prefixed, ALICE, Read),
        ]);
        assert!(can(&a, ALICE, Read, "public"));
        assert!(!can(&a, ALICE, Read, "secret.keys"));
        assert!(can(&a, ALICE, Write, "secret.keys"));
        // A wildcard DENY beats a literal ALLOW.
        let a = authorizer([
            allow_topic("orders", Literal, ALICE, Read),
            deny_topic("*", Literal, "User:*", Read),
        ]);
        assert!(!can(&a, ALICE, Read, "orders"));
        // DENY All denies every operation.
        let a = authorizer([
            allow_topic("orders", Literal, ALICE, Read),
            deny_topic("orders", Literal, ALICE, All),
        ]);
        assert!(!can(&a, ALICE, Read, "orders"));
        assert!(!can(&a, ALICE, Describe, "orders"));
    }

    #[test]
    fn allow_all_allows_every_operation() {
        let a = authorizer([allow_topic("orders", Literal, ALICE, All)]);
        for &op in supported_operations(ResourceType::Topic) {
            assert!(can(&a, ALICE, op, "orders"), "{op}");
        }
    }

    #[test]
    fn read_write_delete_alter_imply_describe() {
        for op in [Read, Write, Delete, Alter, Describe] {
            let a = authorizer([allow_topic("t", Literal, ALICE, op)]);
            assert!(can(&a, ALICE, Describe, "t"), "{op}");
        }
        for op in [Create, AlterConfigs, DescribeConfigs] {
            let a = authorizer([allow_topic("t", Literal, ALICE, op)]);
            assert!(!can(&a, ALICE, Describe, "t"), "{op}");
        }
        // Implication goes one way only.
        let a = authorizer([allow_topic("t", Literal, ALICE, Describe)]);
        assert!(!can(&a, ALICE, Read, "t"));
    }

    #[test]
    fn alter_configs_implies_describe_configs() {
        let a = authorizer([allow_topic("t", Literal, ALICE, AlterConfigs)]);
        assert!(can(&a, ALICE, DescribeConfigs, "t"));
        assert!(!can(&a, ALICE, Describe, "t"));
        let a = authorizer([allow_topic("t", Literal, ALICE, DescribeConfigs)]);
        assert!(!can(&a, ALICE, AlterConfigs, "t"));
    }

    #[test]
    fn deny_implies_nothing() {
        // A DENY of Read does not deny Describe, which an ALLOW of Write grants.
        let a = authorizer([
            allow_topic("t", Literal, ALICE, Write),
            deny_topic("t", Literal, ALICE, Read),
        ]);
        assert!(can(&a, ALICE, Describe, "t"));
        assert!(!can(&a, ALICE, Read, "t"));
        let a = authorizer([
            allow_topic("t", Literal, ALICE, AlterConfigs),
            deny_topic("t", Literal, ALICE, AlterConfigs),
        ]);
        assert!(can(&a, ALICE, DescribeConfigs, "t"));
        // A DENY of Describe does deny what an ALLOW of Read implied.
        let a = authorizer([
            allow_topic("t", Literal, ALICE, Read),
            deny_topic("t", Literal, ALICE, Describe),
        ]);
        assert!(!can(&a, ALICE, Describe, "t"));
        assert!(can(&a, ALICE, Read, "t"));
    }

    #[test]
    fn no_acl_found_follows_the_default_both_ways() {
        let set = Arc::new(acls([allow_topic("orders", Literal, BOB, Read)]));
        let closed = Authorizer::new(set.clone(), vec![], false);
        let open = Authorizer::new(set, vec![], true);
        // No ACL on "payments" at all: the default decides.
        assert!(!can(&closed, ALICE, Read, "payments"));
        assert!(can(&open, ALICE, Read, "payments"));
        // "orders" has an ACL (for bob): alice is denied whatever the default.
        assert!(!can(&open, ALICE, Read, "orders"));
        assert!(!can(&open, ALICE, Write, "orders"));
        // An ACL on another resource type does not count.
        assert!(open.authorize(ALICE, client(), Read, ResourceType::Group, "orders"));
        // An ACL whose pattern covers the name counts, though its principal is another.
        let open = Authorizer::new(
            Arc::new(acls([allow_topic("pay", Prefixed, BOB, Read)])),
            vec![],
            true,
        );
        assert!(!can(&open, ALICE, Read, "payments"));
        // A matching ACL that says nothing about the operation also counts.
        let open = Authorizer::new(
            Arc::new(acls([allow_topic("payments", Literal, ALICE, Write)])),
            vec![],
            true,
        );
        assert!(!can(&open, ALICE, Read, "payments"));
    }

    #[test]
    fn super_users_may_do_anything() {
        let a = Authorizer::new(
            Arc::new(acls([deny_topic("*", Literal, "User:*", All)])),
            vec!["User:admin".to_owned()],
            false,
        );
        assert!(can(&a, "User:admin", Write, "orders"));
        assert!(a.authorize(
            "User:admin",
            client(),
            Alter,
            ResourceType::Cluster,
            CLUSTER_NAME
        ));
        assert!(!can(&a, ALICE, Write, "orders"));
        // Only the exact principal string.
        assert!(!can(&a, "User:Admin", Write, "orders"));
        assert!(!can(&a, "Group:admin", Write, "orders"));
    }

    #[test]
    fn host_must_be_the_clients_or_the_wildcard() {
        let mut b = allow_topic("t", Literal, ALICE, Read);
        b.host = "10.0.0.1".to_owned();
        let a = authorizer([b]);
        assert!(a.authorize(ALICE, client(), Read, ResourceType::Topic, "t"));
        assert!(!a.authorize(ALICE, other_client(), Read, ResourceType::Topic, "t"));

        // IPv6 in either spelling; an IPv4-mapped client is its IPv4 address.
        let mut b = allow_topic("t", Literal, ALICE, Read);
        b.host = "0:0:0:0:0:0:0:1".to_owned();
        let a = authorizer([b]);
        assert!(a.authorize(
            ALICE,
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            Read,
            ResourceType::Topic,
            "t"
        ));
        let mut b = allow_topic("t", Literal, ALICE, Read);
        b.host = "10.0.0.1".to_owned();
        let a = authorizer([b]);
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert!(a.authorize(ALICE, mapped, Read, ResourceType::Topic, "t"));

        // A host-specific DENY only denies that host.
        let mut deny = deny_topic("t", Literal, ALICE, Read);
        deny.host = "10.0.0.2".to_owned();
        let a = authorizer([allow_topic("t", Literal, ALICE, Read), deny]);
        assert!(a.authorize(ALICE, client(), Read, ResourceType::Topic, "t"));
        assert!(!a.authorize(ALICE, other_client(), Read, ResourceType::Topic, "t"));
    }

    #[test]
    fn wildcard_principal_matches_every_user() {
        let a = authorizer([allow_topic("t", Literal, WILDCARD_PRINCIPAL, Read)]);
        assert!(can(&a, ALICE, Read, "t"));
        assert!(can(&a, BOB, Read, "t"));
        // Another principal's ACL does not apply.
        let a = authorizer([allow_topic("t", Literal, BOB, Read)]);
        assert!(!can(&a, ALICE, Read, "t"));
        // "Group:*" is not a wildcard.
        let a = authorizer([allow_topic("t", Literal, "Group:*", Read)]);
        assert!(!can(&a, ALICE, Read, "t"));
    }

    #[test]
    fn cluster_operations() {
        let a = authorizer([binding(
            ResourceType::Cluster,
            CLUSTER_NAME,
            Literal,
            ALICE,
            IdempotentWrite,
            AclPermissionType::Allow,
        )]);
        assert!(a.authorize(
            ALICE,
            client(),
            IdempotentWrite,
            ResourceType::Cluster,
            CLUSTER_NAME
        ));
        assert!(!a.authorize(ALICE, client(), Alter, ResourceType::Cluster, CLUSTER_NAME));
        assert!(!a.authorize(
            BOB,
            client(),
            IdempotentWrite,
            ResourceType::Cluster,
            CLUSTER_NAME
        ));
    }

    #[test]
    fn authorize_by_resource_type_follows_kip_679() {
        let by_type = |a: &Authorizer| {
            a.authorize_by_resource_type(ALICE, client(), Write, ResourceType::Topic)
        };
        assert!(!by_type(&authorizer([])));
        assert!(by_type(&Authorizer::new(
            Arc::new(Acls::new()),
            vec![],
            true
        )));
        assert!(by_type(&authorizer([allow_topic(
            "orders", Literal, ALICE, Write
        )])));
        assert!(by_type(&authorizer([allow_topic(
            "orders", Prefixed, ALICE, All
        )])));
        // Implied operations do not count here.
        assert!(!by_type(&authorizer([allow_topic(
            "orders", Literal, ALICE, Read
        )])));
        // Another principal's ALLOW does not count.
        assert!(!by_type(&authorizer([allow_topic(
            "orders", Literal, BOB, Write
        )])));
        // A literal ALLOW denied by the same literal, or by a covering prefix.
        assert!(!by_type(&authorizer([
            allow_topic("orders", Literal, ALICE, Write),
            deny_topic("orders", Literal, ALICE, Write),
        ])));
        assert!(!by_type(&authorizer([
            allow_topic("orders.eu", Prefixed, ALICE, Write),
            deny_topic("orders", Prefixed, ALICE, Write),
        ])));
        // A prefixed ALLOW is not dominated by a literal DENY.
        assert!(by_type(&authorizer([
            allow_topic("orders", Prefixed, ALICE, Write),
            deny_topic("orders", Literal, ALICE, Write),
        ])));
        // One undominated ALLOW suffices.
        assert!(by_type(&authorizer([
            allow_topic("orders", Literal, ALICE, Write),
            allow_topic("payments", Literal, ALICE, Write),
            deny_topic("orders", Literal, ALICE, Write),
        ])));
        // A wildcard DENY for the principal says no, even with a wildcard ALLOW.
        assert!(!by_type(&authorizer([
            allow_topic("*", Literal, ALICE, Write),
            deny_topic("*", Literal, "User:*", Write),
        ])));
        assert!(!by_type(&authorizer([
            allow_topic("*", Literal, "User:*", Write),
            deny_topic("*", Literal, ALICE, Write),
        ])));
        // Super users: yes.
        let a = Authorizer::new(Arc::new(Acls::new()), vec![ALICE.to_owned()], false);
        assert!(by_type(&a));
        assert!(!a.authorize_by_resource_type(ALICE, client(), Any, ResourceType::Topic));
    }

    #[test]
    fn authorized_operations_is_a_bitfield_of_supported_operations() {
        let a = authorizer([allow_topic("t", Literal, ALICE, Read)]);
        let bits = a.authorized_operations(ALICE, client(), ResourceType::Topic, "t");
        assert_eq!(bits, (1 << Read.code()) | (1 << Describe.code()));
        let a = authorizer([allow_topic("t", Literal, ALICE, All)]);
        let bits = a.authorized_operations(ALICE, client(), ResourceType::Topic, "t");
        let expected = supported_operations(ResourceType::Topic)
            .iter()
            .fold(0, |b, op| b | (1 << op.code()));
        assert_eq!(bits, expected);
        assert_eq!(bits & (1 << All.code()), 0);
    }

    fn filter() -> AclBindingFilter {
        AclBindingFilter::any()
    }

    fn sample() -> Acls {
        acls([
            allow_topic("orders", Literal, ALICE, Read),
            allow_topic("*", Literal, BOB, Read),
            allow_topic("ord", Prefixed, ALICE, Write),
            allow_topic("pay", Prefixed, ALICE, Write),
            deny_topic("orders", Literal, BOB, Write),
            binding(
                ResourceType::Group,
                "orders",
                Literal,
                ALICE,
                Read,
                AclPermissionType::Allow,
            ),
        ])
    }

    #[test]
    fn filter_any_matches_everything() {
        assert_eq!(sample().describe(&filter()).len(), 6);
    }

    #[test]
    fn filter_with_a_pattern_type_matches_the_exact_name() {
        let f = AclBindingFilter {
            resource_type: ResourceType::Topic,
            resource_name: Some("orders".to_owned()),
            pattern_type: Literal,
            ..filter()
        };
        assert_eq!(sample().describe(&f).len(), 2);
        // Any pattern type with a name: exact name, any pattern type, no wildcard.
        let f = AclBindingFilter {
            resource_name: Some("ord".to_owned()),
            ..filter()
        };
        let found = sample().describe(&f);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pattern_type, Prefixed);
    }

    #[test]
    fn filter_match_finds_every_acl_that_applies_to_a_name() {
        let f = AclBindingFilter {
            resource_type: ResourceType::Topic,
            resource_name: Some("orders".to_owned()),
            pattern_type: PatternType::Match,
            ..filter()
        };
        let found = sample().describe(&f);
        // "orders" ×2, "*", prefixed "ord"; not prefixed "pay", not the group.
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found.iter().all(|b| b.resource_type == ResourceType::Topic));
        assert!(!found.iter().any(|b| b.resource_name == "pay"));
        // Match without a name matches every pattern.
        let f = AclBindingFilter {
            pattern_type: PatternType::Match,
            ..filter()
        };
        assert_eq!(sample().describe(&f).len(), 6);
    }

    #[test]
    fn filter_entry_fields() {
        let f = AclBindingFilter {
            principal: Some(BOB.to_owned()),
            ..filter()
        };
        assert_eq!(sample().describe(&f).len(), 2);
        let f = AclBindingFilter {
            operation: Write,
            permission: AclPermissionType::Allow,
            ..filter()
        };
        assert_eq!(sample().describe(&f).len(), 2);
        let f = AclBindingFilter {
            host: Some("10.0.0.1".to_owned()),
            ..filter()
        };
        assert!(sample().describe(&f).is_empty());
        // An ACL for All is not matched by a filter for one operation.
        let set = acls([allow_topic("t", Literal, ALICE, All)]);
        let f = AclBindingFilter {
            operation: Read,
            ..filter()
        };
        assert!(set.describe(&f).is_empty());
    }

    #[test]
    fn filter_validation_refuses_unknown() {
        assert!(filter().validate().is_ok());
        for f in [
            AclBindingFilter {
                resource_type: ResourceType::Unknown,
                ..filter()
            },
            AclBindingFilter {
                pattern_type: PatternType::Unknown,
                ..filter()
            },
            AclBindingFilter {
                operation: Unknown,
                ..filter()
            },
            AclBindingFilter {
                permission: AclPermissionType::Unknown,
                ..filter()
            },
        ] {
            assert!(
                matches!(f.validate(), Err(Error::InvalidRequest(_))),
                "{f:?}"
            );
        }
    }

    #[test]
    fn delete_removes_and_returns_what_matches() {
        let mut set = sample();
        let version = set.version();
        let f = AclBindingFilter {
            principal: Some(BOB.to_owned()),
            ..filter()
        };
        let removed = set.delete(&f);
        assert_eq!(removed.len(), 2);
        assert_eq!(set.len(), 4);
        assert_ne!(set.version(), version);
        assert!(set.describe(&f).is_empty());
        // Nothing matched: nothing changes, version included.
        let version = set.version();
        assert!(set.delete(&f).is_empty());
        assert_eq!(set.version(), version);
    }

    #[test]
    fn delete_many_reports_from_the_state_before_the_request() {
        let mut set = sample();
        let by_alice = AclBindingFilter {
            principal: Some(ALICE.to_owned()),
            ..filter()
        };
        let groups = AclBindingFilter {
            resource_type: ResourceType::Group,
            ..filter()
        };
        let results = set.delete_many(&[by_alice, groups]);
        assert_eq!(results[0].len(), 4);
        assert_eq!(results[1].len(), 1); // the group ACL, also under alice's filter
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn create_is_idempotent_and_bumps_the_version_on_change() {
        let mut set = Acls::new();
        let v0 = set.version();
        let b = allow_topic("t", Literal, ALICE, Read);
        assert_eq!(set.create(b.clone()), Ok(true));
        let v1 = set.version();
        assert_ne!(v0, v1);
        assert_eq!(set.create(b), Ok(false));
        assert_eq!(set.version(), v1);
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn validation_refuses_what_kafka_refuses() {
        let good = allow_topic("t", Literal, ALICE, Read);
        assert!(good.validate().is_ok());
        let cluster = binding(
            ResourceType::Cluster,
            CLUSTER_NAME,
            Literal,
            ALICE,
            Alter,
            AclPermissionType::Allow,
        );
        assert!(cluster.validate().is_ok());
        let bad = [
            AclBinding {
                resource_type: ResourceType::Any,
                ..good.clone()
            },
            AclBinding {
                resource_type: ResourceType::Unknown,
                ..good.clone()
            },
            AclBinding {
                pattern_type: PatternType::Any,
                ..good.clone()
            },
            AclBinding {
                pattern_type: PatternType::Match,
                ..good.clone()
            },
            AclBinding {
                pattern_type: PatternType::Unknown,
                ..good.clone()
            },
            AclBinding {
                operation: Any,
                ..good.clone()
            },
            AclBinding {
                operation: Unknown,
                ..good.clone()
            },
            AclBinding {
                permission: AclPermissionType::Any,
                ..good.clone()
            },
            AclBinding {
                permission: AclPermissionType::Unknown,
                ..good.clone()
            },
            AclBinding {
                resource_name: String::new(),
                ..good.clone()
            },
            AclBinding {
                principal: "alice".to_owned(),
                ..good.clone()
            },
            AclBinding {
                principal: "User:".to_owned(),
                ..good.clone()
            },
            AclBinding {
                principal: ":alice".to_owned(),
                ..good.clone()
            },
            AclBinding {
                principal: String::new(),
                ..good.clone()
            },
            AclBinding {
                resource_name: "my-cluster".to_owned(),
                ..cluster.clone()
            },
        ];
        let mut set = Acls::new();
        for b in bad {
            assert!(
                matches!(b.validate(), Err(Error::InvalidRequest(_))),
                "{b:?}"
            );
            assert!(set.create(b).is_err());
        }
        assert!(set.is_empty());
        let message = AclBinding {
            resource_name: "x".to_owned(),
            ..cluster
        }
        .validate()
        .expect_err("invalid");
        assert_eq!(
            message.to_string(),
            "invalid request: The only valid name for the CLUSTER resource is kafka-cluster"
        );
    }

    #[test]
    fn json_round_trip() {
        let set = sample();
        let json = set.to_json().expect("serializes");
        let text = std::str::from_utf8(&json).expect("utf-8");
        assert!(text.contains(r#""resource_type":"TOPIC""#), "{text}");
        assert!(text.contains(r#""operation":"READ""#), "{text}");
        let back = Acls::from_json(&json).expect("reads back");
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            set.iter().collect::<Vec<_>>()
        );
        // A set read back is a different set to a cache.
        assert_ne!(back.version(), set.version());
    }

    #[test]
    fn json_refuses_invalid_bindings_and_garbage() {
        let text = r#"{"acls":[{"resource_type":"TOPIC","resource_name":"t","pattern_type":"MATCH",
            "principal":"User:alice","host":"*","operation":"READ","permission":"ALLOW"}]}"#;
        assert!(matches!(
            Acls::from_json(text.as_bytes()),
            Err(AclsJsonError::Invalid { .. })
        ));
        assert!(matches!(Acls::from_json(b"{"), Err(AclsJsonError::Json(_))));
        let unknown_op = text.replace("MATCH", "LITERAL").replace("READ", "FLY");
        assert!(matches!(
            Acls::from_json(unknown_op.as_bytes()),
            Err(AclsJsonError::Json(_))
        ));
        assert!(Acls::from_json(br#"{"acls":[]}"#)
            .expect("empty")
            .is_empty());
    }

    #[test]
    fn display_is_kafkas() {
        assert_eq!(
            allow_topic("t", Literal, ALICE, Read).to_string(),
            "(pattern=ResourcePattern(resourceType=TOPIC, name=t, patternType=LITERAL), \
             entry=(principal=User:alice, host=*, operation=READ, permissionType=ALLOW))"
        );
    }

    #[test]
    fn cache_answers_as_the_authorizer_does() {
        let a = authorizer([
            allow_topic("orders", Literal, ALICE, Read),
            deny_topic("orders", Literal, BOB, Read),
        ]);
        let mut cache = DecisionCache::new(16);
        for _ in 0..2 {
            assert!(cache.authorize(&a, ALICE, client(), Read, ResourceType::Topic, "orders"));
            assert!(!cache.authorize(&a, BOB, client(), Read, ResourceType::Topic, "orders"));
            assert!(!cache.authorize(&a, ALICE, client(), Write, ResourceType::Topic, "orders"));
            assert!(!cache.authorize(&a, ALICE, client(), Read, ResourceType::Group, "orders"));
        }
        assert_eq!(cache.len(), 4);
    }

    #[test]
    fn cache_empties_when_the_acls_change() {
        let mut set = acls([allow_topic("orders", Literal, ALICE, Read)]);
        let before = Authorizer::new(Arc::new(set.clone()), vec![], false);
        let mut cache = DecisionCache::new(16);
        assert!(cache.authorize(
            &before,
            ALICE,
            client(),
            Read,
            ResourceType::Topic,
            "orders"
        ));
        assert_eq!(cache.len(), 1);

        set.delete(&filter());
        let after = Authorizer::new(Arc::new(set.clone()), vec![], false);
        assert!(!cache.authorize(&after, ALICE, client(), Read, ResourceType::Topic, "orders"));
        assert_eq!(cache.len(), 1);

        // The same contents read back from JSON still count as a change.
        let reloaded = Acls::from_json(&set.to_json().expect("json")).expect("reads");
        let reloaded = Authorizer::new(Arc::new(reloaded), vec![], true);
        assert!(cache.authorize(
            &reloaded,
            ALICE,
            client(),
            Read,
            ResourceType::Topic,
            "orders"
        ));
    }

    #[test]
    fn cache_keeps_each_key_field_apart() {
        let mut b = allow_topic("orders", Literal, ALICE, Read);
        b.host = "10.0.0.1".to_owned();
        let a = authorizer([b]);
        let mut cache = DecisionCache::new(16);
        assert!(cache.authorize(&a, ALICE, client(), Read, ResourceType::Topic, "orders"));
        assert!(!cache.authorize(
            &a,
            ALICE,
            other_client(),
            Read,
            ResourceType::Topic,
            "orders"
        ));
        assert!(!cache.authorize(&a, BOB, client(), Read, ResourceType::Topic, "orders"));
        assert!(!cache.authorize(&a, ALICE, client(), Read, ResourceType::Topic, "orders2"));
        assert_eq!(cache.len(), 4);
    }

    #[test]
    fn cache_is_bounded() {
        let a = authorizer([allow_topic("*", Literal, ALICE, Read)]);
        let mut cache = DecisionCache::new(3);
        for i in 0..10 {
            let topic = format!("t{i}");
            assert!(cache.authorize(&a, ALICE, client(), Read, ResourceType::Topic, &topic));
            assert!(cache.len() <= 3);
        }
        let mut none = DecisionCache::new(0);
        assert!(none.authorize(&a, ALICE, client(), Read, ResourceType::Topic, "t"));
        assert!(none.is_empty());
    }
}
