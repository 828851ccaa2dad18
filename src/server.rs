//! Start-up: bind every shard's listeners, agree on the advertised cluster, serve.
//!
//! Clients must be told every shard's address before any shard answers Metadata, so start-up
//! has two phases: each shard binds its listeners and reports its port; the main thread then
//! builds the [`Cluster`] and hands it to every shard, and only then do they accept.

use crate::backend::{self, Backend, StoredProducer};
use crate::cluster::{Broker, Cluster};
use crate::config::Config;
use crate::protocol;
use crate::protocol::admission::Admission;
use crate::shard::{Shard, ShardMessage};
use anyhow::{bail, Context};
use futures::channel::oneshot;
use glommio::net::TcpListener;
use shards::{Runtime, RuntimeConfig, ShardContext, ShardId};
use socket2::{Domain, Socket, Type};
use std::io::{ErrorKind, Write};
use std::net::{IpAddr, SocketAddr, TcpListener as StdListener};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Locked memory glommio registers per executor; sockets do not need more.
const IO_MEMORY: usize = 512 << 10;
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a fixed port still held by a predecessor is waited for (see `wait_until_free`).
const PORT_RELEASE_WAIT: Duration = Duration::from_secs(1);
/// Connections the kernel queues per listener before accept: glommio's own choice.
const LISTEN_BACKLOG: i32 = 1024;

/// What each shard needs to start, shared by all of them.
struct Startup {
    config: Arc<Config>,
    bootstrap: SocketAddr,
    bound: Mutex<mpsc::Sender<(ShardId, Result<u16, String>)>>,
    /// Taken once by each shard: where the advertised cluster will arrive.
    clusters: Mutex<Vec<Option<oneshot::Receiver<Arc<Cluster>>>>>,
    /// What each shard opens its own stores from.
    backend: Backend,
    /// The connection limits, shared by every shard's listeners.
    admission: Arc<Admission>,
    /// Idempotent producers' states earlier runs stored; each shard takes out its own.
    producers: Mutex<Vec<StoredProducer>>,
}

/// Runs tidegate until every shard stops.
pub fn run(config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    // First, before any SeaweedFS work: a tidegate refused its ports reads and deletes nothing.
    check_fixed_ports(&config)?;
    let (backend, producers) = backend::open(&config)?;
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
        backend,
        admission: Admission::new(config.max_connections, config.max_connections_per_ip),
        producers: Mutex::new(producers),
    });
    let runtime_config = RuntimeConfig {
        nr_shards,
        cpus: config.cpu_list(),
        name: "tidegate".into(),
        io_memory: IO_MEMORY,
        mesh_capacity: config.mesh_queue_capacity,
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

/// Holds the bootstrap port so that `--port 0` names one port that every shard then binds
/// with SO_REUSEPORT. The socket is bound but never listens, so it takes no connections.
fn reserve_bootstrap_port(config: &Config) -> anyhow::Result<StdListener> {
    let address = SocketAddr::new(config.listen, config.port);
    Ok(shared_socket(address)?.into())
}

/// The shards' listeners share their ports (SO_REUSEPORT), so they would also share a fixed
/// port with another tidegate, silently; an exclusive bind of each first turns that into a
/// clear error.
fn check_fixed_ports(config: &Config) -> anyhow::Result<()> {
    if config.port != 0 {
        let address = SocketAddr::new(config.listen, config.port);
        wait_until_free(address).with_context(|| format!("bootstrap port {address} is in use"))?;
    }
    for shard_id in 0..config.nr_shards() {
        if let Some(port) = broker_port(config, shard_id) {
            let address = SocketAddr::new(config.listen, port);
            wait_until_free(address).with_context(|| format!("broker port {address} is in use"))?;
        }
    }
    Ok(())
}

/// Binds `address` exclusively and lets it go again. A tidegate restarted right after a
/// crash can find its predecessor's listeners still open for some milliseconds (the kernel
/// closes an io_uring process's sockets after the process is reaped), so a port in use is
/// tried again for up to `PORT_RELEASE_WAIT` before that counts.
fn wait_until_free(address: SocketAddr) -> std::io::Result<()> {
    let deadline = Instant::now() + PORT_RELEASE_WAIT;
    loop {
        match StdListener::bind(address) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Shard `shard_id`'s fixed broker port, or `None` for any free one.
fn broker_port(config: &Config, shard_id: ShardId) -> Option<u16> {
    match config.broker_port_base {
        0 => None,
        base => Some(base + shard_id as u16), // validated to stay below 65536
    }
}

/// A socket bound to `address` that every shard can bind too (SO_REUSEPORT), and that a
/// restarted tidegate can bind while its predecessor's connections on the port still sit in
/// TIME_WAIT, for a minute after it stopped (SO_REUSEADDR, which glommio's own bind leaves
/// out: restarts on a fixed port then failed with "address in use").
fn shared_socket(address: SocketAddr) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_port(true)?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    Ok(socket)
}

/// A shard's listener on `address`. glommio takes a socket with options of our own only as a
/// raw descriptor, hence the one `unsafe` in the crate.
#[allow(unsafe_code)]
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = shared_socket(address)?;
    socket.listen(LISTEN_BACKLOG)?;
    // SAFETY: the descriptor is a listening TCP socket that this function alone owns, and
    // into_raw_fd gives up that ownership, so the TcpListener is its only owner.
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
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

    let stores = startup.backend.open_shard(shard_id);
    let shard = Rc::new(Shard::new(shard_id, config, cluster, stores, context.mesh));
    // Before any append can reach this shard, from a client or from another shard.
    shard.restore_producers(&mut *startup.producers.lock().map_err(|e| e.to_string())?);
    shard.start_background(context.inbox);
    let admission = startup.admission.clone();
    let bootstrap_loop =
        glommio::spawn_local(accept_loop(shard.clone(), bootstrap, admission.clone()));
    accept_loop(shard, broker, admission).await;
    bootstrap_loop.await;
    Ok(())
}

fn bind(
    config: &Config,
    bootstrap: SocketAddr,
    shard_id: ShardId,
) -> Result<(TcpListener, TcpListener), String> {
    let bootstrap = listen(bootstrap).map_err(|e| format!("bind {bootstrap}: {e}"))?;
    let address = SocketAddr::new(config.listen, broker_port(config, shard_id).unwrap_or(0));
    let broker = listen(address).map_err(|e| format!("bind {address}: {e}"))?;
    Ok((bootstrap, broker))
}

async fn accept_loop(shard: Rc<Shard>, listener: TcpListener, admission: Arc<Admission>) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let peer = stream
                    .peer_addr()
                    .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
                match admission.admit(peer) {
                    Ok(slot) => {
                        let shard = shard.clone();
                        glommio::spawn_local(async move {
                            protocol::serve(shard, stream).await;
                            drop(slot);
                        })
                        .detach();
                    }
                    // Dropping the stream closes it.
                    Err(reason) => tracing::warn!(%peer, %reason, "connection refused"),
                }
            }
            Err(error) => {
                // Out of file descriptors and the like: keep serving the others.
                tracing::warn!(%error, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
