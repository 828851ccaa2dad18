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
use crate::protocol::budget::MemoryBudget;
use crate::protocol::shutdown::{Drained, Shutdown};
use crate::shard::{Shard, ShardMessage};
use anyhow::{bail, Context};
use futures::channel::oneshot;
use futures::future::{select, Either};
use glommio::net::TcpListener;
use shards::{Runtime, RuntimeConfig, RuntimeError, ShardContext, ShardId};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
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
    /// Taken once by each shard: what the main thread will tell it.
    controls: Mutex<Vec<Option<ShardControl>>>,
    /// Where shards report that they have drained.
    events: Mutex<mpsc::Sender<Event>>,
    /// What each shard opens its own stores from.
    backend: Backend,
    /// The connection limits, shared by every shard's listeners.
    admission: Arc<Admission>,
    /// Idempotent producers' states earlier runs stored; each shard takes out its own.
    producers: Mutex<Vec<StoredProducer>>,
}

/// What the main thread tells one shard, each once, in this order.
struct ShardControl {
    /// The advertised cluster: start accepting.
    cluster: oneshot::Receiver<Arc<Cluster>>,
    /// Shutdown: stop accepting, answer what was read, close the connections.
    stop: oneshot::Receiver<()>,
    /// Every shard has drained (none will send appends across the mesh any more): finish
    /// the stores' writes and streams, and return.
    close: oneshot::Receiver<()>,
}

/// The main thread's side of each `ShardControl`.
struct ShardControls {
    cluster: Vec<oneshot::Sender<Arc<Cluster>>>,
    stop: Vec<oneshot::Sender<()>>,
    close: Vec<oneshot::Sender<()>>,
}

fn shard_controls(nr_shards: usize) -> (ShardControls, Vec<Option<ShardControl>>) {
    let mut controls = ShardControls {
        cluster: Vec::new(),
        stop: Vec::new(),
        close: Vec::new(),
    };
    let receivers = (0..nr_shards)
        .map(|_| {
            let (cluster_tx, cluster) = oneshot::channel();
            let (stop_tx, stop) = oneshot::channel();
            let (close_tx, close) = oneshot::channel();
            controls.cluster.push(cluster_tx);
            controls.stop.push(stop_tx);
            controls.close.push(close_tx);
            Some(ShardControl {
                cluster,
                stop,
                close,
            })
        })
        .collect();
    (controls, receivers)
}

/// What the main thread waits for once tidegate is serving.
enum Event {
    /// SIGTERM or SIGINT: shut down gracefully.
    Signal(i32),
    /// A shard has answered every request it had read and closed its connections.
    Drained(Drained),
    /// Every shard has stopped.
    Ended(Result<Vec<Result<(), String>>, RuntimeError>),
}

/// Runs tidegate until every shard stops: on a shard's failure, or after a graceful
/// shutdown on SIGTERM or SIGINT.
pub fn run(config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    // First, before any SeaweedFS work: a tidegate refused its ports reads and deletes nothing.
    check_fixed_ports(&config)?;
    let (backend, producers) = backend::open(&config)?;
    let nr_shards = config.nr_shards();
    let reservation = reserve_bootstrap_port(&config)?;
    let bootstrap = reservation.local_addr()?;
    let (bound_tx, bound_rx) = mpsc::channel();
    let (controls, control_rx) = shard_controls(nr_shards);
    let (events_tx, events) = mpsc::channel();
    // From here on a signal is a request to shut down gracefully (before, it ends start-up
    // at once, which has nothing to drain).
    let signals = Signals::new([SIGTERM, SIGINT]).context("cannot handle SIGTERM and SIGINT")?;
    let startup = Arc::new(Startup {
        config: config.clone(),
        bootstrap,
        bound: Mutex::new(bound_tx),
        controls: Mutex::new(control_rx),
        events: Mutex::new(events_tx.clone()),
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
            drop(controls); // Shards waiting for the cluster give up.
                            // A shard that could not start says why in its result.
            return Err(match runtime.join() {
                Err(failed) => explain_start_failure(failed, nr_shards),
                Ok(_) => error,
            });
        }
    };
    for sender in controls.cluster {
        let _ = sender.send(cluster.clone());
    }
    drop(reservation);
    announce(bootstrap, &cluster);

    let ended = events_tx.clone();
    std::thread::Builder::new()
        .name("tidegate-join".into())
        .spawn(move || {
            let _ = ended.send(Event::Ended(runtime.join()));
        })?;
    let timeout = Duration::from_millis(config.shutdown_timeout_ms);
    watch_signals(signals, events_tx, timeout)?;
    let mut stop = Some((controls.stop, controls.close));
    let mut drained = Vec::new();
    let mut shutdown_started = None;
    loop {
        match events.recv() {
            Ok(Event::Signal(signal)) => {
                let Some((stop_senders, _)) = &mut stop else {
                    continue;
                };
                tracing::info!(
                    signal,
                    timeout_ms = config.shutdown_timeout_ms,
                    "shutting down: no new connections or requests; answering those read \
                     (a second signal exits at once)"
                );
                shutdown_started = Some(Instant::now());
                for sender in stop_senders.drain(..) {
                    let _ = sender.send(());
                }
            }
            Ok(Event::Drained(shard)) => {
                drained.push(shard);
                if drained.len() == nr_shards {
                    // Appends reach a partition's owner across the mesh until every shard
                    // has drained, so the stores close only then.
                    if let Some((_, close_senders)) = stop.take() {
                        for sender in close_senders {
                            let _ = sender.send(());
                        }
                    }
                }
            }
            Ok(Event::Ended(results)) => {
                for (shard, result) in results?.into_iter().enumerate() {
                    if let Err(error) = result {
                        bail!("shard {shard} stopped: {error}");
                    }
                }
                if let Some(started) = shutdown_started {
                    let connections: usize = drained.iter().map(|d| d.connections).sum();
                    let requests: usize = drained.iter().map(|d| d.requests).sum();
                    tracing::info!(
                        connections,
                        requests,
                        took_ms = started.elapsed().as_millis() as u64,
                        "shut down: every request read was answered and every connection \
                         closed; the stores finished their writes"
                    );
                }
                return Ok(());
            }
            Err(_) => bail!("every shard's thread is gone"),
        }
    }
}

