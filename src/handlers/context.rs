//! What a handler is given besides its request: the request's header and negotiated version,
//! and the state the requests of one connection share.

use crate::cluster::ListenerId;
use crate::protocol::budget::MemoryBudget;
use crate::protocol::shutdown::Shutdown;
use crate::security::session::Session;
use futures::channel::oneshot;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use std::cell::RefCell;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;

/// What a connection's requests share.
pub struct ConnectionState {
    /// A Produce's turn is held until its appends are queued, so a client's pipelined
    /// produce requests reach each partition in the order they were sent.
    pub produce_order: ProduceOrder,
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
            produce_order: ProduceOrder::default(),
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

/// Turns for a connection's produce requests, given in the order they are asked for.
///
/// Not glommio's `Semaphore`: it hands a freed unit to whichever task polls first, so a
/// request read later, polled for the first time, could take it before an earlier one that
/// had been woken for it (seen under load: a pipelined batch stored 35 requests late).
#[derive(Default)]
pub struct ProduceOrder {
    /// Completes when the newest turn asked for is released.
    newest: RefCell<Option<oneshot::Receiver<()>>>,
}

/// A produce request's turn; the next turn begins when this one is dropped.
pub struct ProduceTurn {
    _released_when_dropped: oneshot::Sender<()>,
}

impl ProduceOrder {
    /// Asks for the next turn, in this call: turns follow the order of the calls. The turn
    /// comes once every earlier one is released.
    pub fn next_turn(&self) -> impl Future<Output = ProduceTurn> + 'static {
        let (release, released) = oneshot::channel();
        let previous = self.newest.replace(Some(released));
        async move {
            if let Some(previous) = previous {
                // Released or dropped: either way it is over.
                let _ = previous.await;
            }
            ProduceTurn {
                _released_when_dropped: release,
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn a_turn_asked_for_later_never_overtakes_a_waiting_one() {
        let order = ProduceOrder::default();
        let first = order.next_turn().now_or_never().expect("nobody before it");
        let mut second = Box::pin(order.next_turn());
        assert!(
            (&mut second).now_or_never().is_none(),
            "waits for the first"
        );
        drop(first);
        // The third asks, and is polled, before the second is polled again (what the
        // semaphore got wrong): it still waits for the second.
        let mut third = Box::pin(order.next_turn());
        assert!((&mut third).now_or_never().is_none(), "overtook the second");
        let second = (&mut second).now_or_never().expect("the second's turn");
        assert!(
            (&mut third).now_or_never().is_none(),
            "while the second holds it"
        );
        drop(second);
        assert!(third.now_or_never().is_some(), "then the third's");
    }
}
