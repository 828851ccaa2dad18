//! The error codes an answer carries, for the metrics (`tidegate_api_errors_total`) and for
//! acks=0 produces, which close the connection on one. Kafka puts them at several levels:
//! the request's, each topic's, each partition's, each group's. The APIs a client sends
//! most (produce, fetch, offsets, metadata, groups, topic admin) are read at every level;
//! others count by their top-level code, and those without one count none.

use kafka_protocol::messages::ResponseKind;

/// Every error code in `response` that is not 0 (none allocates nothing).
pub fn of(response: &ResponseKind) -> Vec<i16> {
    let mut codes = Vec::new();
    let mut add = |code: i16| {
        if code != 0 {
            codes.push(code);
        }
    };
    match response {
        ResponseKind::Produce(r) => r
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .for_each(|p| add(p.error_code)),
        ResponseKind::Fetch(r) => {
            add(r.error_code);
            r.responses
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| add(p.error_code));
        }
        ResponseKind::ListOffsets(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| add(p.error_code)),
        ResponseKind::Metadata(r) => r.topics.iter().for_each(|t| add(t.error_code)),
        ResponseKind::OffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| add(p.error_code)),
        ResponseKind::OffsetFetch(r) => {
            add(r.error_code);
            r.groups.iter().for_each(|g| add(g.error_code));
        }
        ResponseKind::FindCoordinator(r) => {
            add(r.error_code);
            r.coordinators.iter().for_each(|c| add(c.error_code));
        }
        ResponseKind::CreateTopics(r) => r.topics.iter().for_each(|t| add(t.error_code)),
        ResponseKind::DeleteTopics(r) => r.responses.iter().for_each(|t| add(t.error_code)),
        ResponseKind::CreatePartitions(r) => r.results.iter().for_each(|t| add(t.error_code)),
        ResponseKind::DescribeGroups(r) => r.groups.iter().for_each(|g| add(g.error_code)),
        ResponseKind::JoinGroup(r) => add(r.error_code),
        ResponseKind::SyncGroup(r) => add(r.error_code),
        ResponseKind::Heartbeat(r) => add(r.error_code),
        ResponseKind::LeaveGroup(r) => add(r.error_code),
        ResponseKind::ListGroups(r) => add(r.error_code),
        ResponseKind::InitProducerId(r) => add(r.error_code),
        ResponseKind::ApiVersions(r) => add(r.error_code),
        ResponseKind::SaslHandshake(r) => add(r.error_code),
        ResponseKind::SaslAuthenticate(r) => add(r.error_code),
        ResponseKind::DescribeCluster(r) => add(r.error_code),
        ResponseKind::ConsumerGroupHeartbeat(r) => add(r.error_code),
        _ => {}
    }
    codes
}