/// Turns the first SIGTERM or SIGINT into an `Event::Signal`; a second one, or the first
/// one's shutdown outlasting `timeout`, ends the process at once.
fn watch_signals(
    mut signals: Signals,
    events: mpsc::Sender<Event>,
    timeout: Duration,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("tidegate-signals".into())
        .spawn(move || {
            let mut received = signals.forever();
            let Some(first) = received.next() else {
                return;
            };
            let _ = events.send(Event::Signal(first));
            let _ = std::thread::Builder::new()
                .name("tidegate-shutdown-timeout".into())
                .spawn(move || {
                    std::thread::sleep(timeout);
                    tracing::error!(
                        timeout_ms = timeout.as_millis() as u64,
                        "shutdown did not finish within --shutdown-timeout-ms; exiting now"
                    );
                    std::process::exit(1);
                });
            if let Some(second) = received.next() {
                tracing::warn!(signal = second, "second signal: exiting now");
                std::process::exit(128 + second);
            }
        })?;
    Ok(())
}

/// A shard's executor that could not start, with what to do when the cause is the usual
/// one: io_uring could not lock the memory its rings and buffers need (ENOMEM).
fn explain_start_failure(failed: RuntimeError, nr_shards: usize) -> anyhow::Error {
    let reason = failed.to_string();
    // glommio checks the limit itself (MemLockLimit(have/need)); the kernel says ENOMEM.
    let locked_memory = ["MemLockLimit", "os error 12", "Cannot allocate memory"];
    if !locked_memory.iter().any(|m| reason.contains(m)) {
        return failed.into();
    }
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits
                .lines()
                .find(|l| l.starts_with("Max locked memory"))?;
            let soft = line.split_whitespace().nth(3)?;
            Some(match soft.parse::<u64>() {
                Ok(bytes) => format!("{} KiB", bytes >> 10),
                Err(_) => soft.to_string(),
            })
        })
        .unwrap_or_else(|| "unknown".into());
    // glommio locks IO_MEMORY per shard plus its rings: 1 MiB each leaves room.
    anyhow::anyhow!(
        "{reason}: io_uring could not lock the memory it needs. Raise the locked-memory limit \
         (now {limit}) to at least {nr_shards} MiB, 1 MiB per shard: `ulimit -l` in the shell, \
         LimitMEMLOCK= in a systemd unit, --ulimit memlock=-1 for Docker"
    )
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

    let control = startup
        .controls
        .lock()
        .map_err(|e| e.to_string())?
        .get_mut(shard_id)
        .and_then(Option::take)
        .ok_or("no control slot for this shard")?;
    let cluster = control
        .cluster
        .await
        .map_err(|_| "start-up was abandoned".to_string())?;

    let stores = startup.backend.open_shard(shard_id);
    let shard = Rc::new(Shard::new(shard_id, config, cluster, stores, context.mesh));
    // Before any append can reach this shard, from a client or from another shard.
    shard.restore_producers(&mut *startup.producers.lock().map_err(|e| e.to_string())?);
    shard.start_background(context.inbox);
    let shutdown = Rc::new(Shutdown::default());
    let memory = MemoryBudget::new(shard.config.shard_memory_bytes(), None);
    let admission = &startup.admission;
    let accepting = futures::future::join(
        accept_loop(&shard, bootstrap, admission, &shutdown, &memory),
        accept_loop(&shard, broker, admission, &shutdown, &memory),
    );
    // The accept loops never end by themselves; leaving them drops the listeners.
    if let Either::Left(_) = select(std::pin::pin!(accepting), control.stop).await {
        return Err("stopped accepting".into());
    }
    let drained = shutdown.drain().await;
    let report = startup.events.lock().map_err(|e| e.to_string())?.clone();
    let _ = report.send(Event::Drained(drained));
    let _ = control.close.await;
    shard.partitions.close().await;
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

async fn accept_loop(
    shard: &Rc<Shard>,
    listener: TcpListener,
    admission: &Arc<Admission>,
    shutdown: &Rc<Shutdown>,
    memory: &Rc<MemoryBudget>,
) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let peer = stream
                    .peer_addr()
                    .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
                let Some(pass) = shutdown.enter() else {
                    return; // Shutting down: dropping the stream closes it.
                };
                match admission.admit(peer) {
                    Ok(slot) => {
                        let shard = shard.clone();
                        let shutdown = shutdown.clone();
                        let memory = memory.clone();
                        glommio::spawn_local(async move {
                            protocol::serve(shard, stream, shutdown, memory).await;
                            drop(slot);
                            drop(pass);
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
