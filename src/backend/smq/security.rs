//! Users and ACLs in SeaweedFS's filer, so that every gateway in front of the same SeaweedFS
//! authenticates and authorizes alike, and both outlive a restart.
//!
//! Layout: two small files next to the other side stores of the namespace,
//! `/topics/<namespace>/.meta/tidegate/users.json` (`Users::to_json`: salts and derived keys,
//! never a password) and `/topics/<namespace>/.meta/tidegate/acls.json` (`Acls::to_json` plus
//! a `"revision"`). Each is read back with one `ListEntries` and written whole, as one PUT in
//! one `ObjectTransaction` whose condition is that the file is still the one the writer
//! based its change on (the filer's `IF_ETAG_MATCH`, or `IF_NOT_EXISTS` for a first write),
//! checked under the filer's lock on the file: a compare-and-swap. Merging a refused write
//! with what the other gateway stored is `security::stored`'s business.
//!
//! The tag compared is the file's ETag as the filer computes it: our writes set it (the
//! extended attribute `Seaweed-X-Amz-ETag`) to a digest of the content; a file written
//! before tidegate did (or by hand) has none, and its ETag is its md5 if the filer kept
//! one, else empty, which is what `etag_of_entry` reads too.

use super::filer::{self, Filer};
use super::proto::filer_pb::write_condition::{Clause, Kind};
use super::proto::filer_pb::{Entry, WriteCondition};
use crate::backend::{SecurityDocument, StoredDocument};
use crate::error::Result;
use bytes::Bytes;
use std::fmt::Write as _;
use std::rc::Rc;

/// The extended attribute the filer takes an entry's ETag from before anything else.
const ETAG_KEY: &str = "Seaweed-X-Amz-ETag";

pub struct SecurityStore {
    filer: Rc<Filer>,
    /// `/topics/<namespace>/.meta/tidegate`.
    directory: String,
}

impl SecurityStore {
    pub fn new(filer: Rc<Filer>, namespace: &str) -> Self {
        Self {
            filer,
            directory: format!("/topics/{namespace}/.meta/tidegate"),
        }
    }

    fn file_name(document: SecurityDocument) -> &'static str {
        match document {
            SecurityDocument::Users => "users.json",
            SecurityDocument::Acls => "acls.json",
        }
    }

    /// The document and its tag; `None` if it was never written.
    pub async fn read(&self, document: SecurityDocument) -> Result<Option<StoredDocument>> {
        let entry = self
            .filer
            .read_entry(&self.directory, Self::file_name(document))
            .await?;
        Ok(entry.map(|entry| StoredDocument {
            etag: etag_of_entry(&entry),
            content: entry.content,
        }))
    }

    /// Replaces the document, durably before it returns, if the filer still holds the one
    /// tagged `expected` (`None`: none at all); `Ok(None)` if it holds another.
    pub async fn write_if(
        &self,
        document: SecurityDocument,
        content: Bytes,
        expected: Option<&str>,
    ) -> Result<Option<StoredDocument>> {
        let name = Self::file_name(document);
        let lock_key = format!("{}/{name}", self.directory);
        let etag = etag_of_content(&content);
        let mut put = filer::put(self.directory.clone(), name, content.clone());
        if let Some(entry) = put.entry.as_mut() {
            entry
                .extended
                .insert(ETAG_KEY.to_string(), Bytes::from(etag.clone()));
        }
        let written = self
            .filer
            .transact_if(lock_key, condition(expected), vec![put])
            .await?;
        Ok(written.then_some(StoredDocument { content, etag }))
    }
}

/// The condition that the file is the one tagged `expected`, or absent.
fn condition(expected: Option<&str>) -> WriteCondition {
    let clause = match expected {
        Some(etag) => Clause {
            kind: Kind::IfEtagMatch.into(),
            etags: vec![etag.to_string()],
        },
        None => Clause {
            kind: Kind::IfNotExists.into(),
            etags: Vec::new(),
        },
    };
    WriteCondition {
        clauses: vec![clause],
    }
}

/// A tag for `content`: the same content always gets the same tag, so a compare-and-swap
/// against it holds exactly when the file's content is what the writer merged onto.
fn etag_of_content(content: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, content);
    hex(&digest.as_ref()[..16])
}

/// The entry's ETag as the filer's condition check computes it for a file without chunks
/// (`storedEntryETag` in SeaweedFS's `filer_grpc_server_condition.go`).
fn etag_of_entry(entry: &Entry) -> String {
    if let Some(etag) = entry.extended.get(ETAG_KEY).filter(|e| !e.is_empty()) {
        return String::from_utf8_lossy(etag).trim_matches('"').to_string();
    }
    hex(entry.attributes.as_ref().map(|a| &a.md5[..]).unwrap_or(&[]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::smq::proto::filer_pb::FuseAttributes;

    #[test]
    fn files_sit_next_to_the_other_side_stores() {
        let store = SecurityStore::new(Rc::new(Filer::new("x:1".into(), None)), "kafka");
        assert_eq!(store.directory, "/topics/kafka/.meta/tidegate");
        assert_eq!(
            SecurityStore::file_name(SecurityDocument::Users),
            "users.json"
        );
        assert_eq!(
            SecurityStore::file_name(SecurityDocument::Acls),
            "acls.json"
        );
    }

    #[test]
    fn the_etag_read_back_is_the_one_written_or_the_filers_own() {
        let etag = etag_of_content(b"{}");
        assert_eq!(etag.len(), 32);
        assert_ne!(etag, etag_of_content(b"{ }"));
        let mut entry = Entry::default();
        // Written before tags were set: no md5 either, so the filer's ETag is empty.
        assert_eq!(etag_of_entry(&entry), "");
        entry.attributes = Some(FuseAttributes {
            md5: Bytes::from_static(&[0xab, 0x01]),
            ..Default::default()
        });
        assert_eq!(etag_of_entry(&entry), "ab01");
        entry
            .extended
            .insert(ETAG_KEY.into(), Bytes::from(etag.clone()));
        assert_eq!(etag_of_entry(&entry), etag);
    }
}
