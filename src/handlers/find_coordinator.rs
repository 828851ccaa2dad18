//! FindCoordinator: the broker (shard) that coordinates a group is the one that owns
//! hash(group id). Transactions are not supported, so there is no transaction coordinator.

use super::str_bytes;
use super::{Reply, RequestContext};
use crate::error::Error;
use crate::shard::Shard;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::ResponseError;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 6);

const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

pub async fn handle(
    shard: Rc<Shard>,
    context: RequestContext,
    request: FindCoordinatorRequest,
) -> Reply<FindCoordinatorResponse> {
    let response = FindCoordinatorResponse::default();
    // v4+ asks for several keys at once; earlier versions for one.
    if context.version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| coordinator(&shard, &context, request.key_type, key))
            .collect();
        return Some(response.with_coordinators(coordinators));
    }
    let found = coordinator(&shard, &context, request.key_type, &request.key);
    Some(
        response
            .with_error_code(found.error_code)
            .with_error_message(found.error_message)
            .with_node_id(found.node_id)
            .with_host(found.host)
            .with_port(found.port),
    )
}

fn coordinator(
    shard: &Shard,
    context: &RequestContext,
    key_type: i8,
    key: &kafka_protocol::protocol::StrBytes,
) -> Coordinator {
    let answer = Coordinator::default().with_key(key.clone());
    let error = match key_type {
        GROUP_KEY if key.is_empty() => ResponseError::InvalidRequest,
        GROUP_KEY => {
            let owner = shard.group_owner(key);
            // On the listener the client came in on.
            return match shard.cluster.brokers(context.listener()).get(owner) {
                Some(broker) => answer
                    .with_node_id(BrokerId(broker.node_id))
                    .with_host(str_bytes(broker.host.clone()))
                    .with_port(i32::from(broker.port)),
                None => answer
                    .with_node_id(BrokerId(-1))
                    .with_error_code(ResponseError::CoordinatorNotAvailable.code()),
            };
        }
        TRANSACTION_KEY => {
            return answer
                .with_node_id(BrokerId(-1))
                .with_error_code(Error::TransactionsUnsupported.code())
                .with_error_message(Some(str_bytes("transactions are not supported")));
        }
        _ => ResponseError::InvalidRequest,
    };
    answer
        .with_node_id(BrokerId(-1))
        .with_error_code(error.code())
}
