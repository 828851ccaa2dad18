//! The shard's connection to SeaweedFS's filer, and the few calls the SMQ backend's side
//! stores (committed offsets, producer state) make on it: small files written in one
//! `ObjectTransaction`, a directory tree read back with one `TraverseBfsMetadata` stream,
//! a directory listed with `ListEntries`. Every call has a deadline; past it, or on any
//! filer error, the caller gets a retriable error.

use super::channel::{FilerClient, GrpcChannel};
use super::proto::filer_pb::{
    object_mutation, Entry, FilerError, FuseAttributes, ListEntriesRequest, LookupVolumeRequest,
    ObjectMutation, ObjectTransactionRequest, SubscribeMetadataRequest, SubscribeMetadataResponse,
    TraverseBfsMetadataRequest, WriteCondition,
};
use super::tls::ClientTls;
use crate::error::{Error, Result};
use crate::TopicPartition;
use bytes::Bytes;
use futures::future::{select, Either};
use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

/// `-rw-r--r--`, as SeaweedFS's Go gateway writes its files.
const FILE_MODE: u32 = 0o644;
/// Longest a filer call may take before the outcome counts as unknown.
const FILER_TIMEOUT: Duration = Duration::from_secs(10);
/// Entries asked for per ListEntries call.
const LIST_PAGE: u32 = 1024;
/// How the filer words a missing path (`filer_pb.ErrNotFound`); it reaches gRPC as a
/// plain error with code Unknown, so the message is all there is to go by.
const NOT_FOUND: &str = "no entry is found";

/// One shard's filer connection, made on first use and again after it closed.
pub struct Filer {
    /// Filer gRPC address.
    address: String,
    /// `--smq-tls-*`, when SeaweedFS's gRPC is TLS.
    tls: Option<Arc<ClientTls>>,
    channel: RefCell<Option<GrpcChannel>>,
}

impl Filer {
    pub fn new(address: String, tls: Option<Arc<ClientTls>>) -> Self {
        Self {
            address,
            tls,
            channel: RefCell::default(),
        }
    }

    async fn client(&self) -> Result<FilerClient> {
        if let Some(channel) = self.channel.borrow().as_ref().filter(|c| !c.is_closed()) {
            return Ok(channel.filer());
        }
        let channel = self
            .within("connect", async {
                GrpcChannel::connect(&self.address, self.tls.as_deref())
                    .await
                    .map_err(|e| self.unavailable(format!("cannot connect: {e}")))
            })
            .await?;
        let client = channel.filer();
        *self.channel.borrow_mut() = Some(channel);
        Ok(client)
    }

    pub fn unavailable(&self, message: impl std::fmt::Display) -> Error {
        Error::Unavailable(format!("SeaweedFS filer {}: {message}", self.address))
    }

    fn status(&self, call: &str, status: tonic::Status) -> Error {
        self.unavailable(format!("{call}: {}", status.message()))
    }

