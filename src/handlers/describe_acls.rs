//! DescribeAcls: the ACL bindings one filter matches, grouped by resource pattern as
//! Kafka's `DescribeAclsResponse.aclsResources` groups them. A filter with an UNKNOWN in
//! it fails the whole request with INVALID_REQUEST. (Describe on Cluster is checked by
//! dispatch before this runs.)

use super::{error_message, Reply, RequestContext};
use crate::error::Result;
use crate::security::acl::{
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, PatternType, ResourceType,
};
use crate::shard::Shard;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::rc::Rc;

/// v0 (no pattern type) was removed in Kafka 4.0 and is not in the codec.
pub const VERSIONS: (i16, i16) = (1, 3);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: DescribeAclsRequest,
) -> Reply<DescribeAclsResponse> {
    let filter = filter(
        request.resource_type_filter,
        request.resource_name_filter.as_deref(),
        request.pattern_type_filter,
        request.principal_filter.as_deref(),
        request.host_filter.as_deref(),
        request.operation,
        request.permission_type,
    );
    Some(match filter {
        Ok(filter) => DescribeAclsResponse::default()
            .with_resources(resources(shard.security.acls().describe(&filter))),
        Err(error) => DescribeAclsResponse::default()
            .with_error_code(error.code())
            .with_error_message(error_message(&error)),
    })
}

/// A filter from its wire fields (DescribeAcls and DeleteAcls share them), validated:
/// INVALID_REQUEST for an UNKNOWN, or for a code Kafka does not define.
pub(super) fn filter(
    resource_type: i8,
    resource_name: Option<&str>,
    pattern_type: i8,
    principal: Option<&str>,
    host: Option<&str>,
    operation: i8,
    permission: i8,
) -> Result<AclBindingFilter> {
    let filter = AclBindingFilter {
        resource_type: ResourceType::from_code(resource_type).unwrap_or(ResourceType::Unknown),
        resource_name: resource_name.map(str::to_owned),
        pattern_type: PatternType::from_code(pattern_type).unwrap_or(PatternType::Unknown),
        principal: principal.map(str::to_owned),
        host: host.map(str::to_owned),
        operation: AclOperation::from_code(operation).unwrap_or(AclOperation::Unknown),
        permission: AclPermissionType::from_code(permission).unwrap_or(AclPermissionType::Unknown),
    };
    filter.validate()?;
    Ok(filter)
}

/// Bindings grouped by (resource type, name, pattern type), in Kafka's binding order.
fn resources(bindings: Vec<AclBinding>) -> Vec<DescribeAclsResource> {
    let mut grouped: BTreeMap<(ResourceType, String, PatternType), Vec<AclDescription>> =
        BTreeMap::new();
    for binding in bindings {
        grouped
            .entry((
                binding.resource_type,
                binding.resource_name,
                binding.pattern_type,
            ))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(StrBytes::from_string(binding.principal))
                    .with_host(StrBytes::from_string(binding.host))
                    .with_operation(binding.operation.code())
                    .with_permission_type(binding.permission.code()),
            );
    }
    grouped
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type.code())
                .with_resource_name(StrBytes::from_string(name))
                .with_pattern_type(pattern_type.code())
                .with_acls(acls)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::acl::Acls;
    use kafka_protocol::ResponseError;

    fn acl(name: &str, pattern_type: PatternType, principal: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type,
            principal: principal.into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermissionType::Allow,
        }
    }

    #[test]
    fn unknown_in_a_filter_is_an_invalid_request() {
        let any = |resource_type, pattern_type, operation, permission| {
            filter(
                resource_type,
                None,
                pattern_type,
                None,
                None,
                operation,
                permission,
            )
            .map_err(|e| e.code())
        };
        let invalid = Err(ResponseError::InvalidRequest.code());
        assert!(any(1, 1, 1, 1).is_ok());
        assert_eq!(any(0, 1, 1, 1).map(|_| ()), invalid);
        assert_eq!(any(1, 0, 1, 1).map(|_| ()), invalid);
        assert_eq!(any(1, 1, 0, 1).map(|_| ()), invalid);
        assert_eq!(any(1, 1, 1, 0).map(|_| ()), invalid);
        assert_eq!(any(42, 1, 1, 1).map(|_| ()), invalid);
    }

    #[test]
    fn matches_are_grouped_by_resource_pattern() {
        let mut acls = Acls::new();
        for binding in [
            acl("orders", PatternType::Literal, "User:alice"),
            acl("orders", PatternType::Literal, "User:bob"),
            acl("ord", PatternType::Prefixed, "User:carol"),
            acl("payments", PatternType::Literal, "User:alice"),
        ] {
            acls.create(binding).expect("valid");
        }
        // MATCH on "orders": the literal pattern and the prefix that covers it.
        let matching = filter(
            2,
            Some("orders"),
            PatternType::Match.code(),
            None,
            None,
            1,
            1,
        )
        .expect("valid");
        let resources = resources(acls.describe(&matching));
        let summary: Vec<_> = resources
            .iter()
            .map(|r| (r.resource_name.to_string(), r.pattern_type, r.acls.len()))
            .collect();
        assert_eq!(
            summary,
            [
                ("ord".to_string(), PatternType::Prefixed.code(), 1),
                ("orders".to_string(), PatternType::Literal.code(), 2),
            ]
        );
    }
}
