//! InitProducerId: unique producer ids for idempotent producers. Transactions are not
//! supported, so a transactional id is refused.

use super::{Reply, RequestContext};
use crate::error::Error;
use crate::shard::Shard;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 5);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: InitProducerIdRequest,
) -> Reply<InitProducerIdResponse> {
    let response = InitProducerIdResponse::default();
    if request
        .transactional_id
        .as_ref()
        .is_some_and(|id| !id.is_empty())
    {
        return Some(
            response
                .with_error_code(Error::TransactionsUnsupported.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        );
    }
    // KIP-360: a producer that lost track of its sequences asks to bump its epoch, which
    // resets its sequence numbers; at the last epoch it gets a fresh id instead.
    let (producer_id, epoch) = match (request.producer_id.0, request.producer_epoch) {
        (id, epoch) if id >= 0 && (0..i16::MAX - 1).contains(&epoch) => (id, epoch + 1),
        _ => (shard.partitions.producer_ids.next(), 0),
    };
    Some(
        response
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch),
    )
}
