//! `--metrics-addr`: /healthz, /readyz and /metrics over a minimal HTTP/1.1 (one request
//! per connection, then close), served by shard 0.
//!
//! On a shard rather than a thread of its own because what it reports is the shards': a
//! scrape and a readiness check ask every shard over the mesh, as any cross-shard work
//! does, so a shard that is stuck or gone shows as not ready instead of as stale numbers;
//! and /readyz asks the backend through shard 0's own SeaweedFS connections. Scrapes come a
//! few times a minute, so their cost on shard 0 does not show. Hand-written because three
//! GET routes need no more than this, where hyper's server would add a dependency and an
//! executor adapter.

use super::prometheus;
use super::Lag;
use crate::backend::OffsetSpec;
use crate::partition::leader_epochs::NO_EPOCH;
use crate::partition::OffsetQuery;
use crate::shard::{group_by_owner, Shard};
use crate::TopicPartition;
use futures::future::{join_all, select, Either};
use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

/// Longest request head read; a scraper's is a few hundred bytes.
const MAX_HEAD: usize = 8 << 10;
/// How long a client may take to send its request, and a readiness check may take.
const DEADLINE: Duration = Duration::from_secs(5);

/// Serves the endpoints until the future is dropped (at shutdown).
pub async fn serve(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let shard = shard.clone();
                glommio::spawn_local(async move { answer(&shard, stream).await }).detach();
            }
            Err(error) => {
                tracing::warn!(%error, "metrics: accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn answer(shard: &Rc<Shard>, mut stream: TcpStream) {
    let Some(Ok(head)) = within(DEADLINE, read_head(&mut stream)).await else {
        return; // Slow, silent or oversized: closed unanswered.
    };
    let mut request_line = head.split(' ');
    let (method, path) = (request_line.next(), request_line.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or(path);
    let (status, content_type, body) = match (method, path) {
        (Some("GET"), "/healthz") => (200, "text/plain", "ok\n".to_string()),
        (Some("GET"), "/readyz") => match ready(shard).await {
            Ok(()) => (200, "text/plain", "ready\n".to_string()),
            Err(reason) => (503, "text/plain", format!("not ready: {reason}\n")),
        },
        (Some("GET"), "/metrics") => {
            let text = prometheus::render(&snapshots(shard).await);
            (200, prometheus::CONTENT_TYPE, text)
        }
        (Some("GET"), _) => (404, "text/plain", "/healthz, /readyz or /metrics\n".into()),
        _ => (405, "text/plain", "GET only\n".into()),
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.close().await;
}

/// The request line and headers, up to the blank line; an error past `MAX_HEAD` bytes or
/// at the end of the stream.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut chunk).await?;
        if read == 0 || head.len() + read > MAX_HEAD {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        head.extend_from_slice(&chunk[..read]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// Every shard's counters, asked of each over the mesh, with the lag of the groups each
/// coordinates.
async fn snapshots(shard: &Rc<Shard>) -> Vec<super::Snapshot> {
    let asks = (0..shard.nr_shards()).map(|owner| {
        shard.invoke(owner, move |shard| async move {
            let mut snapshot = shard.metrics_snapshot();
            // Groups not yet cached are loaded from the store, a few per scrape if it is slow
            // (those loaded stay cached for the next scrape).
            let committed = shard.committed_offsets();
            snapshot.committed = within(DEADLINE, committed).await.unwrap_or_default();
            snapshot
        })
    });
    let mut snapshots: Vec<_> = join_all(asks).await.into_iter().flatten().collect();
    for snapshot in &mut snapshots {
        snapshot.lag = lag(shard, std::mem::take(&mut snapshot.committed)).await;
    }
    snapshots
}

/// Each committed offset's distance to its partition's high-water mark, as ListOffsets
/// (latest) gives it, so the figure is `kafka-consumer-groups --describe`'s, fresh even when
/// other gateways append (partitions whose mark cannot be had are left out).
async fn lag(shard: &Rc<Shard>, committed: Vec<(String, TopicPartition, i64)>) -> Vec<Lag> {
    let committed = committed.into_iter().enumerate();
    let owners = group_by_owner(shard, committed, |(_, tp, _)| tp);
    let asks = owners.into_iter().map(|(owner, _, committed)| async move {
        let partitions: Vec<_> = committed.iter().map(|(_, tp, _)| tp.clone()).collect();
        let queries = partitions
            .into_iter()
            .map(|tp| {
                let query = OffsetQuery {
                    spec: OffsetSpec::Latest,
                    current_leader_epoch: NO_EPOCH,
                };
                (tp, query)
            })
            .collect();
        let marks = shard
            .invoke(owner, move |shard| async move {
                within(DEADLINE, shard.partitions.list_offsets(queries)).await
            })
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        committed
            .into_iter()
            .zip(marks)
            .filter_map(|((group, tp, offset), mark)| {
                let lag = (mark.ok()?.offset - offset).max(0);
                Some(Lag { group, tp, lag })
            })
            .collect::<Vec<_>>()
    });
    join_all(asks).await.into_iter().flatten().collect()
}

/// Ready: every shard answers and accepts connections, and the backend answers.
async fn ready(shard: &Rc<Shard>) -> Result<(), String> {
    let listening = (0..shard.nr_shards())
        .map(|owner| shard.invoke(owner, |shard| async move { shard.metrics.listening() }));
    let answers = within(DEADLINE, join_all(listening))
        .await
        .ok_or("the shards did not answer within 5 s")?;
    for (owner, answer) in answers.into_iter().enumerate() {
        match answer {
            Ok(true) => {}
            Ok(false) => return Err(format!("shard {owner} is not accepting connections")),
            Err(error) => return Err(format!("shard {owner}: {error}")),
        }
    }
    match within(DEADLINE, shard.topics.answers()).await {
        Some(Ok(())) => Ok(()),
        Some(Err(error)) => Err(format!("backend: {error}")),
        None => Err("the backend did not answer within 5 s".into()),
    }
}

/// `work`'s outcome, or `None` once `limit` has passed.
async fn within<T>(limit: Duration, work: impl std::future::Future<Output = T>) -> Option<T> {
    match select(pin!(work), pin!(glommio::timer::sleep(limit))).await {
        Either::Left((outcome, _)) => Some(outcome),
        Either::Right(_) => None,
    }
}
