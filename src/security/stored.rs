//! Keeping the users and the ACLs in the backend's [`SecurityStore`] (SeaweedFS's filer on
//! SMQ; nowhere on the memory backend), merging them with other gateways' changes, and
//! noticing when another gateway changed them.
//!
//! What a process holds of each document (users, ACLs) is the *base*, the document as it
//! last read or wrote it, with the *pending* changes it made since applied on top. A change
//! is made in memory under [`Security`]'s write lock; the difference it made (bindings
//! created or deleted, one user's credential for one mechanism set or removed) is kept as
//! a `Change` with a revision, local to the process, and the request that made it waits
//! in [`Security::persist`] until that revision, or a later one, is stored.
//!
//! Storing is a compare-and-swap: the writer applies the pending changes to the base and
//! writes the result only if the store still holds that base ([`SecurityStore::write_if`]).
//! If another gateway wrote in between, the write is refused; the writer reads what is
//! stored now, applies its pending changes to *that*, and tries again. So no acknowledged
//! change of any gateway is overwritten, and all converge on the union of the changes; for
//! the same binding or the same user's credential, the change stored last wins, as in
//! Kafka. Per document one task of the process writes at a time, and each round stores
//! every change pending when it began; requests that change the document meanwhile wait
//! for the next round. A failed write (or one still refused after `WRITE_ATTEMPTS`)
//! answers every request waiting on it with a retriable error (KAFKA_STORAGE_ERROR); the
//! change stays in force in memory and pending, which is logged, and every refresh tries
//! the write again until it succeeds, and meanwhile takes no other gateway's state.
//!
//! Every `--security-refresh-ms` one shard reads both documents; a document other than
//! the base becomes the base, with the pending changes applied on top. A read begun before
//! the base last changed is dropped, so a slow read never steps back over a newer write.
//!
//! The files keep the format older versions wrote (they are read as they are, and the
//! first write tags them), so an upgraded cluster keeps its users and ACLs. Older gateways
//! write without a compare-and-swap: while they still run beside newer ones, one of their
//! changes can still be lost as before.

use super::acl::{AclBinding, Acls};
use super::credentials::{ScramCredential, ScramMechanism, Users};
use super::Security;
use crate::backend::{SecurityDocument, SecurityStore, StoredDocument};
use crate::error::{Error, Result};
use bytes::Bytes;
use futures::channel::oneshot;
use serde::Deserialize;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockWriteGuard};

/// Compare-and-swap writes a round tries, each after reading what another gateway stored,
/// before its requests get a retriable error. Every refused write means another gateway's
/// succeeded, so only a burst of changes on many gateways at once comes near it.
const WRITE_ATTEMPTS: usize = 10;

/// One change made by this process, kept until it is stored, so that it can be applied
/// again on top of whatever another gateway stored meanwhile.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Change {
    /// The binding was created (`true`) or deleted (`false`).
    Acl(AclBinding, bool),
    /// The user's credential for the mechanism was set, or removed (`None`).
    Credential(String, ScramMechanism, Option<ScramCredential>),
}

/// What changed from `before` to `after`, binding by binding.
pub(super) fn acl_changes(before: &Acls, after: &Acls) -> Vec<Change> {
    let created = after.iter().filter(|b| !before.contains(b));
    let deleted = before.iter().filter(|b| !after.contains(b));
    created
        .map(|b| Change::Acl(b.clone(), true))
        .chain(deleted.map(|b| Change::Acl(b.clone(), false)))
        .collect()
}

/// What changed from `before` to `after`, credential by credential.
pub(super) fn credential_changes(before: &Users, after: &Users) -> Vec<Change> {
    let set = after
        .credentials()
        .filter(|&(name, mechanism, credential)| before.get(name, mechanism) != Some(credential))
        .map(|(name, mechanism, credential)| {
            Change::Credential(name.to_string(), mechanism, Some(credential.clone()))
        });
    let removed = before
        .credentials()
        .filter(|&(name, mechanism, _)| after.get(name, mechanism).is_none())
        .map(|(name, mechanism, _)| Change::Credential(name.to_string(), mechanism, None));
    set.chain(removed).collect()
}

/// A document decoded, to apply changes to.
enum Merged {
    Users(Users),
    /// The ACLs with the revision of the file they came from (a count of its writes).
    Acls(u64, Acls),
}

