//! Keeping the users and the ACLs in the backend's [`SecurityStore`] (SeaweedFS's filer on
//! SMQ; nowhere on the memory backend), and noticing when another gateway changed them.
//!
//! Each document (users, ACLs) carries a revision that grows with every change made here:
//! `Users::version`, and for ACLs a counter kept next to them and written into the file.
//! A change is made in memory under [`Security`]'s write lock and gives the revision it
//! made; the request that made it then waits in [`Security::persist`] until that revision,
//! or a later one, is stored.
//!
//! Writes of one process never overtake each other: per document one task at a time
//! writes, and it always writes the state as it is *now* (never the snapshot a request
//! made), so a newer state is never overwritten by an older one. Requests that change
//! the document while a write is under way wait for the writer's next round, which
//! stores their change and everything before it. A failed write answers every request
//! waiting on it with a retriable error (KAFKA_STORAGE_ERROR); the change stays in force
//! in memory, which now differs from the store: that is logged, and every refresh tries
//! the write again until it succeeds, and meanwhile takes no other gateway's state over it.
//!
//! Between gateways the store is the truth: every `--security-refresh-ms` one shard reads
//! both files, and a content other than the one this process last wrote or read replaces
//! the state in memory, unless a change of this process is not yet stored. Two gateways
//! changing the same document at once: the last write wins, and both converge on it.

use super::acl::Acls;
use super::credentials::{ScramMechanism, Users};
use super::Security;
use crate::backend::{SecurityDocument, SecurityStore};
use crate::error::{Error, Result};
use bytes::Bytes;
use futures::channel::oneshot;
use serde::Deserialize;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

/// What this process knows of one stored document, and who waits for it to be written.
#[derive(Default)]
pub(super) struct DocumentState {
    /// The revision the store holds, as far as this process knows (it wrote or read it).
    stored: u64,
    /// That revision's content; `None` while nothing is known to be stored.
    content: Option<Bytes>,
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
/// are dropped) rather than waiting for ever.
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

impl Security {
    fn document_state(&self, document: SecurityDocument) -> &Mutex<DocumentState> {
        match document {
            SecurityDocument::Users => &self.stored.users,
            SecurityDocument::Acls => &self.stored.acls,
        }
    }

    /// The document's revision in memory now.
    fn revision(&self, document: SecurityDocument) -> u64 {
        match document {
            SecurityDocument::Users => self.users().version(),
            SecurityDocument::Acls => self.acl_revision.load(Ordering::Acquire),
        }
    }

    /// The document as it is now, with its revision, ready to store.
    fn snapshot(&self, document: SecurityDocument) -> Result<(u64, Bytes)> {
        match document {
            SecurityDocument::Users => {
                let users = self.users();
                let json = users
                    .to_json()
                    .map_err(|e| Error::Unavailable(format!("cannot encode the users: {e}")))?;
                Ok((users.version(), Bytes::from(json)))
            }
            SecurityDocument::Acls => {
                let guard = match self.acls.read() {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                };
                let revision = self.acl_revision.load(Ordering::Acquire);
                Ok((revision, encode_acls(revision, &guard)?))
            }
        }
    }

