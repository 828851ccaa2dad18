//! What a shard consults to authorize a request: the ACLs in force, with a cache of the
//! answers it has given for them.
//!
//! The ACLs are shared by every shard ([`Security`]), but read here only when they change:
//! each check compares one atomic version number (a cache line every core keeps a copy of,
//! written only when an administrator changes an ACL), and answers from this shard's own
//! [`DecisionCache`]. No lock is taken on the produce path.

use super::acl::{AclOperation, Authorizer, DecisionCache, ResourceType};
use super::Security;
use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;

/// Answers remembered per shard before the cache starts over.
const DECISIONS_PER_SHARD: usize = 16_384;

/// One shard's view of the ACLs.
pub struct Access {
    security: Arc<Security>,
    current: RefCell<Current>,
}

struct Current {
    /// `Security::acl_version` when `authorizer` was taken.
    version: u64,
    authorizer: Authorizer,
    cache: DecisionCache,
    /// No ACL at all and `allow_everyone_if_no_acl_found`: every check would say yes.
    allows_all: bool,
}

impl Access {
    pub fn new(security: Arc<Security>) -> Self {
        let (version, authorizer) = security.authorizer();
        Self {
            security,
            current: RefCell::new(Current {
                version,
                allows_all: authorizer.allows_all(),
                authorizer,
                cache: DecisionCache::new(DECISIONS_PER_SHARD),
            }),
        }
    }

    /// Whether every check would be allowed now (no ACLs, and
    /// `allow_everyone_if_no_acl_found`: an unauthenticated gateway's default), so a
    /// request needs none: the authorization stage's fast path.
    pub fn allows_all(&self) -> bool {
        self.refreshed().allows_all
    }

    /// May `principal` ("User:alice") connected from `host` do `operation` on the resource?
    pub fn authorize(
        &self,
        principal: &str,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> bool {
        let mut current = self.refreshed();
        let Current {
            authorizer, cache, ..
        } = &mut *current;
        cache.authorize(
            authorizer,
            principal,
            host,
            operation,
            resource_type,
            resource_name,
        )
    }

    /// Whether `principal` may do `operation` on some resource of `resource_type` (Kafka's
    /// authorizeByResourceType: InitProducerId without a transactional id).
    pub fn authorize_by_resource_type(
        &self,
        principal: &str,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        let current = self.refreshed();
        (current.authorizer).authorize_by_resource_type(principal, host, operation, resource_type)
    }

    /// The `authorized_operations` bit field of Metadata and the Describe APIs.
    pub fn authorized_operations(
        &self,
        principal: &str,
        host: IpAddr,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> i32 {
        let current = self.refreshed();
        (current.authorizer).authorized_operations(principal, host, resource_type, resource_name)
    }

    /// The state, with the authorizer of the ACLs in force now.
    fn refreshed(&self) -> std::cell::RefMut<'_, Current> {
        let mut current = self.current.borrow_mut();
        if current.version != self.security.acl_version() {
            let (version, authorizer) = self.security.authorizer();
            current.version = version;
            current.allows_all = authorizer.allows_all();
            current.authorizer = authorizer;
        }
        current
    }
}
