//! DeleteAcls: remove the ACL bindings each filter matches, answered per filter with the
//! bindings it removed (Kafka's `AclControlManager.deleteAcls`: each filter matches against
//! the set as it was before the request, so a binding two filters match is listed under
//! both). A filter with an UNKNOWN in it gets INVALID_REQUEST and removes nothing. The
//! removals apply together, atomically with respect to every other shard, and are stored
//! before the answer. (Alter on Cluster is checked by dispatch before this runs.)

use super::describe_acls::filter;
use super::{error_message, Reply, RequestContext};
use crate::backend::SecurityDocument;
use crate::error::Result;
use crate::security::acl::{AclBinding, AclBindingFilter, Acls};
use crate::shard::Shard;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

/// v0 (no pattern type) was removed in Kafka 4.0 and is not in the codec.
pub const VERSIONS: (i16, i16) = (1, 3);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: DeleteAclsRequest,
) -> Reply<DeleteAclsResponse> {
    let filters: Vec<Result<AclBindingFilter>> = request.filters.iter().map(decode).collect();
    let (mut outcomes, revision) = shard.security.alter_acls(|acls| delete(acls, &filters));
    if let Some(revision) = revision {
        let stored = shard
            .security
            .persist(&shard.security_store, SecurityDocument::Acls, revision)
            .await;
        if let Err(error) = stored {
            for outcome in outcomes.iter_mut() {
                if outcome.as_ref().is_ok_and(|removed| !removed.is_empty()) {
                    *outcome = Err(error.clone());
                }
            }
        }
    }
    let results = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(removed) => {
                for binding in &removed {
                    tracing::info!(acl = %binding, "ACL deleted");
                }
                DeleteAclsFilterResult::default()
                    .with_matching_acls(removed.into_iter().map(matching).collect())
            }
            Err(error) => DeleteAclsFilterResult::default()
                .with_error_code(error.code())
                .with_error_message(error_message(&error)),
        })
        .collect();
    Some(DeleteAclsResponse::default().with_filter_results(results))
}

fn decode(f: &DeleteAclsFilter) -> Result<AclBindingFilter> {
    filter(
        f.resource_type_filter,
        f.resource_name_filter.as_deref(),
        f.pattern_type_filter,
        f.principal_filter.as_deref(),
        f.host_filter.as_deref(),
        f.operation,
        f.permission_type,
    )
}

/// Removes what the valid filters match; per filter, what it matched or why it is invalid.
fn delete(acls: &mut Acls, filters: &[Result<AclBindingFilter>]) -> Vec<Result<Vec<AclBinding>>> {
    let valid: Vec<AclBindingFilter> = filters.iter().flatten().cloned().collect();
    let mut removed = acls.delete_many(&valid).into_iter();
    filters
        .iter()
        .map(|filter| match filter {
            Ok(_) => Ok(removed.next().unwrap_or_default()),
            Err(error) => Err(error.clone()),
        })
        .collect()
}

fn matching(binding: AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(binding.resource_type.code())
        .with_resource_name(StrBytes::from_string(binding.resource_name))
        .with_pattern_type(binding.pattern_type.code())
        .with_principal(StrBytes::from_string(binding.principal))
        .with_host(StrBytes::from_string(binding.host))
        .with_operation(binding.operation.code())
        .with_permission_type(binding.permission.code())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::acl::{AclOperation, AclPermissionType, PatternType, ResourceType};
    use kafka_protocol::ResponseError;

    fn acl(name: &str, principal: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: PatternType::Literal,
            principal: principal.into(),
            host: "*".into(),
            operation: AclOperation::Write,
            permission: AclPermissionType::Allow,
        }
    }

    fn wire(name: Option<&str>, principal: Option<&str>, pattern_type: i8) -> DeleteAclsFilter {
        DeleteAclsFilter::default()
            .with_resource_type_filter(ResourceType::Any.code())
            .with_resource_name_filter(name.map(|n| StrBytes::from_string(n.into())))
            .with_pattern_type_filter(pattern_type)
            .with_principal_filter(principal.map(|p| StrBytes::from_string(p.into())))
            .with_host_filter(None)
            .with_operation(AclOperation::Any.code())
            .with_permission_type(AclPermissionType::Any.code())
    }

    #[test]
    fn each_filter_gets_its_matches_or_its_error() {
        let mut acls = Acls::new();
        for binding in [
            acl("orders", "User:alice"),
            acl("orders", "User:bob"),
            acl("pay", "User:alice"),
        ] {
            acls.create(binding).expect("valid");
        }
        let any = PatternType::Any.code();
        let filters: Vec<_> = [
            wire(None, Some("User:alice"), any),
            wire(Some("orders"), None, PatternType::Unknown.code()),
            wire(Some("orders"), None, any),
            wire(Some("nothing"), None, any),
        ]
        .iter()
        .map(decode)
        .collect();
        let outcomes = delete(&mut acls, &filters);
        let summary: Vec<_> = outcomes
            .iter()
            .map(|o| match o {
                Ok(removed) => Ok(removed.len()),
                Err(e) => Err(e.code()),
            })
            .collect();
        // Both alice bindings; the invalid filter; both "orders" bindings (alice's counted
        // again, as Kafka does); nothing.
        assert_eq!(
            summary,
            [
                Ok(2),
                Err(ResponseError::InvalidRequest.code()),
                Ok(2),
                Ok(0)
            ]
        );
        assert!(acls.is_empty());
    }
}
