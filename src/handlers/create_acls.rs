//! CreateAcls: add ACL bindings, each answered on its own (Kafka's `AclApis.handleCreateAcls`
//! and `AclControlManager.createAcls`). A binding that is not valid gets INVALID_REQUEST;
//! one already present succeeds and changes nothing. The valid ones are added together,
//! atomically with respect to every other shard, then stored before the answer.
//! (Alter on Cluster is checked by dispatch before this runs.)

use super::{error_message, Reply, RequestContext};
use crate::backend::SecurityDocument;
use crate::error::Result;
use crate::security::acl::{
    AclBinding, AclOperation, AclPermissionType, Acls, PatternType, ResourceType,
};
use crate::shard::Shard;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use std::rc::Rc;

/// v0 (LITERAL only, no pattern type) was removed in Kafka 4.0 and is not in the codec.
pub const VERSIONS: (i16, i16) = (1, 3);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: CreateAclsRequest,
) -> Reply<CreateAclsResponse> {
    let bindings: Vec<AclBinding> = request.creations.iter().map(binding).collect();
    let (mut outcomes, revision) = shard.security.alter_acls(|acls| create(acls, bindings));
    if let Some(revision) = revision {
        let stored = shard
            .security
            .persist(&shard.security_store, SecurityDocument::Acls, revision)
            .await;
        if let Err(error) = stored {
            for outcome in outcomes.iter_mut().filter(|o| o.is_ok()) {
                *outcome = Err(error.clone());
            }
        }
    }
    for (outcome, creation) in outcomes.iter().zip(&request.creations) {
        if outcome.is_ok() {
            tracing::info!(acl = %binding(creation), "ACL created");
        }
    }
    let results = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(()) => AclCreationResult::default(),
            Err(error) => AclCreationResult::default()
                .with_error_code(error.code())
                .with_error_message(error_message(&error)),
        })
        .collect();
    Some(CreateAclsResponse::default().with_results(results))
}

/// The binding a creation asks for; a code Kafka does not define reads as UNKNOWN, which
/// validation refuses.
fn binding(creation: &AclCreation) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::from_code(creation.resource_type)
            .unwrap_or(ResourceType::Unknown),
        resource_name: creation.resource_name.to_string(),
        pattern_type: PatternType::from_code(creation.resource_pattern_type)
            .unwrap_or(PatternType::Unknown),
        principal: creation.principal.to_string(),
        host: creation.host.to_string(),
        operation: AclOperation::from_code(creation.operation).unwrap_or(AclOperation::Unknown),
        permission: AclPermissionType::from_code(creation.permission_type)
            .unwrap_or(AclPermissionType::Unknown),
    }
}

/// Adds every valid binding; one outcome per binding, in request order.
fn create(acls: &mut Acls, bindings: Vec<AclBinding>) -> Vec<Result<()>> {
    bindings
        .into_iter()
        .map(|binding| acls.create(binding).map(|_| ()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::ResponseError;

    fn creation(resource_type: i8, name: &str, pattern: i8, principal: &str) -> AclCreation {
        AclCreation::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.into()))
            .with_resource_pattern_type(pattern)
            .with_principal(StrBytes::from_string(principal.into()))
            .with_host(StrBytes::from_static_str("*"))
            .with_operation(AclOperation::Read.code())
            .with_permission_type(AclPermissionType::Allow.code())
    }

    fn codes(outcomes: &[Result<()>]) -> Vec<i16> {
        outcomes
            .iter()
            .map(|o| o.as_ref().map_or_else(|e| e.code(), |()| 0))
            .collect()
    }

    #[test]
    fn each_binding_is_answered_on_its_own() {
        let topic = ResourceType::Topic.code();
        let literal = PatternType::Literal.code();
        let invalid = ResponseError::InvalidRequest.code();
        let creations = [
            creation(topic, "orders", literal, "User:alice"),
            // Filters' pattern types and resource types are not bindings.
            creation(topic, "orders", PatternType::Match.code(), "User:alice"),
            creation(ResourceType::Any.code(), "orders", literal, "User:alice"),
            creation(topic, "", literal, "User:alice"),
            creation(ResourceType::Cluster.code(), "other", literal, "User:alice"),
            creation(topic, "orders", literal, "alice"),
            creation(99, "orders", literal, "User:alice"),
            creation(topic, "orders-", PatternType::Prefixed.code(), "User:bob"),
        ];
        let mut acls = Acls::new();
        let outcomes = create(&mut acls, creations.iter().map(binding).collect());
        assert_eq!(
            codes(&outcomes),
            [0, invalid, invalid, invalid, invalid, invalid, invalid, 0]
        );
        assert_eq!(acls.len(), 2);
        // Creating what exists succeeds and changes nothing.
        let version = acls.version();
        let again = create(&mut acls, vec![binding(&creations[0])]);
        assert_eq!(codes(&again), [0]);
        assert_eq!(acls.version(), version);
    }
}
