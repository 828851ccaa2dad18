//! Start-up: bind every shard's listeners, agree on the advertised cluster, serve.
//!
//! Clients must be told every shard's address before any shard answers Metadata, so start-up
//! has two phases: each shard binds its listeners and reports its port; the main thread then
//! builds the [`Cluster`] and hands it to every shard, and only then do they accept.

use crate::backend::{self, Backend};
use crate::cluster::{Broker, Cluster, ListenerId};
use crate::config::{Config, Listener};
use crate::error::Fault;
use crate::protocol;
use crate::protocol::admission::Admission;
use crate::protocol::budget::MemoryBudget;
use crate::protocol::close_log;
use crate::protocol::shutdown::{Drained, Shutdown};
use crate::security::tls::ServerTls;
use crate::security::Security;
use crate::shard::{Shard, ShardMessage};
use anyhow::{bail, Context};
use futures::channel::oneshot;
use futures::future::{select, Either};
use glommio::net::TcpListener;
use shards::{Runtime, RuntimeConfig, RuntimeError, ShardContext, ShardId};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
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

/// Each shard's broker port on each listener, in the order of `Config::listeners()`.
type BoundPorts = (ShardId, Result<Vec<u16>, String>);

/// What each shard needs to start, shared by all of them.
struct Startup {
    config: Arc<Config>,
    listeners: Vec<Listener>,
    /// Each listener's bootstrap address, its port reserved.
    bootstraps: Vec<SocketAddr>,
    /// The TLS configuration of SSL and SASL_SSL listeners.
    tls: Option<Arc<ServerTls>>,
    security: Arc<Security>,
    bound: Mutex<mpsc::Sender<BoundPorts>>,
    /// Taken once by each shard: what the main thread will tell it.
    controls: Mutex<Vec<Option<ShardControl>>>,
    /// Where shards report that they have drained.
    events: Mutex<mpsc::Sender<Event>>,
    /// What each shard opens its own stores from.
    backend: Backend,
    /// The connection limits, shared by every shard's listeners.
    admission: Arc<Admission>,
    /// `--metrics-addr`, listening: taken by shard 0, which serves it.
    metrics: Mutex<Option<Socket>>,
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
    let listeners = config.listeners();
    // First, before any SeaweedFS work: a tidegate refused its ports reads and deletes nothing.
    check_fixed_ports(&config, &listeners)?;
    let (tls, security) = read_files(&config)?;
    let metrics = config.metrics_addr.map(metrics_socket).transpose()?;
    let metrics_addr = metrics.as_ref().map(|(_, address)| *address);
    warn_of_open_listeners(&config, &listeners);
    let backend = backend::open(&config, &security)?;
    let nr_shards = config.nr_shards();
    let reservations = reserve_bootstrap_ports(&listeners)?;
    let bootstraps = reservations
        .iter()
        .map(StdListener::local_addr)
        .collect::<std::io::Result<Vec<_>>>()?;
    let (bound_tx, bound_rx) = mpsc::channel();
    let (controls, control_rx) = shard_controls(nr_shards);
    let (events_tx, events) = mpsc::channel();
    // From here on a signal is a request to shut down gracefully (before, it ends start-up
    // at once, which has nothing to drain).
    let signals = Signals::new([SIGTERM, SIGINT, SIGHUP])
        .context("cannot handle SIGTERM, SIGINT and SIGHUP")?;
    let startup = Arc::new(Startup {
        config: config.clone(),
        listeners: listeners.clone(),
        bootstraps: bootstraps.clone(),
        tls: tls.clone(),
        security,
        bound: Mutex::new(bound_tx),
        controls: Mutex::new(control_rx),
        events: Mutex::new(events_tx.clone()),
        backend,
        admission: Admission::new(config.max_connections, config.max_connections_per_ip),
        metrics: Mutex::new(metrics.map(|(socket, _)| socket)),
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

    let cluster = match collect_ports(&config, &listeners, &bound_rx, nr_shards) {
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
    drop(reservations);
    announce(&listeners, &bootstraps, &cluster, metrics_addr);

    let ended = events_tx.clone();
    std::thread::Builder::new()
        .name("tidegate-join".into())
        .spawn(move || {
            let _ = ended.send(Event::Ended(runtime.join()));
        })?;
    let timeout = Duration::from_millis(config.shutdown_timeout_ms);
    watch_signals(signals, events_tx, timeout, tls)?;
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

/// What `--check-config` checks beyond `Config::validate`: everything start-up reads before
/// it touches the network or a port (certificates, keys, users).
pub fn check(config: &Config) -> anyhow::Result<()> {
    read_files(config)?;
    if config.backend == crate::config::BackendKind::Smq {
        backend::smq::tls::ClientTls::from_config(config).map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

/// The listeners' TLS configuration and the users, from the files the flags name.
fn read_files(config: &Config) -> anyhow::Result<(Option<Arc<ServerTls>>, Arc<Security>)> {
    let tls = ServerTls::from_config(config).map_err(anyhow::Error::msg)?;
    let security = Security::from_config(config).map_err(anyhow::Error::msg)?;
    Ok((tls, security))
}

/// Turns the first SIGTERM or SIGINT into an `Event::Signal`; a second one, or the first
/// one's shutdown outlasting `timeout`, ends the process at once. SIGHUP reads the TLS
/// files again.
fn watch_signals(
    mut signals: Signals,
    events: mpsc::Sender<Event>,
    timeout: Duration,
    tls: Option<Arc<ServerTls>>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("tidegate-signals".into())
        .spawn(move || {
            let reload = |tls: &Option<Arc<ServerTls>>| match tls.as_ref().map(|t| t.reload()) {
                Some(Ok(())) => tracing::info!("SIGHUP: TLS certificate files read again"),
                Some(Err(error)) => tracing::error!(
                    %error,
                    "SIGHUP: cannot read the TLS files; the certificate in use stays"
                ),
                None => tracing::info!("SIGHUP: no TLS listener, nothing to read again"),
            };
            let mut received = signals.forever().filter(|&signal| {
                if signal == SIGHUP {
                    reload(&tls);
                }
                signal != SIGHUP
            });
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

/// Holds each listener's bootstrap port so that port 0 names one port that every shard
/// then binds with SO_REUSEPORT. The sockets are bound but never listen, so they take no
/// connections.
fn reserve_bootstrap_ports(listeners: &[Listener]) -> anyhow::Result<Vec<StdListener>> {
    listeners
        .iter()
        .map(|l| {
            let address = SocketAddr::new(l.address, l.port);
            let socket = shared_socket(address)
                .with_context(|| format!("listener {}: bind {address}", l.name))?;
            Ok(socket.into())
        })
        .collect()
}

/// The shards' listeners share their ports (SO_REUSEPORT), so they would also share a fixed
/// port with another tidegate, silently; an exclusive bind of each first turns that into a
/// clear error.
fn check_fixed_ports(config: &Config, listeners: &[Listener]) -> anyhow::Result<()> {
    for listener in listeners {
        let name = &listener.name;
        if listener.port != 0 {
            let address = SocketAddr::new(listener.address, listener.port);
            wait_until_free(address)
                .with_context(|| format!("listener {name}: bootstrap port {address} is in use"))?;
        }
        for shard_id in 0..config.nr_shards() {
            if let Some(port) = listener.broker_port(shard_id) {
                let address = SocketAddr::new(listener.address, port);
                wait_until_free(address)
                    .with_context(|| format!("listener {name}: broker port {address} is in use"))?;
            }
        }
    }
    Ok(())
}

/// A listener anyone can use without authenticating, on an address others can reach, is
/// allowed only with --allow-unauthenticated (`Config::validate`); it is said once here.
fn warn_of_open_listeners(config: &Config, listeners: &[Listener]) {
    for listener in listeners {
        if !config.authenticates(listener) && !listener.address.is_loopback() {
            tracing::warn!(
                listener = %listener.name,
                protocol = listener.protocol.name(),
                address = %listener.address,
                "this listener does not authenticate clients and is reachable beyond this host \
                 (--allow-unauthenticated): anyone who reaches it acts as User:ANONYMOUS"
            );
        }
    }
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

/// A shard's listener on `address`.
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = shared_socket(address)?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(on_this_shard(socket))
}

/// A listening socket handed to this shard's executor. glommio takes a socket with options
/// of our own only as a raw descriptor, hence the one `unsafe` in the crate.
#[allow(unsafe_code)]
fn on_this_shard(listening: Socket) -> TcpListener {
    // SAFETY: the descriptor is a listening TCP socket that this function alone owns, and
    // into_raw_fd gives up that ownership, so the TcpListener is its only owner.
    unsafe { TcpListener::from_raw_fd(listening.into_raw_fd()) }
}

/// `--metrics-addr`, bound and listening before start-up goes further (a port in use is a
/// start-up error), for shard 0 to serve; and the address it got (port 0: a free one). Not
/// shared like the Kafka ports: one tidegate per address.
fn metrics_socket(address: SocketAddr) -> anyhow::Result<(Socket, SocketAddr)> {
    let bind = || -> std::io::Result<(Socket, SocketAddr)> {
        let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.bind(&address.into())?;
        socket.listen(LISTEN_BACKLOG)?;
        let bound = socket.local_addr()?.as_socket().unwrap_or(address);
        Ok((socket, bound))
    };
    bind().with_context(|| format!("--metrics-addr {address}"))
}

fn collect_ports(
    config: &Config,
    listeners: &[Listener],
    bound: &mpsc::Receiver<BoundPorts>,
    nr_shards: usize,
) -> anyhow::Result<Cluster> {
    let mut ports = vec![Vec::new(); nr_shards];
    for _ in 0..nr_shards {
        let (shard, shard_ports) = bound
            .recv_timeout(STARTUP_TIMEOUT)
            .context("shards did not start in time")?;
        ports[shard] = shard_ports.map_err(|e| anyhow::anyhow!("shard {shard}: {e}"))?;
    }
    let listeners = listeners
        .iter()
        .enumerate()
        .map(|(id, listener)| {
            ports
                .iter()
                .enumerate()
                .map(|(shard, shard_ports)| Broker {
                    node_id: config.node_id_base + shard as i32,
                    host: listener.advertised_host.clone(),
                    port: shard_ports.get(id).copied().unwrap_or(0),
                })
                .collect()
        })
        .collect();
    Ok(Cluster {
        cluster_id: "tidegate".into(),
        listeners,
    })
}

/// The one line a supervisor or test waits for: the first listener's bootstrap address and
/// brokers, then every listener's bootstrap address by name, and `--metrics-addr`'s.
fn announce(
    listeners: &[Listener],
    bootstraps: &[SocketAddr],
    cluster: &Cluster,
    metrics: Option<SocketAddr>,
) {
    let address = |id: ListenerId, port: u16| {
        let host = listeners
            .get(id)
            .map_or("localhost", |l| &l.advertised_host);
        format!("{host}:{port}")
    };
    let brokers: Vec<String> = cluster
        .brokers(0)
        .iter()
        .map(|b| address(0, b.port))
        .collect();
    let named: Vec<String> = listeners
        .iter()
        .zip(bootstraps)
        .enumerate()
        .map(|(id, (l, bootstrap))| format!("{}@{}", l.name, address(id, bootstrap.port())))
        .collect();
    let first = bootstraps.first().map_or(0, SocketAddr::port);
    let metrics = metrics.map_or_else(String::new, |a| format!(" metrics={a}"));
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "tidegate ready bootstrap={} brokers={} listeners={}{metrics}",
        address(0, first),
        brokers.join(","),
        named.join(",")
    );
    let _ = stdout.flush();
    for (listener, bootstrap) in listeners.iter().zip(bootstraps) {
        tracing::info!(
            listener = %listener.name,
            protocol = listener.protocol.name(),
            bootstrap = %bootstrap,
            "serving"
        );
    }
}

async fn shard_main(
    context: ShardContext<ShardMessage>,
    startup: Arc<Startup>,
) -> Result<(), String> {
    let shard_id = context.shard_id;
    let config = startup.config.clone();
    let sockets = bind(&startup, shard_id);
    let ports = sockets.as_ref().map(|bound| {
        bound
            .iter()
            .map(|(_, broker)| broker.local_addr().map_or(0, |a| a.port()))
            .collect()
    });
    let report = startup
        .bound
        .lock()
        .map_err(|e| e.to_string())?
        .send((shard_id, ports.map_err(Clone::clone)));
    report.map_err(|_| "start-up was abandoned".to_string())?;
    let sockets = sockets?;

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
    let shard = Rc::new(Shard::new(
        shard_id,
        config,
        cluster,
        startup.security.clone(),
        stores,
        context.mesh,
    ));
    shard.start_background(context.inbox);
    let shutdown = Rc::new(Shutdown::default());
    let memory = shard.memory.clone();
    let metrics = startup.metrics.lock().map_err(|e| e.to_string())?.take();
    let serving_metrics = async {
        match metrics {
            Some(socket) => crate::metrics::http::serve(shard.clone(), on_this_shard(socket)).await,
            None => futures::future::pending().await,
        }
    };
    let accepting = futures::future::join_all(sockets.into_iter().enumerate().flat_map(
        |(listener, (bootstrap, broker))| {
            let port = ListenerPort {
                listener,
                sasl: startup.listeners[listener].protocol.uses_sasl(),
                tls: startup.listeners[listener]
                    .protocol
                    .uses_tls()
                    .then(|| startup.tls.clone())
                    .flatten(),
            };
            [
                accept_loop(
                    &shard,
                    bootstrap,
                    port.clone(),
                    &startup,
                    &shutdown,
                    &memory,
                ),
                accept_loop(&shard, broker, port, &startup, &shutdown, &memory),
            ]
        },
    ));
    let serving = futures::future::join(accepting, serving_metrics);
    shard.metrics.set_listening(true);
    // The accept loops never end by themselves; leaving them drops the listeners.
    if let Either::Left(_) = select(std::pin::pin!(serving), control.stop).await {
        return Err("stopped accepting".into());
    }
    shard.metrics.set_listening(false);
    let drained = shutdown.drain().await;
    let report = startup.events.lock().map_err(|e| e.to_string())?.clone();
    let _ = report.send(Event::Drained(drained));
    let _ = control.close.await;
    shard.partitions.close().await;
    Ok(())
}

/// Each listener's bootstrap and broker sockets for shard `shard_id`.
fn bind(startup: &Startup, shard_id: ShardId) -> Result<Vec<(TcpListener, TcpListener)>, String> {
    startup
        .listeners
        .iter()
        .zip(&startup.bootstraps)
        .map(|(listener, &bootstrap)| {
            let name = &listener.name;
            let bootstrap =
                listen(bootstrap).map_err(|e| format!("listener {name}: bind {bootstrap}: {e}"))?;
            let port = listener.broker_port(shard_id).unwrap_or(0);
            let address = SocketAddr::new(listener.address, port);
            let broker =
                listen(address).map_err(|e| format!("listener {name}: bind {address}: {e}"))?;
            Ok((bootstrap, broker))
        })
        .collect()
}

/// What a connection accepted on a port needs to know of its listener.
#[derive(Clone)]
struct ListenerPort {
    listener: ListenerId,
    /// Whether clients must authenticate with SASL first.
    sasl: bool,
    /// For SSL and SASL_SSL listeners: the TLS configuration.
    tls: Option<Arc<ServerTls>>,
}

async fn accept_loop(
    shard: &Rc<Shard>,
    listener: TcpListener,
    port: ListenerPort,
    startup: &Startup,
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
                match startup.admission.admit(peer) {
                    Ok(slot) => {
                        let shard = shard.clone();
                        let shutdown = shutdown.clone();
                        let memory = memory.clone();
                        let port = port.clone();
                        shard.metrics.connection_accepted();
                        glommio::spawn_local(async move {
                            serve(shard.clone(), stream, port, shutdown, memory).await;
                            shard.metrics.connection_closed();
                            drop(slot);
                            drop(pass);
                        })
                        .detach();
                    }
                    // Dropping the stream closes it; a client retrying in a loop is
                    // logged within the shard's rate of such lines.
                    Err(reason) => {
                        shard.metrics.connection_refused();
                        if let Some(suppressed) = shard.close_log.admit(Instant::now()) {
                            tracing::warn!(%peer, %reason, suppressed, "connection refused");
                        }
                    }
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

/// Serves one accepted connection, over TLS on SSL and SASL_SSL listeners.
async fn serve(
    shard: Rc<Shard>,
    stream: glommio::net::TcpStream,
    port: ListenerPort,
    shutdown: Rc<Shutdown>,
    memory: Rc<MemoryBudget>,
) {
    let peer = stream.peer_addr().ok();
    let _ = stream.set_nodelay(true);
    let Some(tls) = port.tls else {
        let endpoint = protocol::Endpoint {
            peer,
            listener: port.listener,
            sasl: port.sasl,
            tls_peer: None,
        };
        return protocol::serve(shard, stream, endpoint, shutdown, memory).await;
    };
    // A client that stalls its handshake is closed; the handshake also ends on shutdown.
    let handshake = async {
        let accept = std::pin::pin!(tls.acceptor(port.sasl).accept(stream));
        let timeout = Duration::from_millis(shard.config.ssl_handshake_timeout_ms);
        let deadline = std::pin::pin!(glommio::timer::sleep(timeout));
        match select(accept, deadline).await {
            Either::Left((accepted, _)) => accepted,
            Either::Right(_) => Err(std::io::Error::new(
                ErrorKind::TimedOut,
                "no TLS handshake within --ssl-handshake-timeout-ms",
            )),
        }
    };
    let stream = match shutdown.unless_begun(handshake).await {
        Some(Ok(stream)) => stream,
        Some(Err(error)) => {
            let peer = peer.map_or_else(|| "unknown".into(), |p| p.to_string());
            let error = format!("TLS handshake failed: {error}");
            return close_log::closed_for_protocol_error(&shard, &peer, &error, Fault::Client);
        }
        None => return,
    };
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|c| c.to_vec());
    let endpoint = protocol::Endpoint {
        peer,
        listener: port.listener,
        sasl: port.sasl,
        tls_peer: Some(protocol::TlsPeer { certificate }),
    };
    protocol::serve(shard, stream, endpoint, shutdown, memory).await;
}
