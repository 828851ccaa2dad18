//! Security: who a client is and what it may do, as Kafka's model has it.
//!
//! - [`tls`] loads certificates for SSL and SASL_SSL listeners (rustls, driven on the
//!   shard's own executor) and maps a client certificate to a principal.
//! - [`scram`] and [`credentials`]: SASL PLAIN and SCRAM-SHA-256/512, with users kept only
//!   as salted SCRAM keys.
//! - [`acl`]: ACL bindings and the decision Kafka's StandardAuthorizer makes for them.
//!
//! Authentication and authorization happen in one stage of dispatch
//! (`protocol::dispatch`), before any handler runs, so no handler can forget them.

pub mod acl;
pub mod credentials;
pub mod scram;
pub mod tls;