    /// Runs a filer call with a deadline: past it, the outcome is unknown (retriable).
    async fn within<T>(&self, call: &str, future: impl Future<Output = Result<T>>) -> Result<T> {
        let timer = pin!(glommio::timer::sleep(FILER_TIMEOUT));
        match select(pin!(future), timer).await {
            Either::Left((result, _)) => result,
            Either::Right(_) => Err(self.unavailable(format!(
                "{call} took more than {}s",
                FILER_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Every entry below `directory` with the directory it is in, from one
    /// TraverseBfsMetadata stream (content included); none if `directory` does not exist.
    pub async fn traverse(&self, directory: &str) -> Result<Vec<(String, Entry)>> {
        let mut client = self.client().await?;
        self.within("TraverseBfsMetadata", async {
            let request = TraverseBfsMetadataRequest {
                directory: directory.to_string(),
                excluded_prefixes: Vec::new(),
            };
            let mut stream = match client.traverse_bfs_metadata(request).await {
                Ok(response) => response.into_inner(),
                Err(status) if status.message().contains(NOT_FOUND) => return Ok(Vec::new()),
                Err(status) => return Err(self.status("TraverseBfsMetadata", status)),
            };
            let mut entries = Vec::new();
            loop {
                match stream.message().await {
                    Ok(Some(item)) => entries.extend(item.entry.map(|e| (item.directory, e))),
                    Ok(None) => return Ok(entries),
                    Err(status) if status.message().contains(NOT_FOUND) => return Ok(entries),
                    Err(status) => return Err(self.status("TraverseBfsMetadata", status)),
                }
            }
        })
        .await
    }

    /// The entries directly in `directory`, page by page; none if it does not exist.
    pub async fn list(&self, directory: &str) -> Result<Vec<Entry>> {
        self.list_from(directory, "", false).await
    }

    /// The files of `directory` from the one named `from` on (all if empty), with where
    /// their content is stored.
    pub async fn list_files_from(&self, directory: &str, from: &str) -> Result<Vec<Entry>> {
        self.list_from(directory, from, true).await
    }

    async fn list_from(&self, directory: &str, from: &str, chunks: bool) -> Result<Vec<Entry>> {
        let mut client = self.client().await?;
        let mut entries: Vec<Entry> = Vec::new();
        loop {
            let request = ListEntriesRequest {
                directory: directory.to_string(),
                start_from_file_name: entries
                    .last()
                    .map_or_else(|| from.to_string(), |e| e.name.clone()),
                inclusive_start_from: entries.is_empty(),
                limit: LIST_PAGE,
                omit_chunks: !chunks,
                ..Default::default()
            };
            let page = self
                .within("ListEntries", async {
                    let mut stream = match client.list_entries(request).await {
                        Ok(response) => response.into_inner(),
                        Err(status) if status.message().contains(NOT_FOUND) => {
                            return Ok(Vec::new())
                        }
                        Err(status) => return Err(self.status("ListEntries", status)),
                    };
                    let mut page = Vec::new();
                    loop {
                        match stream.message().await {
                            Ok(Some(item)) => page.extend(item.entry),
                            Ok(None) => return Ok(page),
                            Err(status) if status.message().contains(NOT_FOUND) => return Ok(page),
                            Err(status) => return Err(self.status("ListEntries", status)),
                        }
                    }
                })
                .await?;
            let full = page.len() >= LIST_PAGE as usize;
            entries.extend(page);
            if !full {
                return Ok(entries);
            }
        }
    }

    /// The filer's changes to entries under `prefix` from `since_ns` on, as they happen, with
    /// an empty response every few seconds while there are none (the filer's idle
    /// heartbeat). The stream opens when the filer sends its first response; it has no
    /// deadline, the caller decides how long a silence may last.
    ///
    /// `client_id` names the subscriber to the filer (it must not be 0: the filer ends such
    /// a stream at once); a later subscription with the same id and a higher
    /// `client_epoch` replaces the earlier one.
    pub async fn subscribe(
        &self,
        prefix: &str,
        since_ns: i64,
        client_id: i32,
        client_epoch: i32,
    ) -> Result<tonic::Streaming<SubscribeMetadataResponse>> {
        let mut client = self.client().await?;
        let request = SubscribeMetadataRequest {
            client_name: "tidegate".to_string(),
            path_prefix: prefix.to_string(),
            since_ns,
            // No signature: the filer skips no event for it.
            signature: 0,
            client_id,
            client_epoch,
            client_supports_idle_heartbeat: true,
        };
        match client.subscribe_metadata(request).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(self.status("SubscribeMetadata", status)),
        }
    }

    /// The content of the small file `directory/name`; `None` if there is no such file.
    pub async fn read(&self, directory: &str, name: &str) -> Result<Option<Bytes>> {
        let entry = self.read_entry(directory, name).await?;
        Ok(entry.map(|entry| entry.content))
    }

    /// The small file `directory/name` (content, attributes, extended attributes); `None`
    /// if there is no such file.
    pub async fn read_entry(&self, directory: &str, name: &str) -> Result<Option<Entry>> {
        let mut client = self.client().await?;
        let request = ListEntriesRequest {
            directory: directory.to_string(),
            prefix: name.to_string(),
            limit: 1,
            ..Default::default()
        };
        let found = self
            .within("ListEntries", async {
                let mut stream = match client.list_entries(request).await {
                    Ok(response) => response.into_inner(),
                    Err(status) if status.message().contains(NOT_FOUND) => return Ok(None),
                    Err(status) => return Err(self.status("ListEntries", status)),
                };
                match stream.message().await {
                    Ok(item) => Ok(item.and_then(|i| i.entry)),
                    Err(status) if status.message().contains(NOT_FOUND) => Ok(None),
                    Err(status) => Err(self.status("ListEntries", status)),
                }
            })
            .await?;
        Ok(found.filter(|entry| entry.name == name && !entry.is_directory))
    }

    /// The HTTP addresses ("host:port") of the volume servers holding each volume.
    pub async fn lookup_volumes(
        &self,
        volume_ids: Vec<String>,
    ) -> Result<Vec<(String, Vec<String>)>> {
        let mut client = self.client().await?;
        let request = LookupVolumeRequest { volume_ids };
        let response = self
            .within("LookupVolume", async {
                client
                    .lookup_volume(request)
                    .await
                    .map_err(|status| self.status("LookupVolume", status))
            })
            .await?
            .into_inner();
        Ok(response
            .locations_map
            .into_iter()
            .map(|(volume, found)| {
                let urls = found.locations.into_iter().map(|l| l.url).collect();
                (volume, urls)
            })
            .collect())
    }

    /// Applies `mutations` in one ObjectTransaction, locked (and routed, with several
    /// filers) on `lock_key`. `optional`: index of a mutation whose failure still counts as
    /// success (everything before it was applied).
    pub async fn transact(
        &self,
        lock_key: String,
        mutations: Vec<ObjectMutation>,
        optional: Option<usize>,
    ) -> Result<()> {
        self.transaction(lock_key, None, mutations, optional)
            .await
            .map(|_| ())
    }

    /// As [`Filer::transact`], applied only if `condition` holds for the entry at
    /// `lock_key` (checked under the transaction's lock): `Ok(false)`, with nothing
    /// applied, if it does not.
    pub async fn transact_if(
        &self,
        lock_key: String,
        condition: WriteCondition,
        mutations: Vec<ObjectMutation>,
    ) -> Result<bool> {
        self.transaction(lock_key, Some(condition), mutations, None)
            .await
    }

    /// One ObjectTransaction: `Ok(false)` if its request-level condition failed.
    async fn transaction(
        &self,
        lock_key: String,
        condition: Option<WriteCondition>,
        mutations: Vec<ObjectMutation>,
        optional: Option<usize>,
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let request = ObjectTransactionRequest {
            route_key: lock_key.clone(),
            lock_key,
            condition,
            mutations,
            request_id: String::new(),
        };
        let response = self
            .within("ObjectTransaction", async {
                client
                    .object_transaction(request)
                    .await
                    .map_err(|status| self.status("ObjectTransaction", status))
            })
            .await?
            .into_inner();
        if response.error.is_empty() {
            return Ok(true);
        }
        let failed = response
            .failed_mutation
            .and_then(|i| usize::try_from(i).ok());
        // The request-level condition failing is the one failure with no mutation named.
        if failed.is_none() && response.error_code() == FilerError::PreconditionFailed {
            return Ok(false);
        }
        if failed.is_some() && failed == optional {
            tracing::trace!(
                error = response.error,
                "optional filer mutation not applied"
            );
            return Ok(true);
        }
        // Mutations before the failed one were applied; a retry applies them again, to
        // the same effect, so the client may retry.
        Err(self.unavailable(format!(
            "ObjectTransaction: {} (code {:?})",
            response.error,
            response.error_code()
        )))
    }
}

/// A PUT of a small file: the filer's CreateEntry, which makes missing parent directories
/// and replaces an existing file.
pub fn put(directory: String, name: &str, content: Bytes) -> ObjectMutation {
    let now_s = crate::unix_time().as_secs() as i64;
    ObjectMutation {
        r#type: object_mutation::Type::Put.into(),
        directory,
        entry: Some(Entry {
            name: name.to_string(),
            is_directory: false,
            attributes: Some(FuseAttributes {
                file_size: content.len() as u64,
                mtime: now_s,
                crtime: now_s,
                file_mode: FILE_MODE,
                ..Default::default()
            }),
            content,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A recursive DELETE of `directory/name`, data included.
pub fn delete(directory: String, name: String, remove_empty_parent: bool) -> ObjectMutation {
    ObjectMutation {
        r#type: object_mutation::Type::Delete.into(),
        directory,
        name,
        is_recursive: true,
        is_delete_data: true,
        remove_empty_parent,
        ..Default::default()
    }
}

/// A Kafka name used as one path component: it must name exactly one entry.
pub fn component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// The partition whose directory is `directory`, if it is `<parent>/<topic>/<partition>`.
pub fn partition_of(parent: &str, directory: &str) -> Option<TopicPartition> {
    let relative = directory.strip_prefix(parent)?.strip_prefix('/')?;
    let (topic, partition) = relative.split_once('/')?;
    if !component(topic) || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(TopicPartition::new(topic, partition.parse().ok()?))
}
