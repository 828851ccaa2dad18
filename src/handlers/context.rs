//! What a handler is given besides its request: the request's header and negotiated version,
//! and the state the requests of one connection share.

use crate::cluster::ListenerId;
use crate::protocol::budget::MemoryBudget;
use crate::protocol::shutdown::Shutdown;
use crate::security::session::Session;
use glommio::sync::Semaphore;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;

/// What a connection's requests share.
pub struct ConnectionState {
    /// Held by a Produce until its appends are queued, so a client's pipelined produce
    /// requests reach each partition in the order they were sent.
    pub produce_order: Rc<Semaphore>,
    /// As Kafka shows it in DescribeGroups: "/" and the peer's IP address.
    pub client_host: String,
    /// The peer's IP address, as ACLs match hosts (unspecified when unknown).
    pub client_ip: IpAddr,
    /// The shard's shutdown: long waits end when it begins.
    pub shutdown: Rc<Shutdown>,
    /// What the connection holds in requests and unwritten answers (within its shard's).
    pub memory: Rc<MemoryBudget>,
    /// The listener it came in on: Metadata and FindCoordinator answer with its addresses.
    pub listener: ListenerId,
    /// Who the client is and what it may send now; changed only by dispatch's
    /// authentication stage, as each request is read.
    pub session: RefCell<Session>,
}

impl ConnectionState {
    pub fn new(
        peer: Option<std::net::SocketAddr>,
        shutdown: Rc<Shutdown>,
        memory: Rc<MemoryBudget>,
        listener: ListenerId,
        session: Session,
    ) -> Self {
        Self {
            produce_order: Rc::new(Semaphore::new(1)),
            client_host: peer.map_or_else(String::new, |p| format!("/{}", p.ip())),
            client_ip: peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip()),
            shutdown,
            memory,
            listener,
            session: RefCell::new(session),
        }
    }
}

impl std::fmt::Debug for ConnectionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionState")
            .field("client_host", &self.client_host)
            .finish_non_exhaustive()
    }
}

/// What a handler is given besides its request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub version: i16,
    pub connection: Rc<ConnectionState>,
    /// Bytes of the request's frame (its own allocation, which what is kept of it pins).
    pub frame_len: usize,
}

impl RequestContext {
    /// The listener the request came in on.
    pub fn listener(&self) -> ListenerId {
        self.connection.listener
    }

    /// The client.id the request carries ("" when none).
    pub fn client_id(&self) -> String {
        self.header
            .client_id
            .as_ref()
            .map_or_else(String::new, |c| c.to_string())
    }
}

/// A handler's answer; `None` sends nothing back. (A Produce with acks=0 is answered too:
/// dispatch decides what reaches the client.)
pub type Reply<T> = Option<T>;