    /// Returns once `revision` of the document (or a later one) is stored; a retriable
    /// error if the write failed. At once on a backend that keeps nothing.
    pub async fn persist(
        &self,
        store: &SecurityStore,
        document: SecurityDocument,
        revision: u64,
    ) -> Result<()> {
        if !store.keeps_security() {
            return Ok(());
        }
        let state = self.document_state(document);
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

    /// The writer: stores the document as it is now, answers the requests that round
    /// covers, and goes round again while others wait for a later revision.
    async fn write_rounds(&self, store: &SecurityStore, document: SecurityDocument) {
        let state = self.document_state(document);
        let _guard = WriterGuard { state };
        loop {
            let (revision, result) = match self.snapshot(document) {
                Ok((revision, content)) => (
                    revision,
                    store
                        .write(document, content.clone())
                        .await
                        .map(|()| content),
                ),
                Err(error) => (self.revision(document), Err(error)),
            };
            let mut state = lock(state);
            let outcome = match result {
                Ok(content) => {
                    state.stored = revision;
                    state.content = Some(content);
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

    /// One refresh (every `--security-refresh-ms`, on one shard): a change of this process
    /// whose write failed is written again; otherwise what another gateway stored is taken.
    pub async fn refresh(&self, store: &SecurityStore) {
        for document in [SecurityDocument::Users, SecurityDocument::Acls] {
            let (stored, writing) = {
                let state = lock(self.document_state(document));
                (state.stored, state.writing)
            };
            if writing {
                continue;
            }
            let current = self.revision(document);
            if current != stored {
                match self.persist(store, document, current).await {
                    Ok(()) => tracing::info!(?document, current, "security change stored"),
                    Err(error) => {
                        tracing::warn!(?document, %error, "security change still not stored")
                    }
                }
                continue;
            }
            match store.read(document).await {
                Ok(Some(content)) => match self.take_stored(document, content) {
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

    /// Replaces the document in memory by stored `content`, unless it is what this process
    /// last wrote or read, or a change of this process is not yet stored.
    fn take_stored(&self, document: SecurityDocument, content: Bytes) -> Result<bool, String> {
        let mut state = lock(self.document_state(document));
        if state.writing || state.content.as_ref() == Some(&content) {
            return Ok(false);
        }
        match document {
            SecurityDocument::Users => {
                let users = Users::from_json(&content).map_err(|e| e.to_string())?;
                let mut current = match self.users.write() {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                };
                if current.version() != state.stored {
                    return Ok(false);
                }
                state.stored = users.version();
                *current = Arc::new(users);
            }
            SecurityDocument::Acls => {
                let (revision, acls) = decode_acls(&content)?;
                let mut current = match self.acls.write() {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                };
                if self.acl_revision.load(Ordering::Acquire) != state.stored {
                    return Ok(false);
                }
                state.stored = revision;
                self.acl_revision.store(revision, Ordering::Release);
                self.acl_version.store(acls.version(), Ordering::Release);
                *current = Arc::new(acls);
            }
        }
        state.content = Some(content);
        Ok(true)
    }

    /// At start-up, before any shard serves: the stored users and ACLs replace those in
    /// memory. A `--users-file` user the store does not have is added and the users are
    /// written (so a fresh cluster gets its first administrator); a stored user wins over
    /// the file's user of the same name. Anything unreadable stops the start: a gateway
    /// must not serve with other users or ACLs than its peers, nor overwrite them.
    pub async fn restore(&self, store: &SecurityStore) -> Result<(), String> {
        let read = |document| async move {
            store
                .read(document)
                .await
                .map_err(|e| format!("cannot read the stored {document:?}: {e}"))
        };
        let stored_users = read(SecurityDocument::Users).await?;
        let from_file = self.users();
        let mut users = match &stored_users {
            Some(content) => Users::from_json(content).map_err(|e| e.to_string())?,
            None => Users::new().map_err(|e| e.to_string())?,
        };
        let mut added = Vec::new();
        for user in from_file.describe(None) {
            if !users.describe(Some(std::slice::from_ref(&user.name)))[0]
                .credentials
                .is_empty()
            {
                continue;
            }
            for mechanism in ScramMechanism::ALL {
                if let Some(credential) = from_file.get(&user.name, mechanism) {
                    users.upsert(&user.name, mechanism, credential.clone());
                }
            }
            added.push(user.name);
        }
        let content = match stored_users {
            Some(content) if added.is_empty() => content,
            _ => {
                let content = Bytes::from(users.to_json().map_err(|e| e.to_string())?);
                store
                    .write(SecurityDocument::Users, content.clone())
                    .await
                    .map_err(|e| format!("cannot store the users: {e}"))?;
                content
            }
        };
        tracing::info!(
            users = users.len(),
            added_from_users_file = ?added,
            "users read from the store"
        );
        {
            let mut state = lock(&self.stored.users);
            state.stored = users.version();
            state.content = Some(content);
        }
        self.set_users(users);

        if let Some(content) = read(SecurityDocument::Acls).await? {
            let (revision, acls) = decode_acls(&content)?;
            tracing::info!(acls = acls.len(), revision, "ACLs read from the store");
            let mut state = lock(&self.stored.acls);
            state.stored = revision;
            state.content = Some(content);
            self.acl_revision.store(revision, Ordering::Release);
            self.set_acls(acls);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::acl::{
        AclBinding, AclOperation, AclPermissionType, PatternType, ResourceType,
    };

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
