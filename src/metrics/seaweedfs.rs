//! Calls to SeaweedFS (gRPC to the broker, filer and master; HTTP chunk reads from the volume
//! servers), counted by the shard that makes them.
//!
//! Counted where every call passes, the HTTP/2 channel under tonic's generated clients
//! (`backend::smq::channel`), keyed by the request's path
//! (`/messaging_pb.SeaweedMessaging/FetchMessage`), so no call site can forget it. The
//! channel is the shard's own and has no handle on the shard's metrics, so the counters are
//! thread-local: a shard is one thread, and the scrape asks each shard for its copy over
//! the mesh like any other counter. A stream (PublishMessage) counts once, when it opens.

use super::histogram::{Histogram, LatencyBuckets};
use hashbrown::HashMap;
use std::cell::RefCell;
use std::time::Duration;

/// One RPC's counts on this shard.
#[derive(Default)]
struct RpcCounts {
    path: String,
    calls: u64,
    /// Failed calls by gRPC status name (`Unavailable`), or `transport` for a connection
    /// that failed under the call.
    errors: HashMap<&'static str, u64>,
    latency: Histogram,
}

#[derive(Default)]
struct Calls {
    /// Index into `rpcs` by path: a call's body remembers its RPC as an index, which is
    /// `Send` and needs no copy of the path.
    by_path: HashMap<String, usize>,
    rpcs: Vec<RpcCounts>,
}

thread_local! {
    static CALLS: RefCell<Calls> = RefCell::default();
}

/// What a scrape gets of one RPC.
#[derive(Debug, Clone, Default)]
pub struct RpcSnapshot {
    /// `messaging_pb.SeaweedMessaging`
    pub service: String,
    /// `FetchMessage`
    pub rpc: String,
    pub calls: u64,
    /// (code, failed calls), by code.
    pub errors: Vec<(&'static str, u64)>,
    pub latency: LatencyBuckets,
}

/// This shard's RPC, by its request path, for the later [`answered`] and [`failed`].
pub fn rpc(path: &str) -> usize {
    CALLS.with_borrow_mut(|calls| {
        if let Some(&index) = calls.by_path.get(path) {
            return index;
        }
        let index = calls.rpcs.len();
        calls.rpcs.push(RpcCounts {
            path: path.to_string(),
            ..RpcCounts::default()
        });
        calls.by_path.insert(path.to_string(), index);
        index
    })
}

/// A call made (a stream opened).
pub fn called(rpc: usize) {
    with(rpc, |counts| counts.calls += 1);
}

/// The call's answer began `took` after the call: for a unary call, SeaweedFS's gRPC
/// server sends the answer's headers with the answer; for a stream, when it opened.
pub fn answered(rpc: usize, took: Duration) {
    with(rpc, |counts| counts.latency.record(took));
}

/// The call failed with `code`.
pub fn failed(rpc: usize, code: &'static str) {
    with(rpc, |counts| *counts.errors.entry(code).or_insert(0) += 1);
}

fn with(rpc: usize, count: impl FnOnce(&mut RpcCounts)) {
    CALLS.with_borrow_mut(|calls| {
        if let Some(counts) = calls.rpcs.get_mut(rpc) {
            count(counts);
        }
    });
}

/// This shard's calls, by RPC.
pub fn snapshot() -> Vec<RpcSnapshot> {
    CALLS.with_borrow(|calls| {
        calls
            .rpcs
            .iter()
            .map(|counts| {
                let path = counts.path.trim_start_matches('/');
                let (service, rpc) = path.split_once('/').unwrap_or(("", path));
                let mut errors: Vec<_> = counts.errors.iter().map(|(&c, &n)| (c, n)).collect();
                errors.sort_unstable();
                RpcSnapshot {
                    service: service.to_string(),
                    rpc: rpc.to_string(),
                    calls: counts.calls,
                    errors,
                    latency: counts.latency.buckets(),
                }
            })
            .collect()
    })
}

/// The name of a gRPC status code as a label (`Unavailable`), from the `grpc-status`
/// header's value; `None` for OK.
pub fn status_name(grpc_status: &[u8]) -> Option<&'static str> {
    let code = std::str::from_utf8(grpc_status).ok()?.parse::<i32>().ok();
    match code.map(tonic::Code::from_i32) {
        Some(tonic::Code::Ok) => None,
        Some(code) => Some(code_name(code)),
        None => Some("Unknown"),
    }
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "Ok",
        Cancelled => "Cancelled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_by_service_and_rpc() {
        let fetch = rpc("/messaging_pb.SeaweedMessaging/FetchMessage");
        assert_eq!(rpc("/messaging_pb.SeaweedMessaging/FetchMessage"), fetch);
        called(fetch);
        called(fetch);
        answered(fetch, Duration::from_micros(300));
        failed(fetch, "Unavailable");
        let counted = snapshot();
        let counted = counted
            .iter()
            .find(|r| r.rpc == "FetchMessage")
            .expect("counted");
        assert_eq!(counted.service, "messaging_pb.SeaweedMessaging");
        assert_eq!(counted.calls, 2);
        assert_eq!(counted.errors, [("Unavailable", 1)]);
        assert_eq!(counted.latency.counts.iter().sum::<u64>(), 1);
    }

    #[test]
    fn grpc_status_names() {
        assert_eq!(status_name(b"0"), None);
        assert_eq!(status_name(b"14"), Some("Unavailable"));
        assert_eq!(status_name(b"x"), Some("Unknown"));
    }
}
