//! A client connection: length-prefixed frames, read as fast as they arrive, handled
//! concurrently, answered strictly in the order they were read (Kafka clients match
//! responses to requests by order as well as by correlation id).

use crate::cluster::ListenerId;
use crate::error::Fault;
use crate::handlers::ConnectionState;
use crate::protocol::budget::{Charge, MemoryBudget};
use crate::protocol::close_log;
use crate::protocol::dispatch::{self, Routed};
use crate::protocol::shutdown::Shutdown;
use crate::security::session::Session;
use crate::security::tls::subject_of;
use crate::shard::Shard;
use bytes::Bytes;
use futures::channel::mpsc;
use futures::future::select;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

const LENGTH_PREFIX: usize = 4;
const READ_CHUNK: usize = 64 * 1024;
/// How long a closing connection waits for its client to close too (see `serve`).
const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// Why a connection's byte stream cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {0} is negative")]
    NegativeLength(i32),
    #[error("frame length {length} is over the limit of {limit} bytes")]
    TooLarge { length: usize, limit: usize },
    #[error("connection closed in the middle of a frame ({0} bytes pending)")]
    Truncated(usize),
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads length-prefixed frames from a byte stream.
///
/// Each frame is assembled in an allocation of its own, of exactly its length, so a batch
/// kept from a request (the memory backend keeps produced batches as slices of their frame)
/// holds on to its frame and nothing else. Bytes come from the socket through `staging`,
/// zeroed once (safe Rust cannot read into uninitialised memory) and reused for every read,
/// and are copied into the frame: one copy per byte, and no zeroing per frame.
pub struct FrameReader<R> {
    reader: R,
    /// `staging[start..end]`: bytes read and not yet taken into a frame. Empty until the
    /// first read.
    staging: Vec<u8>,
    start: usize,
    end: usize,
    /// The body of the frame being read, and the length its prefix claims.
    frame: Vec<u8>,
    frame_length: Option<usize>,
    max_frame: usize,
    /// What each frame is charged to, if anything.
    budget: Option<Rc<MemoryBudget>>,
    /// The frame being read, reserved before its body was.
    frame_charge: Option<Charge>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(reader: R, max_frame: usize) -> Self {
        Self {
            reader,
            staging: Vec::new(),
            start: 0,
            end: 0,
            frame: Vec::new(),
            frame_length: None,
            max_frame,
            budget: None,
            frame_charge: None,
        }
    }

    /// Charges every frame to `budget`: a frame not yet in the buffer is reserved before
    /// its body is read (waiting while the budget is spent), one already there at once.
    pub fn with_budget(mut self, budget: Rc<MemoryBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The next frame without its length prefix, or `None` at a clean end of stream.
    pub async fn read_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        Ok(self.read_charged_frame().await?.map(|(frame, _)| frame))
    }

    /// As `read_frame`, with what the frame is charged to its budget (held until its
    /// answer is written). Nothing is read while the budget, or its parent, is spent.
    pub async fn read_charged_frame(&mut self) -> Result<Option<(Bytes, Charge)>, FrameError> {
        if let Some(budget) = &self.budget {
            budget.has_room().await;
        }
        loop {
            if self.frame_length.is_none() {
                self.frame_length = self.take_length()?;
            }
            if let Some(length) = self.frame_length {
                self.take_body(length);
                if self.frame.len() == length {
                    self.frame_length = None;
                    let frame = Bytes::from(std::mem::take(&mut self.frame));
                    let charge = match (self.frame_charge.take(), &self.budget) {
                        (Some(reserved), _) => reserved,
                        (None, Some(budget)) => budget.charge(LENGTH_PREFIX + length),
                        (None, None) => Charge::none(),
                    };
                    return Ok(Some((frame, charge)));
                }
                if let (Some(budget), None) = (&self.budget, &self.frame_charge) {
                    self.frame_charge = Some(budget.reserve(LENGTH_PREFIX + length).await);
                }
            }
            if self.read_more().await? == 0 {
                let received = (self.end - self.start)
                    + self
                        .frame_length
                        .map_or(0, |_| LENGTH_PREFIX + self.frame.len());
                return match received {
                    0 => Ok(None),
                    _ => Err(FrameError::Truncated(received)),
                };
            }
        }
    }