impl Merged {
    /// The stored `content` (`None`: nothing stored, an empty document).
    fn decode(document: SecurityDocument, content: Option<&Bytes>) -> Result<Self, String> {
        Ok(match (document, content) {
            (SecurityDocument::Users, Some(content)) => {
                Merged::Users(Users::from_json(content).map_err(|e| e.to_string())?)
            }
            (SecurityDocument::Users, None) => {
                Merged::Users(Users::new().map_err(|e| e.to_string())?)
            }
            (SecurityDocument::Acls, Some(content)) => {
                let (revision, acls) = decode_acls(content)?;
                Merged::Acls(revision, acls)
            }
            (SecurityDocument::Acls, None) => Merged::Acls(0, Acls::new()),
        })
    }

    fn apply<'a>(&mut self, changes: impl IntoIterator<Item = &'a Change>) {
        for change in changes {
            match (&mut *self, change) {
                (Merged::Acls(_, acls), Change::Acl(binding, true)) => {
                    // Validated when the change was made here; a binding stays valid.
                    if let Err(error) = acls.create(binding.clone()) {
                        tracing::warn!(%binding, %error, "pending ACL not valid, dropped");
                    }
                }
                (Merged::Acls(_, acls), Change::Acl(binding, false)) => {
                    acls.remove(binding);
                }
                (Merged::Users(users), Change::Credential(name, mechanism, Some(credential))) => {
                    users.upsert(name, *mechanism, credential.clone())
                }
                (Merged::Users(users), Change::Credential(name, mechanism, None)) => {
                    users.remove(name, *mechanism);
                }
                // Changes are kept per document: an ACL change is never a user's.
                (Merged::Users(_), Change::Acl(..))
                | (Merged::Acls(..), Change::Credential(..)) => {}
            }
        }
    }

    /// The document as it is stored, counted as one more write.
    fn encode_next(&mut self) -> Result<Bytes> {
        match self {
            Merged::Users(users) => users
                .to_json()
                .map(Bytes::from)
                .map_err(|e| Error::Unavailable(format!("cannot encode the users: {e}"))),
            Merged::Acls(revision, acls) => {
                *revision += 1;
                encode_acls(*revision, acls)
            }
        }
    }
}

/// What this process knows of one stored document, and who waits for it to be written.
#[derive(Default)]
pub(super) struct DocumentState {
    /// The revision given to the last change made here.
    revision: u64,
    /// The latest revision stored.
    stored: u64,
    /// The document as this process last read or wrote it; `None` while it knows of none.
    base: Option<StoredDocument>,
    /// Counts the changes of `base`, so that a read begun before one is not taken after.
    base_generation: u64,
    /// Changes made here and not yet stored, in order, with their revisions.
    pending: Vec<(u64, Change)>,
    /// Whether a task of this process is writing the document.
    writing: bool,
    /// Requests waiting for their revision to be stored.
    waiters: Vec<(u64, oneshot::Sender<Result<()>>)>,
}

/// Per document, what [`DocumentState`] says.
#[derive(Default)]
pub(super) struct StoredState {
    users: Mutex<DocumentState>,
    acls: Mutex<DocumentState>,
}

/// The ACLs' file: the set as `Acls::to_json` writes it, plus its revision.
fn encode_acls(revision: u64, acls: &Acls) -> Result<Bytes> {
    let json = |e: serde_json::Error| Error::Unavailable(format!("cannot encode the ACLs: {e}"));
    let mut value: serde_json::Value =
        serde_json::from_slice(&acls.to_json().map_err(json)?).map_err(json)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("revision".into(), revision.into());
    }
    Ok(Bytes::from(serde_json::to_vec(&value).map_err(json)?))
}

fn decode_acls(content: &[u8]) -> Result<(u64, Acls), String> {
    #[derive(Deserialize)]
    struct Revision {
        #[serde(default)]
        revision: u64,
    }
    let revision: Revision = serde_json::from_slice(content).map_err(|e| e.to_string())?;
    let acls = Acls::from_json(content).map_err(|e| e.to_string())?;
    Ok((revision.revision, acls))
}

/// Ends a writer's round however it ends: dropped half-way (its request was cancelled),
/// it frees the document for the next writer, and its waiters get an error (their senders
/// are dropped) rather than waiting for ever. Their changes stay pending.
struct WriterGuard<'a> {
    state: &'a Mutex<DocumentState>,
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        let mut state = lock(self.state);
        if state.writing {
            state.writing = false;
            state.waiters.clear();
        }
    }
}

