//! Start-up: bind every shard's listeners, agree on the advertised cluster, serve.
//!
//! Clients must be told every shard's address before any shard answers Metadata, so start-up
//! has two phases: each shard binds its listeners and reports its port; the main thread then
//! builds the [`Cluster`] and hands it to every shard, and only then do they accept.

use crate::backend::memory::{MemoryBackend, SharedCatalog};
use crate::backend::smq::discovery::{self, Endpoints};
use crate::backend::smq::SmqBackend;
use crate::backend::Backend;
use crate::cluster::{Broker, Cluster};
use crate::config::{BackendKind, Config};
use crate::protocol;
use crate::shard::{Shard, ShardMessage};
use anyhow::{bail, Context};
use futures::channel::oneshot;
use glommio::net::TcpListener;
use shards::{Runtime, RuntimeConfig, ShardContext, ShardId};
use std::io::Write;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::rc::Rc;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// Locked memory glommio registers per executor; sockets do not need more.
const IO_MEMORY: usize = 512 << 10;
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long start-up waits for the SeaweedFS master to list a broker and a filer.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// What each shard needs to start, shared by all of them.
struct Startup {
    config: Arc<Config>,
    bootstrap: SocketAddr,
    bound: Mutex<mpsc::Sender<(ShardId, Result<u16, String>)>>,
    /// Taken once by each shard: where the advertised cluster will arrive.
    clusters: Mutex<Vec<Option<oneshot::Receiver<Arc<Cluster>>>>>,
    catalog: Arc<SharedCatalog>,
    /// SMQ backend: the broker and filer every shard uses.
    smq: Option<Endpoints>,
}

/// Runs tidegate until every shard stops.
pub fn run(config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let smq = match config.backend {
        BackendKind::Smq => Some(smq_endpoints(&config)?),
        BackendKind::Memory => None,
    };
    let nr_shards = config.nr_shards();
    let reservation = reserve_bootstrap_port(&config)?;
    let bootstrap = reservation.local_addr()?;
    let (bound_tx, bound_rx) = mpsc::channel();
    let (cluster_tx, cluster_rx): (Vec<_>, Vec<_>) =
        (0..nr_shards).map(|_| oneshot::channel()).unzip();
    let startup = Arc::new(Startup {
        config: config.clone(),
        bootstrap,
        bound: Mutex::new(bound_tx),
        clusters: Mutex::new(cluster_rx.into_iter().map(Some).collect()),
        catalog: Arc::default(),
        smq,
    });
    let runtime_config = RuntimeConfig {
        nr_shards,
        cpus: config.cpu_list(),
        name: "tidegate".into(),
        io_memory: IO_MEMORY,
    };
    let runtime = Runtime::start(
        &runtime_config,
        move |context: ShardContext<ShardMessage>| shard_main(context, startup.clone()),
    )?;

    let cluster = match collect_ports(&config, &bound_rx, nr_shards) {
        Ok(cluster) => Arc::new(cluster),
        Err(error) => {
            drop(cluster_tx); // Shards waiting for the cluster give up.
            let _ = runtime.join();
            return Err(error);
        }
    };
    for sender in cluster_tx {
        let _ = sender.send(cluster.clone());
    }
    drop(reservation);
    announce(bootstrap, &cluster);

    for (shard, result) in runtime.join()?.into_iter().enumerate() {
        if let Err(error) = result {
            bail!("shard {shard} stopped: {error}");
        }
    }
    Ok(())
}

/// The SMQ broker and filer: as given, or asked of the master once, before any shard
/// starts (on a short-lived executor of its own, since the gRPC client runs on glommio),
/// so that every shard uses the same ones.
fn smq_endpoints(config: &Config) -> anyhow::Result<Endpoints> {
    let master = config.smq_master().map(str::to_string);
    let broker = config.smq_broker.clone();
    let filer = config.smq_filer.clone();
    let resolved = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("tidegate-discovery")
        .io_memory(IO_MEMORY)
        .spawn(move || async move {
            discovery::resolve(
                master.as_deref(),
                broker.as_deref(),
                filer.as_deref(),
                DISCOVERY_TIMEOUT,
            )
            .await
        })
        .map_err(|e| anyhow::anyhow!("cannot start an executor to find SeaweedFS: {e}"))?
        .join()
        .map_err(|e| anyhow::anyhow!("SeaweedFS discovery stopped: {e}"))?;
    let endpoints = resolved.map_err(|e| anyhow::anyhow!(e))?;
    tracing::info!(
        broker = endpoints.broker,
        filer = endpoints.filer,
        "SeaweedFS servers"
    );
    Ok(endpoints)
}

/// Holds the bootstrap port so that `--port 0` names one port that every shard then binds
/// with SO_REUSEPORT. The socket is bound but never listens, so it takes no connections.
fn reserve_bootstrap_port(config: &Config) -> anyhow::Result<StdListener> {
    let address = SocketAddr::new(config.listen, config.port);
    if config.port != 0 {
        // glommio binds with SO_REUSEPORT, which would silently share a port with another
        // tidegate; an exclusive bind first turns that into a clear error.
        StdListener::bind(address)
            .with_context(|| format!("bootstrap port {address} is in use"))?;
    }
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(address),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_port(true)?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    Ok(socket.into())
}

