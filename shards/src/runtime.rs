//! Pinned executors, one per shard.

use crate::{Mesh, MeshInbox, ShardId};
use glommio::{LocalExecutorBuilder, Placement};
use std::future::Future;

/// How many shards to run and where.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Number of shards (executors), at least one.
    pub nr_shards: usize,
    /// CPUs to pin to; shard `i` runs on `cpus[i % cpus.len()]`. Empty: not pinned.
    pub cpus: Vec<usize>,
    /// Thread name prefix; shard `i` is `"{name}-{i}"`.
    pub name: String,
    /// Bytes of io_uring registered buffer memory per executor. Sockets do not use it, so a
    /// small amount keeps the locked-memory needs low (glommio needs 512 KiB of RLIMIT_MEMLOCK).
    pub io_memory: usize,
    /// Messages each shard's mesh inbox holds before senders wait.
    pub mesh_capacity: usize,
}

/// What a shard is handed when it starts.
pub struct ShardContext<M> {
    pub shard_id: ShardId,
    pub nr_shards: usize,
    pub mesh: Mesh<M>,
    pub inbox: MeshInbox<M>,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot start shard {shard}: {reason}")]
    Start { shard: ShardId, reason: String },
    #[error("shard {shard} failed: {reason}")]
    Failed { shard: ShardId, reason: String },
    #[error("invalid CPU list {0:?}: expected e.g. \"0-3,6\"")]
    CpuList(String),
}

/// The running shards.
pub struct Runtime<T: Send + 'static> {
    handles: Vec<glommio::ExecutorJoinHandle<T>>,
}

impl<T: Send + 'static> Runtime<T> {
    /// Starts one executor per shard, each running `shard_main` with its context.
    pub fn start<M, F, Fut>(config: &RuntimeConfig, shard_main: F) -> Result<Self, RuntimeError>
    where
        M: Send + 'static,
        F: Fn(ShardContext<M>) -> Fut + Send + Clone + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let nr_shards = config.nr_shards.max(1);
        let (mesh, inboxes) = Mesh::new(nr_shards, config.mesh_capacity);
        let mut handles = Vec::with_capacity(nr_shards);
        for (shard_id, inbox) in inboxes.into_iter().enumerate() {
            let placement = match config.cpus.is_empty() {
                true => Placement::Unbound,
                false => Placement::Fixed(config.cpus[shard_id % config.cpus.len()]),
            };
            let context = ShardContext {
                shard_id,
                nr_shards,
                mesh: mesh.clone(),
                inbox,
            };
            let shard_main = shard_main.clone();
            let handle = LocalExecutorBuilder::new(placement)
                .name(&format!("{}-{shard_id}", config.name))
                .io_memory(config.io_memory)
                .spawn(move || shard_main(context))
                .map_err(|error| RuntimeError::Start {
                    shard: shard_id,
                    reason: error.to_string(),
                })?;
            handles.push(handle);
        }
        Ok(Self { handles })
    }

    /// Waits for every shard to finish. A shard that failed is an error: glommio would
    /// otherwise let a dead shard pass silently.
    pub fn join(self) -> Result<Vec<T>, RuntimeError> {
        self.handles
            .into_iter()
            .enumerate()
            .map(|(shard, handle)| {
                handle.join().map_err(|error| RuntimeError::Failed {
                    shard,
                    reason: error.to_string(),
                })
            })
            .collect()
    }
}

/// Parses a CPU list such as `"0-3,6"` into `[0, 1, 2, 3, 6]`.
pub fn parse_cpu_list(list: &str) -> Result<Vec<usize>, RuntimeError> {
    let invalid = || RuntimeError::CpuList(list.to_string());
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((first, last)) => {
                let first: usize = first.trim().parse().map_err(|_| invalid())?;
                let last: usize = last.trim().parse().map_err(|_| invalid())?;
                if first > last {
                    return Err(invalid());
                }
                cpus.extend(first..=last);
            }
            None => cpus.push(part.parse().map_err(|_| invalid())?),
        }
    }
    if cpus.is_empty() {
        return Err(invalid());
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,6").ok(), Some(vec![0, 1, 2, 3, 6]));
        assert_eq!(parse_cpu_list("2").ok(), Some(vec![2]));
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert!(parse_cpu_list("").is_err());
    }

    #[test]
    fn every_shard_runs_and_can_reach_the_others() {
        let config = RuntimeConfig {
            nr_shards: 2,
            cpus: Vec::new(),
            name: "test".into(),
            io_memory: 512 << 10,
            mesh_capacity: 4,
        };
        type Msg = (usize, futures::channel::oneshot::Sender<usize>);
        let runtime = Runtime::start(&config, |mut ctx: ShardContext<Msg>| async move {
            let peer = (ctx.shard_id + 1) % ctx.nr_shards;
            let me = ctx.shard_id;
            let serve = glommio::spawn_local(async move {
                // Each shard answers exactly one call.
                if let Some((n, reply)) = ctx.inbox.recv().await {
                    let _ = reply.send(n + 100);
                }
            });
            let answer = ctx.mesh.call(peer, |reply| (me, reply)).await;
            serve.await;
            answer.ok()
        });
        let results = runtime.and_then(Runtime::join).ok();
        assert_eq!(results, Some(vec![Some(100), Some(101)]));
    }
}