fn lock(state: &Mutex<DocumentState>) -> MutexGuard<'_, DocumentState> {
    match state.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn write_lock<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    match lock.write() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Security {
    fn document_state(&self, document: SecurityDocument) -> &Mutex<DocumentState> {
        match document {
            SecurityDocument::Users => &self.stored.users,
            SecurityDocument::Acls => &self.stored.acls,
        }
    }

    /// Keeps `changes` until stored and gives them their revision. Called by `alter_*`
    /// under the document's write lock, so the pending changes are always the difference
    /// between the base and the document in force.
    pub(super) fn record(&self, document: SecurityDocument, changes: Vec<Change>) -> u64 {
        let mut state = lock(self.document_state(document));
        state.revision += 1;
        let revision = state.revision;
        state
            .pending
            .extend(changes.into_iter().map(|change| (revision, change)));
        revision
    }

    /// Puts `merged`, with the changes still pending applied on top, in force, if `update`
    /// (given the state, under its lock) says so. The document's write lock is taken
    /// before the state's, as `alter_*` and [`Security::record`] take them.
    fn install(
        &self,
        document: SecurityDocument,
        merged: Merged,
        update: impl FnOnce(&mut DocumentState) -> bool,
    ) -> bool {
        let state = self.document_state(document);
        match merged {
            Merged::Users(users) => {
                let mut current = write_lock(&self.users);
                let mut state = lock(state);
                if !update(&mut state) {
                    return false;
                }
                let mut merged = Merged::Users(users);
                merged.apply(state.pending.iter().map(|(_, change)| change));
                if let Merged::Users(users) = merged {
                    *current = Arc::new(users);
                }
            }
            Merged::Acls(revision, acls) => {
                let mut current = write_lock(&self.acls);
                let mut state = lock(state);
                if !update(&mut state) {
                    return false;
                }
                let mut merged = Merged::Acls(revision, acls);
                merged.apply(state.pending.iter().map(|(_, change)| change));
                if let Merged::Acls(_, acls) = merged {
                    self.acl_version.store(acls.version(), Ordering::Release);
                    *current = Arc::new(acls);
                }
            }
        }
        true
    }

    /// Returns once `revision` of the document (or a later one) is stored; a retriable
    /// error if the write failed. At once on a backend that keeps nothing.
    pub async fn persist(
        &self,
        store: &SecurityStore,
        document: SecurityDocument,
        revision: u64,
    ) -> Result<()> {
        let state = self.document_state(document);
        if !store.keeps_security() {
            let mut state = lock(state);
            state.pending.retain(|(pending, _)| *pending > revision);
            state.stored = state.stored.max(revision);
            return Ok(());
        }
        let (receiver, writer) = {
            let mut state = lock(state);
            if state.stored >= revision {
                return Ok(());
            }
            let (sender, receiver) = oneshot::channel();
            state.waiters.push((revision, sender));
            let writer = !state.writing;
            state.writing = true;
            (receiver, writer)
        };
        if writer {
            self.write_rounds(store, document).await;
        }
        receiver.await.unwrap_or_else(|_| {
            Err(Error::Unavailable(
                "the write of the security state was abandoned".into(),
            ))
        })
    }

    /// The writer: stores the changes pending now, answers the requests that round
    /// covers, and goes round again while others wait for a later revision.
    async fn write_rounds(&self, store: &SecurityStore, document: SecurityDocument) {
        let state = self.document_state(document);
        let _guard = WriterGuard { state };
        loop {
            let (revision, changes, base) = {
                let state = lock(state);
                (state.revision, state.pending.clone(), state.base.clone())
            };
            let outcome = match self.store_changes(store, document, base, &changes).await {
                Ok((stored, merged)) => {
                    self.install(document, merged, |state| {
                        state.base = Some(stored);
                        state.base_generation += 1;
                        state.pending.retain(|(pending, _)| *pending > revision);
                        state.stored = state.stored.max(revision);
                        true
                    });
                    Ok(())
                }
                Err(error) => {
                    tracing::warn!(
                        ?document,
                        revision,
                        %error,
                        "security change in force here but not stored; retried at every refresh"
                    );
                    Err(error)
                }
            };
            let mut state = lock(state);
            let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.waiters)
                .into_iter()
                .partition(|(wanted, _)| *wanted <= revision);
            state.waiters = waiting;
            for (_, sender) in done {
                let _ = sender.send(outcome.clone());
            }
            if state.waiters.is_empty() {
                state.writing = false;
                return;
            }
        }
    }

    /// Applies `changes` to `base` and writes the result if the store still holds `base`;
    /// else applies them to what it holds now and tries again. Returns what it stored,
    /// decoded.
    async fn store_changes(
        &self,
        store: &SecurityStore,
        document: SecurityDocument,
        base: Option<StoredDocument>,
        changes: &[(u64, Change)],
    ) -> Result<(StoredDocument, Merged)> {
        // A file an older tidegate wrote has no tag of its own (its ETag is empty), so the
        // compare-and-swap cannot tell it from a later write of an older gateway (during a
        // rolling upgrade): merging onto a fresh read of it leaves them the smallest window.
        let base = match base {
            Some(base) if base.etag.is_empty() => store.read(document).await?.or(Some(base)),
            base => base,
        };
        let (mut content, mut expected) = match base {
            Some(base) => (Some(base.content), Some(base.etag)),
            None => (None, None),
        };
        for _ in 0..WRITE_ATTEMPTS {
            let mut merged = Merged::decode(document, content.as_ref()).map_err(|e| {
                Error::Unavailable(format!("the stored {document:?} is unreadable: {e}"))
            })?;
            merged.apply(changes.iter().map(|(_, change)| change));
            let next = merged.encode_next()?;
            if let Some(stored) = store.write_if(document, next, expected.as_deref()).await? {
                return Ok((stored, merged));
            }
            // Another gateway wrote since `base` was read: merge onto what it stored.
            tracing::debug!(?document, "stored by another gateway meanwhile; merging");
            match store.read(document).await? {
                Some(now) => (content, expected) = (Some(now.content), Some(now.etag)),
                // Deleted by hand: what this process knew is written back, with its changes.
                None => expected = None,
            }
        }
        Err(Error::Unavailable(format!(
            "the stored {document:?} kept changing under {WRITE_ATTEMPTS} writes"
        )))
    }

    /// One refresh (every `--security-refresh-ms`, on one shard): changes of this process
    /// whose write failed are written again; otherwise what another gateway stored is taken.
    pub async fn refresh(&self, store: &SecurityStore) {
        for document in [SecurityDocument::Users, SecurityDocument::Acls] {
            let (generation, writing, unstored) = {
                let state = lock(self.document_state(document));
                let unstored = (!state.pending.is_empty()).then_some(state.revision);
                (state.base_generation, state.writing, unstored)
            };
            if writing {
                continue;
            }
            if let Some(revision) = unstored {
                match self.persist(store, document, revision).await {
                    Ok(()) => tracing::info!(?document, revision, "security change stored"),
                    Err(error) => {
                        tracing::warn!(?document, %error, "security change still not stored")
                    }
                }
                continue;
            }
            match store.read(document).await {
                Ok(Some(stored)) => match self.take_stored(document, stored, generation) {
                    Ok(true) => tracing::info!(
                        ?document,
                        "security state changed by another gateway, taken"
                    ),
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(?document, %error, "stored security state unreadable; the state in force stays")
                    }
                },
                // Deleted by hand: ours is written back at its next change.
                Ok(None) => {}
                Err(error) => tracing::debug!(?document, %error, "security state not read"),
            }
        }
    }

    /// Makes `stored` the base, unless it is the base already or the base changed since
    /// `generation` (the read is older than a write of this process).
    fn take_stored(
        &self,
        document: SecurityDocument,
        stored: StoredDocument,
        generation: u64,
    ) -> Result<bool, String> {
        // Content as well as tag: files an older tidegate wrote all have the same (empty) tag.
        let read = stored.clone();
        let unchanged = move |state: &DocumentState| {
            state.base_generation != generation || state.base.as_ref() == Some(&read)
        };
        if unchanged(&lock(self.document_state(document))) {
            return Ok(false);
        }
        let merged = Merged::decode(document, Some(&stored.content))?;
        Ok(self.install(document, merged, |state| {
            if unchanged(state) {
                return false;
            }
            state.base = Some(stored);
            state.base_generation += 1;
            true
        }))
    }

    /// At start-up, before any shard serves: the stored users and ACLs replace those in
    /// memory. A `--users-file` user the store does not have is added as a change of this
    /// process, merged with what other gateways store meanwhile (so a fresh cluster gets
    /// its first administrator); a stored user wins over the file's user of the same name.
    /// A cluster without stored users gets an empty document at once, so that every
    /// gateway shows an unknown name the same fake salt. Anything unreadable stops the
    /// start: a gateway must not serve with other users or ACLs than its peers.
    pub async fn restore(&self, store: &SecurityStore) -> Result<(), String> {
        let from_file = self.users();
        for document in [SecurityDocument::Users, SecurityDocument::Acls] {
            let mut stored = store
                .read(document)
                .await
                .map_err(|e| format!("cannot read the stored {document:?}: {e}"))?;
            let mut merged = Merged::decode(document, stored.as_ref().map(|s| &s.content))?;
            if stored.is_none() && document == SecurityDocument::Users {
                let (written, users) = self
                    .store_changes(store, document, None, &[])
                    .await
                    .map_err(|e| format!("cannot store the users: {e}"))?;
                (stored, merged) = (Some(written), users);
            }
            match &merged {
                Merged::Users(users) => {
                    tracing::info!(users = users.len(), "users read from the store")
                }
                Merged::Acls(revision, acls) => {
                    tracing::info!(acls = acls.len(), revision, "ACLs read from the store")
                }
            }
            self.install(document, merged, |state| {
                state.base = stored;
                state.base_generation += 1;
                true
            });
        }
        let stored_users = self.users();
        let added: Vec<String> = from_file
            .describe(None)
            .into_iter()
            .map(|user| user.name)
            .filter(|name| {
                ScramMechanism::ALL
                    .iter()
                    .all(|&mechanism| stored_users.get(name, mechanism).is_none())
            })
            .collect();
        let (_, revision) = self.alter_users(|users| {
            for name in &added {
                for mechanism in ScramMechanism::ALL {
                    if let Some(credential) = from_file.get(name, mechanism) {
                        users.upsert(name, mechanism, credential.clone());
                    }
                }
            }
        });
        if let Some(revision) = revision {
            self.persist(store, SecurityDocument::Users, revision)
                .await
                .map_err(|e| format!("cannot store the users: {e}"))?;
        }
        tracing::info!(added_from_users_file = ?added, "users of --users-file");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::security::acl::{AclOperation, AclPermissionType, PatternType, ResourceType};
    use clap::Parser;

    fn binding(topic: &str, permission: AclPermissionType) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: topic.into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission,
        }
    }

    fn acls_of(bindings: &[AclBinding]) -> Acls {
        let mut acls = Acls::new();
        for binding in bindings {
            acls.create(binding.clone()).expect("valid");
        }
        acls
    }

    fn security() -> Arc<Security> {
        Security::from_config(&Config::parse_from(["tidegate"])).expect("security")
    }

    fn credential(iterations: u32) -> ScramCredential {
        let mechanism = ScramMechanism::Sha256;
        let salted = vec![7; mechanism.digest_len()];
        ScramCredential::from_salted_password(mechanism, b"salt", iterations, &salted)
            .expect("credential")
    }

    /// As another gateway would have stored `acls`.
    fn stored_acls(revision: u64, acls: &Acls, etag: &str) -> StoredDocument {
        StoredDocument {
            content: encode_acls(revision, acls).expect("encodes"),
            etag: etag.into(),
        }
    }

    #[test]
    fn changes_are_what_differs_binding_by_binding_and_credential_by_credential() {
        let (kept, gone, new) = (
            binding("kept", AclPermissionType::Allow),
            binding("gone", AclPermissionType::Allow),
            binding("new", AclPermissionType::Deny),
        );
        let before = acls_of(&[kept.clone(), gone.clone()]);
        let after = acls_of(&[kept, new.clone()]);
        assert_eq!(
            acl_changes(&before, &after),
            [Change::Acl(new, true), Change::Acl(gone, false)]
        );

        let (s256, s512) = (ScramMechanism::Sha256, ScramMechanism::Sha512);
        let mut before = Users::new().expect("users");
        before.upsert("alice", s256, credential(4096));
        before.upsert("bob", s256, credential(4096));
        let mut after = before.clone();
        after.upsert("alice", s256, credential(8192));
        after.remove("bob", s256);
        after.upsert("carol", s256, credential(4096));
        assert_eq!(
            credential_changes(&before, &after),
            [
                Change::Credential("alice".into(), s256, Some(credential(8192))),
                Change::Credential("carol".into(), s256, Some(credential(4096))),
                Change::Credential("bob".into(), s256, None),
            ]
        );
        assert!(credential_changes(&after, &after.clone()).is_empty());
        assert_eq!(after.get("alice", s512), None);
    }

    #[test]
    fn pending_changes_apply_on_top_of_what_another_gateway_stored() {
        // Another gateway stored `theirs` and `both`; this one, meanwhile, created `ours`
        // and deleted `both`: the merge keeps all of theirs and all of ours, and for the
        // binding both touched, this gateway's later change wins.
        let ours = binding("ours", AclPermissionType::Deny);
        let theirs = binding("theirs", AclPermissionType::Allow);
        let both = binding("both", AclPermissionType::Allow);
        let stored = acls_of(&[theirs.clone(), both.clone()]);
        let mut merged = Merged::decode(
            SecurityDocument::Acls,
            Some(&encode_acls(4, &stored).expect("encodes")),
        )
        .expect("decodes");
        merged.apply(&[Change::Acl(ours.clone(), true), Change::Acl(both, false)]);
        let content = merged.encode_next().expect("encodes");
        let (revision, acls) = decode_acls(&content).expect("decodes");
        assert_eq!(revision, 5, "one more write");
        assert_eq!(acls.iter().collect::<Vec<_>>(), [&ours, &theirs]);

        // Users: another gateway's user stays, this one's change to a user is applied.
        let s256 = ScramMechanism::Sha256;
        let mut theirs = Users::new().expect("users");
        theirs.upsert("dave", s256, credential(4096));
        theirs.upsert("erin", s256, credential(4096));
        let content = Bytes::from(theirs.to_json().expect("encodes"));
        let mut merged = Merged::decode(SecurityDocument::Users, Some(&content)).expect("decodes");
        merged.apply(&[
            Change::Credential("erin".into(), s256, None),
            Change::Credential("frank".into(), s256, Some(credential(4096))),
        ]);
        let Merged::Users(users) = merged else {
            panic!("users decode as users")
        };
        let names: Vec<_> = users.credentials().map(|(name, ..)| name).collect();
        assert_eq!(names, ["dave", "frank"]);
    }

    #[test]
    fn a_refresh_keeps_changes_not_yet_stored_on_top_of_another_gateways() {
        let security = security();
        let ours = binding("ours", AclPermissionType::Deny);
        let (_, revision) = security.alter_acls(|acls| acls.create(ours.clone()));
        assert_eq!(revision, Some(1));
        let theirs = binding("theirs", AclPermissionType::Allow);
        let stored = stored_acls(1, &acls_of(std::slice::from_ref(&theirs)), "theirs-1");
        let taken = security
            .take_stored(SecurityDocument::Acls, stored.clone(), 0)
            .expect("readable");
        assert!(taken);
        assert_eq!(
            security.acls().iter().collect::<Vec<_>>(),
            [&ours, &theirs],
            "theirs taken, ours still in force"
        );
        // The same document again is not taken again (the authorizers' caches stay).
        let version = security.acl_version();
        assert!(!security
            .take_stored(SecurityDocument::Acls, stored, 1)
            .expect("readable"));
        assert_eq!(security.acl_version(), version);
        // A read begun before the base last changed (generation 0, now 1) is stale.
        let older = stored_acls(0, &Acls::new(), "older");
        assert!(!security
            .take_stored(SecurityDocument::Acls, older, 0)
            .expect("readable"));
        assert_eq!(security.acls().len(), 2);
    }

    #[test]
    fn a_backend_that_keeps_nothing_keeps_no_pending_changes() {
        let security = security();
        let (_, revision) =
            security.alter_acls(|acls| acls.create(binding("t", AclPermissionType::Allow)));
        let revision = revision.expect("changed");
        let stored = futures::executor::block_on(security.persist(
            &SecurityStore::Memory,
            SecurityDocument::Acls,
            revision,
        ));
        assert!(stored.is_ok());
        assert!(lock(&security.stored.acls).pending.is_empty());
        assert_eq!(security.acls().len(), 1);
    }

    #[test]
    fn acls_file_keeps_its_revision() {
        let mut acls = Acls::new();
        acls.create(AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: "orders".into(),
            pattern_type: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Read,
            permission: AclPermissionType::Allow,
        })
        .expect("valid");
        let content = encode_acls(7, &acls).expect("encodes");
        let (revision, read) = decode_acls(&content).expect("decodes");
        assert_eq!(revision, 7);
        assert_eq!(
            read.iter().collect::<Vec<_>>(),
            acls.iter().collect::<Vec<_>>()
        );
        // A file written without a revision (by hand) reads as revision 0.
        let (revision, _) = decode_acls(br#"{"acls":[]}"#).expect("decodes");
        assert_eq!(revision, 0);
    }
}