    /// The length the next frame's prefix claims, once all four bytes of it are staged;
    /// checked before a byte is allocated for the frame.
    fn take_length(&mut self) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = self.staging[self.start..self.end].get(..LENGTH_PREFIX) else {
            return Ok(None);
        };
        let length = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let length = usize::try_from(length).map_err(|_| FrameError::NegativeLength(length))?;
        if length > self.max_frame {
            return Err(FrameError::TooLarge {
                length,
                limit: self.max_frame,
            });
        }
        self.start += LENGTH_PREFIX;
        Ok(Some(length))
    }

    /// Moves what is staged of the frame's body into the frame. The frame grows with the
    /// bytes that arrive (at most doubling), never straight to the length its prefix
    /// claims, so a lying prefix costs a client what it really sent.
    fn take_body(&mut self, length: usize) {
        let wanted = length - self.frame.len();
        let staged = &self.staging[self.start..self.end];
        let taken = &staged[..wanted.min(staged.len())];
        if self.frame.capacity() == 0 {
            self.frame = Vec::with_capacity(length.min(READ_CHUNK.max(taken.len())));
        } else if self.frame.capacity() - self.frame.len() < taken.len() {
            let grow = taken.len().max(self.frame.len()).min(wanted);
            self.frame.reserve_exact(grow);
        }
        self.frame.extend_from_slice(taken);
        self.start += taken.len();
    }

    /// Reads what the socket has into `staging` (moving the few bytes left there to its
    /// front first); how many bytes came, 0 at the end of the stream.
    async fn read_more(&mut self) -> Result<usize, FrameError> {
        if self.staging.is_empty() {
            self.staging = vec![0; READ_CHUNK];
        }
        if self.start > 0 {
            self.staging.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let read = self.reader.read(&mut self.staging[self.end..]).await?;
        self.end += read;
        Ok(read)
    }

    /// Reads and drops whatever the client still sends, until it closes its side or the
    /// stream fails. A socket closed with bytes unread is reset by the kernel, and a reset
    /// loses the answers still on their way to the client.
    pub async fn discard_until_closed(&mut self) {
        self.frame = Vec::new();
        self.frame_charge = None;
        if self.staging.is_empty() {
            self.staging = vec![0; READ_CHUNK];
        }
        while let Ok(1..) = self.reader.read(&mut self.staging).await {}
    }
}

/// Where a connection comes from and how it arrived.
pub struct Endpoint {
    pub peer: Option<SocketAddr>,
    /// The listener it was accepted on.
    pub listener: ListenerId,
    /// Whether that listener requires SASL authentication.
    pub sasl: bool,
    /// On SSL and SASL_SSL listeners: what TLS established.
    pub tls_peer: Option<TlsPeer>,
}

/// What the TLS handshake established about the client.
pub struct TlsPeer {
    /// The client's certificate (DER), when it presented one that verified.
    pub certificate: Option<Vec<u8>>,
}

