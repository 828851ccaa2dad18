//! Security: who a client is and what it may do, as Kafka's model has it.
//!
//! - [`tls`] loads certificates for SSL and SASL_SSL listeners (rustls, driven on the
//!   shard's own executor) and maps a client certificate to a principal.
//! - [`scram`] and [`credentials`]: SASL PLAIN and SCRAM-SHA-256/512, with users kept only
//!   as salted SCRAM keys.
//! - [`acl`]: ACL bindings and the decision Kafka's StandardAuthorizer makes for them.
//! - [`stored`]: the users and ACLs kept in the backend, and changes made by other gateways.
//!
//! Authentication and authorization happen in one stage of dispatch
//! (`protocol::dispatch`), before any handler runs, so no handler can forget them.

pub mod access;
pub mod acl;
pub mod credentials;
pub mod scram;
pub mod session;
pub mod stored;
pub mod tls;

use crate::backend::SecurityDocument;
use crate::config::Config;
use acl::{Acls, Authorizer};
use credentials::Users;
use scram::SaslMechanism;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tls::PrincipalMapper;

/// What every shard's connections authenticate against, built once at start-up.
///
/// Shared across cores behind a lock, which is read once per authentication step, never per
/// request: the users change only when an administrator changes them.
pub struct Security {
    /// The SCRAM credentials of every user. Replaced whole on change, so an authentication
    /// holds a consistent snapshot.
    users: RwLock<Arc<Users>>,
    /// What SASL listeners offer, in order of preference.
    pub mechanisms: Vec<SaslMechanism>,
    /// How long an authentication is good for (KIP-368); `None`: the connection's life.
    pub reauthentication: Option<Duration>,
    /// How long a failed authentication waits before it is answered.
    pub failed_authentication_delay: Duration,
    /// How a client certificate's subject becomes a user name.
    pub principal_mapper: PrincipalMapper,
    /// The ACLs in force, replaced whole on change.
    acls: RwLock<Arc<Acls>>,
    /// The version of `acls`, read by every shard on every check (see `access`).
    acl_version: AtomicU64,
    /// `--super-users`, each "User:name".
    super_users: Vec<String>,
    /// `--allow-everyone-if-no-acl-found`, or its default.
    allow_everyone_if_no_acl_found: bool,
    /// What the backend's store holds of the users and the ACLs, and who waits for a write.
    stored: stored::StoredState,
}

impl Security {
    /// From the flags, with `--users-file` read (once: the salts it makes are random, and
    /// every shard must show a client the same one).
    pub fn from_config(config: &Config) -> Result<Arc<Self>, String> {
        let users = match &config.users_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("--users-file {}: {e}", path.display()))?;
                credentials::parse_users_file(&text)
                    .map_err(|e| format!("--users-file {}: {e}", path.display()))?
            }
            None => Users::new().map_err(|e| e.to_string())?,
        };
        let mechanisms = config
            .sasl_mechanisms
            .iter()
            .map(|name| {
                SaslMechanism::from_name(name)
                    .ok_or_else(|| format!("--sasl-mechanisms: {name:?} is not supported"))
            })
            .collect::<Result<_, _>>()?;
        let acls = Acls::new();
        Ok(Arc::new(Self {
            users: RwLock::new(Arc::new(users)),
            mechanisms,
            reauthentication: (config.connections_max_reauth_ms > 0)
                .then(|| Duration::from_millis(config.connections_max_reauth_ms)),
            failed_authentication_delay: Duration::from_millis(
                config.connection_failed_authentication_delay_ms,
            ),
            principal_mapper: PrincipalMapper::parse(&config.ssl_principal_mapping_rules)?,
            acl_version: AtomicU64::new(acls.version()),
            acls: RwLock::new(Arc::new(acls)),
            super_users: config
                .super_users
                .iter()
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
                .collect(),
            allow_everyone_if_no_acl_found: config.allow_everyone_if_no_acl_found(),
            stored: stored::StoredState::default(),
        }))
    }

    /// The users as they are now.
    pub fn users(&self) -> Arc<Users> {
        match self.users.read() {
            Ok(users) => users.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The ACLs in force now.
    pub fn acls(&self) -> Arc<Acls> {
        match self.acls.read() {
            Ok(acls) => acls.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the ACLs (after CreateAcls or DeleteAcls, or a change read from storage);
    /// every shard sees the new ones from its next check.
    pub fn set_acls(&self, acls: Acls) {
        let version = acls.version();
        match self.acls.write() {
            Ok(mut current) => *current = Arc::new(acls),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(acls),
        }
        self.acl_version.store(version, Ordering::Release);
    }

    /// The version of the ACLs in force: a shard's cached answers hold while it is unchanged.
    pub fn acl_version(&self) -> u64 {
        self.acl_version.load(Ordering::Acquire)
    }

    /// An authorizer for the ACLs in force now, with their version.
    pub fn authorizer(&self) -> (u64, Authorizer) {
        let acls = self.acls();
        let authorizer = Authorizer::new(
            acls.clone(),
            self.super_users.clone(),
            self.allow_everyone_if_no_acl_found,
        );
        (acls.version(), authorizer)
    }

    /// Replaces the users (after a change made through the Kafka API or read from storage).
    pub fn set_users(&self, users: Users) {
        match self.users.write() {
            Ok(mut current) => *current = Arc::new(users),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(users),
        }
    }

    /// Changes the ACLs atomically with respect to every other shard: `change` runs on a
    /// copy under the write lock, which then replaces the set if it changed. Returns what
    /// `change` returned and, if the set changed, the revision to [`Security::persist`].
    pub fn alter_acls<R>(&self, change: impl FnOnce(&mut Acls) -> R) -> (R, Option<u64>) {
        let mut current = match self.acls.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut acls = Acls::clone(&current);
        let result = change(&mut acls);
        if acls.version() == current.version() {
            return (result, None);
        }
        let changes = stored::acl_changes(&current, &acls);
        let revision = self.record(SecurityDocument::Acls, changes);
        self.acl_version.store(acls.version(), Ordering::Release);
        *current = Arc::new(acls);
        (result, Some(revision))
    }

    /// Changes the users atomically with respect to every other shard, as
    /// [`Security::alter_acls`] does the ACLs.
    pub fn alter_users<R>(&self, change: impl FnOnce(&mut Users) -> R) -> (R, Option<u64>) {
        let mut current = match self.users.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut users = Users::clone(&current);
        let result = change(&mut users);
        if users.version() == current.version() {
            return (result, None);
        }
        let changes = stored::credential_changes(&current, &users);
        let revision = self.record(SecurityDocument::Users, changes);
        *current = Arc::new(users);
        (result, Some(revision))
    }
}