fn collect_ports(
    config: &Config,
    bound: &mpsc::Receiver<(ShardId, Result<u16, String>)>,
    nr_shards: usize,
) -> anyhow::Result<Cluster> {
    let host = config.advertised_host();
    let mut ports = vec![0u16; nr_shards];
    for _ in 0..nr_shards {
        let (shard, port) = bound
            .recv_timeout(STARTUP_TIMEOUT)
            .context("shards did not start in time")?;
        ports[shard] = port.map_err(|e| anyhow::anyhow!("shard {shard}: {e}"))?;
    }
    let brokers = ports
        .into_iter()
        .enumerate()
        .map(|(shard, port)| Broker {
            node_id: config.node_id_base + shard as i32,
            host: host.clone(),
            port,
        })
        .collect();
    Ok(Cluster {
        cluster_id: "tidegate".into(),
        brokers,
    })
}

/// The one line a supervisor or test waits for.
fn announce(bootstrap: SocketAddr, cluster: &Cluster) {
    let brokers: Vec<String> = cluster
        .brokers
        .iter()
        .map(|b| format!("{}:{}", b.host, b.port))
        .collect();
    let host = cluster
        .brokers
        .first()
        .map_or("localhost", |b| b.host.as_str());
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "tidegate ready bootstrap={host}:{} brokers={}",
        bootstrap.port(),
        brokers.join(",")
    );
    let _ = stdout.flush();
    tracing::info!(bootstrap = %bootstrap, brokers = %brokers.join(","), "serving");
}

async fn shard_main(
    context: ShardContext<ShardMessage>,
    startup: Arc<Startup>,
) -> Result<(), String> {
    let shard_id = context.shard_id;
    let config = startup.config.clone();
    let listeners = bind(&config, startup.bootstrap, shard_id);
    let port = listeners
        .as_ref()
        .map(|(_, broker)| broker.local_addr().map_or(0, |a| a.port()));
    let report = startup
        .bound
        .lock()
        .map_err(|e| e.to_string())?
        .send((shard_id, port.map_err(Clone::clone)));
    report.map_err(|_| "start-up was abandoned".to_string())?;
    let (bootstrap, broker) = listeners?;

    let cluster_rx = startup
        .clusters
        .lock()
        .map_err(|e| e.to_string())?
        .get_mut(shard_id)
        .and_then(Option::take)
        .ok_or("no cluster slot for this shard")?;
    let cluster = cluster_rx
        .await
        .map_err(|_| "start-up was abandoned".to_string())?;

    let backend = match config.backend {
        BackendKind::Memory => {
            let retention = config.memory_retention_bytes;
            Backend::Memory(MemoryBackend::new(startup.catalog.clone(), retention))
        }
        BackendKind::Smq => {
            let endpoints = startup.smq.clone().ok_or("no SeaweedFS servers resolved")?;
            Backend::Smq(Box::new(SmqBackend::new(
                endpoints,
                config.smq_namespace.clone(),
                shard_id,
            )))
        }
    };
    let shard = Rc::new(Shard::new(shard_id, config, cluster, backend, context.mesh));
    // Before any append can reach this shard, from a client or from another shard.
    shard.restore_producers().await;
    glommio::spawn_local(shard.clone().serve_mesh(context.inbox)).detach();
    glommio::spawn_local(shard.clone().run_group_timers()).detach();
    glommio::spawn_local(shard.clone().expire_producers()).detach();
    if shard.backend.keeps_producers() {
        glommio::spawn_local(shard.clone().write_producer_states()).detach();
    }
    let bootstrap_loop = glommio::spawn_local(accept_loop(shard.clone(), bootstrap));
    accept_loop(shard, broker).await;
    bootstrap_loop.await;
    Ok(())
}

fn bind(
    config: &Config,
    bootstrap: SocketAddr,
    shard_id: ShardId,
) -> Result<(TcpListener, TcpListener), String> {
    let bootstrap = TcpListener::bind(bootstrap).map_err(|e| format!("bind {bootstrap}: {e}"))?;
    let port = match config.broker_port_base {
        0 => 0,
        base => base + shard_id as u16,
    };
    let address = SocketAddr::new(config.listen, port);
    if port != 0 {
        StdListener::bind(address).map_err(|e| format!("broker port {address}: {e}"))?;
    }
    let broker = TcpListener::bind(address).map_err(|e| format!("bind {address}: {e}"))?;
    Ok((bootstrap, broker))
}

async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                glommio::spawn_local(protocol::serve(shard.clone(), stream)).detach();
            }
            Err(error) => {
                // Out of file descriptors and the like: keep serving the others.
                tracing::warn!(%error, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
