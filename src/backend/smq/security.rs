//! Users and ACLs in SeaweedFS's filer, so that every gateway in front of the same SeaweedFS
//! authenticates and authorizes alike, and both outlive a restart.
//!
//! Layout: two small files next to the other side stores of the namespace,
//! `/topics/<namespace>/.meta/tidegate/users.json` (`Users::to_json`: salts and derived keys,
//! never a password) and `/topics/<namespace>/.meta/tidegate/acls.json` (`Acls::to_json` plus
//! a `"revision"`). Each is written whole, as one PUT in one `ObjectTransaction`, and read
//! back with one `ListEntries`; the order of writes and the polling for other gateways'
//! changes are `security::stored`'s business.

use super::filer::{self, Filer};
use crate::backend::SecurityDocument;
use crate::error::Result;
use bytes::Bytes;
use std::rc::Rc;

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

    /// The document's content; `None` if it was never written.
    pub async fn read(&self, document: SecurityDocument) -> Result<Option<Bytes>> {
        self.filer
            .read(&self.directory, Self::file_name(document))
            .await
    }

    /// Replaces the document, durably before it returns.
    pub async fn write(&self, document: SecurityDocument, content: Bytes) -> Result<()> {
        let name = Self::file_name(document);
        let lock_key = format!("{}/{name}", self.directory);
        let put = filer::put(self.directory.clone(), name, content);
        self.filer.transact(lock_key, vec![put], None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
