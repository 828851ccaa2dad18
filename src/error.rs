//! The gateway's one error type, whose fault each error is, and the one place it becomes a
//! Kafka error code ([`Error::code`], and [`Error::group_error`] for consumer-group requests).
//!
//! The fault decides what the client may do: a client's error is final (retrying the same
//! request gets the same answer); the storage's and the gateway's are retriable, since the
//! outcome may be unknown and another try may succeed. Nothing that failed maps to success.

use kafka_protocol::ResponseError;

/// Whose fault an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request: what it asks cannot be done; asking again will not help.
    Client,
    /// The storage (SeaweedFS): unreachable or failing; retrying later may work.
    Storage,
    /// This gateway: the work belongs to another shard (NOT_COORDINATOR), that shard could
    /// not be reached, or a bug here (an answer the codec cannot encode).
    Gateway,
}

/// Why an operation on a topic or partition failed, grouped by whose fault it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    // The client's fault: answering again will not help.
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("unknown topic id")]
    UnknownTopicId,
    #[error("topic already exists")]
    TopicAlreadyExists,
    #[error("invalid topic: {0}")]
    InvalidTopic(String),
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    #[error("invalid replication factor: {0}")]
    InvalidReplicationFactor(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("invalid group id: {0}")]
    InvalidGroupId(String),
    #[error("{0}")]
    GroupIdNotFound(String),
    /// A consumer group's own answer to a member, as its state machine (`group::state`,
    /// `group::consumer`) decides it in the protocol's terms: UNKNOWN_MEMBER_ID,
    /// ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID, …
    #[error("group: {0:?}")]
    Group(ResponseError),
    #[error("corrupt record batch: {0}")]
    CorruptMessage(String),
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    #[error("unsupported record format: {0}")]
    UnsupportedForMessageFormat(String),
    #[error("offset out of range")]
    OffsetOutOfRange,
    #[error("out of order sequence number: {0}")]
    OutOfOrderSequence(String),
    #[error("producer epoch is stale")]
    InvalidProducerEpoch,
    #[error("transactions are not supported")]
    TransactionsUnsupported,
    #[error("unknown fetch session")]
    FetchSessionIdNotFound,
    /// The client's leader epoch is older than the partition's: it refreshes its metadata.
    #[error("the client's leader epoch is older than the partition's")]
    FencedLeaderEpoch,
    /// The client's leader epoch is newer than any the partition has had.
    #[error("the client's leader epoch is newer than the partition's")]
    UnknownLeaderEpoch,
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("record batch too large: {0}")]
    MessageTooLarge(String),
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    #[error("leader election not needed")]
    ElectionNotNeeded,
    #[error("no partition reassignment is in progress")]
    NoReassignmentInProgress,
    #[error("topic deletion is not possible with this backend")]
    TopicDeletionDisabled,
    #[error("not allowed: {0}")]
    PolicyViolation(String),
    #[error("unsupported SASL mechanism: {0}")]
    UnsupportedSaslMechanism(String),
    #[error("unacceptable credential: {0}")]
    UnacceptableCredential(String),
    #[error("duplicate resource: {0}")]
    DuplicateResource(String),
    #[error("resource not found: {0}")]
    ResourceNotFound(String),
    // The client's too: its principal may not do this (the ACLs in force say so).
    #[error("not authorized for the topic")]
    TopicAuthorizationFailed,
    #[error("not authorized for the group")]
    GroupAuthorizationFailed,
    #[error("not authorized for the cluster")]
    ClusterAuthorizationFailed,
    #[error("not authorized for the transactional id")]
    TransactionalIdAuthorizationFailed,

    // The backend's fault: retrying later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    // The backend's: stored and acknowledged by it, then lost (SMQ restarted before
    // flushing them); the producer sends them again.
    #[error("lost by the storage: {0}")]
    Lost(String),
    // The backend's: stored, but not yet durable within the request's timeout (acks=all).
    #[error("not durable in time: {0}")]
    NotDurableInTime(String),
    // Ours: the partition's owner could not be reached; the client refreshes and retries.
    #[error("owning shard unreachable")]
    ShardUnreachable,
    // Ours: another shard coordinates the group; the client asks FindCoordinator again.
    #[error("not the group's coordinator")]
    NotCoordinator,
}

impl Error {
    /// Whose fault the error is.
    pub fn fault(&self) -> Fault {
        match self {
            Error::Unavailable(_) | Error::NotDurableInTime(_) | Error::Lost(_) => Fault::Storage,
            Error::ShardUnreachable | Error::NotCoordinator => Fault::Gateway,
            // Retriable ones (REBALANCE_IN_PROGRESS) are the group's normal course, not a
            // failure of the storage or of this gateway.
            Error::Group(_) => Fault::Client,
            _ => Fault::Client,
        }
    }

    /// The error a consumer-group request (OffsetCommit, OffsetFetch, DescribeGroups, …)
    /// answers: the storage's and the gateway's failures are COORDINATOR_NOT_AVAILABLE, which
    /// sends the client to FindCoordinator and back to retry, as Kafka answers while its
    /// offsets topic is unavailable; a client's error keeps its own code.
    pub fn group_error(&self) -> ResponseError {
        if let Error::NotCoordinator = self {
            return ResponseError::NotCoordinator;
        }
        match self.fault() {
            Fault::Storage | Fault::Gateway => ResponseError::CoordinatorNotAvailable,
            Fault::Client => ResponseError::try_from_code(self.code())
                .unwrap_or(ResponseError::UnknownServerError),
        }
    }