/// Serves one client until it leaves, sends something that ends the conversation, or the
/// shard shuts down (then what was read is answered before the connection closes). The
/// stream is a TCP connection, or TLS over one.
pub async fn serve<S>(
    shard: Rc<Shard>,
    stream: S,
    endpoint: Endpoint,
    shutdown: Rc<Shutdown>,
    shard_memory: Rc<MemoryBudget>,
) where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let peer_addr = endpoint.peer;
    let peer = peer_addr.map_or_else(|| "unknown".to_string(), |a| a.to_string());
    let certificate_user = endpoint
        .tls_peer
        .and_then(|tls| tls.certificate)
        .and_then(|certificate| subject_of(&certificate))
        .map(|subject| shard.security.principal_mapper.user_name(&subject));
    let (reader, mut writer) = stream.split();
    let memory = MemoryBudget::new(shard.config.connection_memory_bytes, Some(shard_memory));
    let mut frames =
        FrameReader::new(reader, shard.config.max_request_size).with_budget(memory.clone());
    // The queue length bounds the requests in progress: reading pauses when it is full.
    // Each request's charge, grown by its response, is held until that is written.
    let (mut queue, mut responses) = mpsc::channel::<Routed>(shard.config.max_in_flight);
    let connection = Rc::new(ConnectionState::new(
        peer_addr,
        shutdown.clone(),
        memory.clone(),
        endpoint.listener,
        Session::new(endpoint.sasl, certificate_user),
    ));

    let writer_shutdown = shutdown.clone();
    let writer_shard = shard.clone();
    let write_loop = glommio::spawn_local(async move {
        while let Some(response) = responses.next().await {
            match response.await {
                Ok((Some(bytes), _charge)) => {
                    if writer.write_all(&bytes).await.is_err() {
                        break;
                    }
                    writer_shard.metrics.sent(bytes.len());
                    writer_shutdown.answered();
                }
                Ok((None, _charge)) => writer_shutdown.answered(),
                Err(error) => {
                    match error.fault() {
                        Fault::Gateway => tracing::error!(%error, "closing connection"),
                        _ => tracing::debug!(%error, "closing connection"),
                    }
                    break;
                }
            }
        }
        let _ = writer.close().await;
    });

    let mut watch = shutdown.watch();
    loop {
        // Stops at a frame boundary only: a request read is always queued, so answered.
        // Nothing more is read while this connection or its shard holds its budget.
        let next = pin!(frames.read_charged_frame());
        let (frame, charge) = match watch.unless_begun(next).await {
            Some(Ok(Some(read))) => read,
            Some(Ok(None)) | None => break,
            // A client that hangs up or resets is not an error of its protocol.
            Some(Err(FrameError::Io(error))) => {
                tracing::debug!(%peer, %error, "closing connection");
                break;
            }
            Some(Err(error)) => {
                close_log::closed_for_protocol_error(&shard, &peer, &error, Fault::Client);
                break;
            }
        };
        shard.metrics.received(LENGTH_PREFIX + frame.len());
        match dispatch::route(&shard, frame, charge, &connection) {
            Ok(response) => {
                if queue.send(response).await.is_err() {
                    break;
                }
            }
            Err(error) => {
                close_log::closed_for_protocol_error(&shard, &peer, &error, error.fault());
                break;
            }
        }
        // A failed authentication is answered, then the connection closes.
        if connection.session.borrow().must_close() {
            break;
        }
    }
    // Answer what was already read, then close.
    drop(watch);
    drop(queue);
    write_loop.await;
    // The answers are written and the write side is shut: the client reads them, then the
    // end of the stream. Closing the socket while it holds requests sent since (a client
    // goes on sending until it sees that end; at shutdown, requests are no longer read)
    // would reset the connection and lose the answers it has not read yet. So what comes
    // is dropped until the client closes, for a moment at most.
    let linger = pin!(glommio::timer::sleep(CLOSE_LINGER));
    select(pin!(frames.discard_until_closed()), linger).await;
    shutdown.closed();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], max_frame: usize) -> Vec<Result<Option<Bytes>, String>> {
        let mut reader = FrameReader::new(futures::io::Cursor::new(bytes.to_vec()), max_frame);
        let mut out = Vec::new();
        futures::executor::block_on(async {
            loop {
                let frame = reader.read_frame().await.map_err(|e| e.to_string());
                let stop = !matches!(frame, Ok(Some(_)));
                out.push(frame);
                if stop {
                    break;
                }
            }
        });
        out
    }

    #[test]
    fn frames_split_on_their_length_prefix() {
        let mut wire = Vec::new();
        for body in [&b"abc"[..], b"", b"hello"] {
            wire.extend_from_slice(&(body.len() as i32).to_be_bytes());
            wire.extend_from_slice(body);
        }
        let frames = read_all(&wire, 1024);
        let bodies: Vec<_> = frames.into_iter().map(|f| f.ok().flatten()).collect();
        assert_eq!(
            bodies,
            vec![
                Some(Bytes::from_static(b"abc")),
                Some(Bytes::new()),
                Some(Bytes::from_static(b"hello")),
                None
            ]
        );
    }

    /// Hands out at most `step` bytes per read, as a slow socket does.
    struct Trickle {
        bytes: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            out: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let n = self.step.min(out.len()).min(self.bytes.len() - self.at);
            out[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            std::task::Poll::Ready(Ok(n))
        }
    }

    #[test]
    fn frames_arrive_whole_in_allocations_of_their_own_however_the_bytes_are_cut() {
        let bodies: Vec<Vec<u8>> = [3, 0, 70_000, 5, 200_000, 1]
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|b| (b * 7 + i) as u8).collect())
            .collect();
        let mut wire = Vec::new();
        for body in &bodies {
            wire.extend_from_slice(&(body.len() as i32).to_be_bytes());
            wire.extend_from_slice(body);
        }
        for step in [1, 3, 4, 5, 4096, READ_CHUNK + 7, usize::MAX] {
            let source = Trickle {
                bytes: wire.clone(),
                at: 0,
                step,
            };
            let mut reader = FrameReader::new(source, 1 << 20);
            let frames: Vec<Bytes> = futures::executor::block_on(async {
                let mut frames = Vec::new();
                while let Some(frame) = reader.read_frame().await.expect("well-formed") {
                    frames.push(frame);
                }
                frames
            });
            assert_eq!(frames.len(), bodies.len(), "step {step}");
            for (frame, body) in frames.into_iter().zip(&bodies) {
                assert_eq!(&frame[..], &body[..], "step {step}");
                // Unique while the others are alive: a kept slice pins this frame only.
                // (An empty frame is a static empty buffer, holding nothing.)
                let unique = frame.is_empty() || frame.try_into_mut().is_ok();
                assert!(unique, "step {step}: a frame shares memory");
            }
        }
    }

    #[test]
    fn bad_lengths_end_the_stream_before_allocating() {
        let negative = read_all(&(-1i32).to_be_bytes(), 1024);
        assert!(negative[0].as_ref().is_err_and(|e| e.contains("negative")));
        let huge = read_all(&(2_000_000_000i32).to_be_bytes(), 1024);
        assert!(huge[0]
            .as_ref()
            .is_err_and(|e| e.contains("over the limit")));
        // A claim of the whole limit with a few bytes sent reserves about what was sent.
        let mut lying = (64i32 << 20).to_be_bytes().to_vec();
        lying.extend_from_slice(b"only this");
        let mut reader = FrameReader::new(futures::io::Cursor::new(lying), 100 << 20);
        let read = futures::executor::block_on(reader.read_frame());
        assert!(read.is_err_and(|e| e.to_string().contains("middle")));
        assert!(
            reader.frame.capacity() + reader.staging.capacity() <= 2 * READ_CHUNK,
            "{} bytes reserved for 13 received",
            reader.frame.capacity() + reader.staging.capacity()
        );
        // A real large frame still arrives whole.
        let body = vec![7u8; 3 << 20];
        let mut wire = (body.len() as i32).to_be_bytes().to_vec();
        wire.extend_from_slice(&body);
        let frames = read_all(&wire, 100 << 20);
        assert_eq!(
            frames[0].as_ref().ok().cloned().flatten().map(|f| f.len()),
            Some(3 << 20)
        );
        let mut truncated = 10i32.to_be_bytes().to_vec();
        truncated.extend_from_slice(b"abc");
        assert!(read_all(&truncated, 1024)[0]
            .as_ref()
            .is_err_and(|e| e.contains("middle")));
    }
}