    /// The Kafka error code a client is given for this error.
    pub fn code(&self) -> i16 {
        let error = match self {
            Error::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            Error::UnknownTopicId => ResponseError::UnknownTopicId,
            Error::TopicAlreadyExists => ResponseError::TopicAlreadyExists,
            Error::InvalidTopic(_) => ResponseError::InvalidTopicException,
            Error::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            Error::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            Error::InvalidRequest(_) => ResponseError::InvalidRequest,
            Error::InvalidGroupId(_) => ResponseError::InvalidGroupId,
            Error::GroupIdNotFound(_) => ResponseError::GroupIdNotFound,
            Error::Group(error) => *error,
            Error::CorruptMessage(_) => ResponseError::CorruptMessage,
            Error::InvalidRecord(_) => ResponseError::InvalidRecord,
            Error::UnsupportedForMessageFormat(_) => ResponseError::UnsupportedForMessageFormat,
            Error::OffsetOutOfRange => ResponseError::OffsetOutOfRange,
            Error::OutOfOrderSequence(_) => ResponseError::OutOfOrderSequenceNumber,
            Error::InvalidProducerEpoch => ResponseError::InvalidProducerEpoch,
            Error::TransactionsUnsupported => ResponseError::TransactionalIdAuthorizationFailed,
            Error::FetchSessionIdNotFound => ResponseError::FetchSessionIdNotFound,
            Error::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch,
            Error::UnknownLeaderEpoch => ResponseError::UnknownLeaderEpoch,
            Error::InvalidConfig(_) => ResponseError::InvalidConfig,
            Error::MessageTooLarge(_) => ResponseError::MessageTooLarge,
            Error::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            Error::ElectionNotNeeded => ResponseError::ElectionNotNeeded,
            Error::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
            Error::TopicDeletionDisabled => ResponseError::TopicDeletionDisabled,
            Error::PolicyViolation(_) => ResponseError::PolicyViolation,
            Error::UnsupportedSaslMechanism(_) => ResponseError::UnsupportedSaslMechanism,
            Error::UnacceptableCredential(_) => ResponseError::UnacceptableCredential,
            Error::DuplicateResource(_) => ResponseError::DuplicateResource,
            Error::ResourceNotFound(_) => ResponseError::ResourceNotFound,
            Error::TopicAuthorizationFailed => ResponseError::TopicAuthorizationFailed,
            Error::GroupAuthorizationFailed => ResponseError::GroupAuthorizationFailed,
            Error::ClusterAuthorizationFailed => ResponseError::ClusterAuthorizationFailed,
            Error::TransactionalIdAuthorizationFailed => {
                ResponseError::TransactionalIdAuthorizationFailed
            }
            Error::Unavailable(_) | Error::Lost(_) => ResponseError::KafkaStorageError,
            Error::NotDurableInTime(_) => ResponseError::RequestTimedOut,
            Error::ShardUnreachable => ResponseError::NotLeaderOrFollower,
            Error::NotCoordinator => ResponseError::NotCoordinator,
        };
        error.code()
    }

    /// The message for responses that carry one; `None` where the code says it all.
    pub fn message(&self) -> Option<String> {
        match self {
            Error::InvalidTopic(m)
            | Error::InvalidPartitions(m)
            | Error::InvalidReplicationFactor(m)
            | Error::InvalidRequest(m)
            | Error::InvalidGroupId(m)
            | Error::GroupIdNotFound(m)
            | Error::CorruptMessage(m)
            | Error::InvalidRecord(m)
            | Error::UnsupportedForMessageFormat(m)
            | Error::OutOfOrderSequence(m)
            | Error::InvalidConfig(m)
            | Error::MessageTooLarge(m)
            | Error::InvalidReplicaAssignment(m)
            | Error::PolicyViolation(m)
            | Error::UnsupportedSaslMechanism(m)
            | Error::UnacceptableCredential(m)
            | Error::DuplicateResource(m)
            | Error::ResourceNotFound(m)
            | Error::Unavailable(m) => Some(m.clone()),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_kafka_spec() {
        assert_eq!(Error::CorruptMessage(String::new()).code(), 2);
        assert_eq!(Error::UnknownTopicOrPartition.code(), 3);
        assert_eq!(Error::OutOfOrderSequence(String::new()).code(), 45);
        assert_eq!(Error::TopicAlreadyExists.code(), 36);
        // Failures whose outcome the client cannot know must be retriable, in group
        // requests too.
        for error in [Error::Unavailable(String::new()), Error::ShardUnreachable] {
            assert_ne!(error.fault(), Fault::Client);
            let code = ResponseError::try_from_code(error.code());
            assert!(code.is_some_and(|e| e.is_retriable()), "{error:?}");
            assert!(error.group_error().is_retriable(), "{error:?}");
        }
        assert_eq!(
            Error::NotCoordinator.group_error(),
            ResponseError::NotCoordinator
        );
        assert_eq!(
            Error::Group(ResponseError::IllegalGeneration).group_error(),
            ResponseError::IllegalGeneration
        );
        assert_eq!(Error::UnknownTopicOrPartition.fault(), Fault::Client);
        assert_eq!(Error::TopicAuthorizationFailed.code(), 29);
        assert_eq!(Error::GroupAuthorizationFailed.code(), 30);
        assert_eq!(Error::ClusterAuthorizationFailed.code(), 31);
        assert_eq!(Error::TransactionalIdAuthorizationFailed.code(), 53);
        assert_eq!(
            Error::UnknownTopicOrPartition.group_error(),
            ResponseError::UnknownTopicOrPartition
        );
    }
}
