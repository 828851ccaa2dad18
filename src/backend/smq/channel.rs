//! gRPC to SeaweedFS (MQ broker, filer, master) on the shard's own executor.
//!
//! tonic's `Channel` needs `Send` I/O and a Tokio runtime; neither exists on a glommio
//! shard. The generated client accepts any tower `Service` though, so this drives a hyper
//! HTTP/2 connection directly: glommio's `TcpStream` behind hyper's I/O traits, hyper's
//! background tasks spawned on the local executor, and `SendRequest` as the service.
//! One [`GrpcChannel`] serves any of the generated clients. With `--smq-tls-*` the
//! connection is TLS (rustls on the same executor, as the listeners' TLS is).

use super::proto::{SeaweedClient, SeaweedFilerClient, SeaweedMessagingClient};
use super::tls::ClientTls;
use crate::metrics::seaweedfs;
use futures::channel::oneshot;
use futures::io::{AsyncRead, AsyncWrite};
use futures_rustls::client::TlsStream;
use glommio::net::TcpStream;
use hyper::client::conn::http2;
use hyper::rt::{Read, ReadBufCursor, Write};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Bytes read from the socket per call; hyper's HTTP/2 frames are at most 16 KiB by default.
const READ_CHUNK: usize = 64 * 1024;
/// Flow-control windows large enough that a Fetch of several MiB is not throttled.
const STREAM_WINDOW: u32 = 8 << 20;
const CONNECTION_WINDOW: u32 = 32 << 20;
/// How long a new connection's server may take to say its first word (gRPC servers send
/// their HTTP/2 SETTINGS at once).
const FIRST_WORD_TIMEOUT: Duration = Duration::from_secs(10);

/// A gRPC client bound to one broker, usable only on the shard that made it.
pub type SmqClient = SeaweedMessagingClient<Http2Channel>;
/// A gRPC client bound to one filer.
pub type FilerClient = SeaweedFilerClient<Http2Channel>;
/// A gRPC client bound to one master.
pub type MasterClient = SeaweedClient<Http2Channel>;

/// One HTTP/2 connection to a gRPC server, from which clients of any service are made
/// (cheaply: a client is the channel and the origin).
#[derive(Clone)]
pub struct GrpcChannel {
    channel: Http2Channel,
    origin: http::Uri,
}

/// Why no connection was made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Nothing answers there (yet), or the connection broke: another try may work.
    #[error("{0}")]
    Unreachable(io::Error),
    /// The server will not talk with us as we are set up (TLS on one side only, a
    /// certificate refused): another try will not help.
    #[error("{0}")]
    Refused(String),
}

impl GrpcChannel {
    /// Opens an HTTP/2 connection to `address` ("host:port"), over TLS when `tls` is
    /// given, and returns once the server has spoken: a server that wants TLS closes a
    /// plain connection without a word, and a TLS 1.3 server refuses a client's
    /// certificate only after the handshake, so either shows here, not at the first call.
    pub async fn connect(address: &str, tls: Option<&ClientTls>) -> Result<Self, ConnectError> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let origin = format!("{scheme}://{address}").parse().map_err(|e| {
            ConnectError::Unreachable(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{address}: {e}"),
            ))
        })?;
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| ConnectError::Unreachable(e.into()))?;
        tcp.set_nodelay(true)
            .map_err(|e| ConnectError::Unreachable(e.into()))?;
        let stream = match tls {
            None => Stream::Plain(tcp),
            Some(tls) => {
                let (connector, server_name) =
                    tls.for_address(address).map_err(ConnectError::Refused)?;
                let stream = connector.connect(server_name, tcp).await.map_err(|e| {
                    ConnectError::Refused(format!(
                        "TLS handshake with {address} failed: {e}{}",
                        tls.explain(&e)
                    ))
                })?;
                Stream::Tls(Box::new(stream))
            }
        };
        let (spoke, heard) = oneshot::channel();
        let (sender, connection) = http2::Builder::new(LocalExecutor)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .handshake(GlommioIo::new(stream, spoke))
            .await
            .map_err(|e| ConnectError::Unreachable(io::Error::other(e)))?;
        let peer = address.to_string();
        glommio::spawn_local(async move {
            if let Err(error) = connection.await {
                tracing::warn!(peer, %error, "SeaweedFS gRPC connection ended");
            }
        })
        .detach();
        first_word(address, tls, heard).await?;
        Ok(Self {
            channel: Http2Channel { sender },
            origin,
        })
    }

    /// The connection is gone (peer closed it, or it failed): connect again.
    pub fn is_closed(&self) -> bool {
        self.channel.sender.is_closed()
    }

    pub fn broker(&self) -> SmqClient {
        SeaweedMessagingClient::with_origin(self.channel.clone(), self.origin.clone())
    }

    pub fn filer(&self) -> FilerClient {
        SeaweedFilerClient::with_origin(self.channel.clone(), self.origin.clone())
    }

    pub fn master(&self) -> MasterClient {
        SeaweedClient::with_origin(self.channel.clone(), self.origin.clone())
    }
}

/// Waits until the new connection's server has said something, and tells why it will not
/// when it ends the connection first.
async fn first_word(
    address: &str,
    tls: Option<&ClientTls>,
    spoke: oneshot::Receiver<io::Result<()>>,
) -> Result<(), ConnectError> {
    let timer = std::pin::pin!(glommio::timer::sleep(FIRST_WORD_TIMEOUT));
    let error = match futures::future::select(spoke, timer).await {
        futures::future::Either::Left((Ok(Ok(())), _)) => return Ok(()),
        futures::future::Either::Left((Ok(Err(error)), _)) => error,
        // The connection ended, on a failed write, say, before any read told us.
        futures::future::Either::Left((Err(oneshot::Canceled), _)) => {
            io::ErrorKind::UnexpectedEof.into()
        }
        futures::future::Either::Right(_) => {
            return Err(ConnectError::Unreachable(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{address} said nothing for {}s after the connection opened",
                    FIRST_WORD_TIMEOUT.as_secs()
                ),
            )))
        }
    };
    let why = match tls {
        None => {
            "; a gRPC server that wants TLS does that: if SeaweedFS's gRPC uses TLS \
             (certificates in its security.toml), give --smq-tls-ca, \
             --smq-tls-certificate and --smq-tls-key"
        }
        Some(tls) => match tls.explain(&error) {
            "" => {
                "; SeaweedFS does that when it does not accept tidegate's certificate: \
                 --smq-tls-certificate and --smq-tls-key must be a certificate signed \
                 by its grpc.ca, for client authentication"
            }
            explained => explained,
        },
    };
    Err(ConnectError::Refused(format!(
        "{address} ended the connection before a word of HTTP/2 ({error}){why}"
    )))
}

/// The tower service tonic's generated client calls: one HTTP/2 connection. Every call is
/// counted here (`metrics::seaweedfs`): made, answered after how long, failed with what.
#[derive(Clone)]
pub struct Http2Channel {
    sender: http2::SendRequest<tonic::body::Body>,
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<CountedBody>, hyper::Error>>>>;

impl tower_service::Service<http::Request<tonic::body::Body>> for Http2Channel {
    type Response = http::Response<CountedBody>;
    type Error = hyper::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.sender.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let rpc = seaweedfs::rpc(request.uri().path());
        seaweedfs::called(rpc);
        let started = Instant::now();
        let response = self.sender.send_request(request);
        Box::pin(async move {
            let response = response
                .await
                .inspect_err(|_| seaweedfs::failed(rpc, "transport"))?;
            seaweedfs::answered(rpc, started.elapsed());
            // A failure answered at once comes as headers only (grpc-status among them);
            // otherwise the status is in the trailers, which the body sees.
            let failed = match response.headers().get("grpc-status") {
                Some(status) => seaweedfs::status_name(status.as_bytes()),
                None if response.status() != http::StatusCode::OK => Some("Unknown"),
                None => None,
            };
            if let Some(code) = failed {
                seaweedfs::failed(rpc, code);
            }
            let counted = failed.is_none().then_some(rpc);
            Ok(response.map(|body| CountedBody { body, rpc: counted }))
        })
    }
}

/// A response body that counts the call as failed if its trailers carry a gRPC status other
/// than OK, or the body breaks.
pub struct CountedBody {
    body: hyper::body::Incoming,
    /// The RPC, until its outcome is counted.
    rpc: Option<usize>,
}

impl hyper::body::Body for CountedBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if let (Poll::Ready(outcome), Some(rpc)) = (&frame, this.rpc) {
            let failed = match outcome {
                Some(Ok(received)) => match received.trailers_ref() {
                    Some(trailers) => trailers
                        .get("grpc-status")
                        .map_or(Some("Unknown"), |s| seaweedfs::status_name(s.as_bytes())),
                    None => return frame, // Data: the outcome is still to come.
                },
                Some(Err(_)) => Some("transport"),
                None => None,
            };
            this.rpc = None;
            if let Some(code) = failed {
                seaweedfs::failed(rpc, code);
            }
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Spawns hyper's connection tasks on the current glommio executor.
#[derive(Clone, Copy)]
pub(super) struct LocalExecutor;

impl<F> hyper::rt::Executor<F> for LocalExecutor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, future: F) {
        glommio::spawn_local(future).detach();
    }
}

/// The bytes under the HTTP/2 connection. An enum rather than a boxed trait object: the
/// plain path costs one match per call and no indirection.
pub(super) enum Stream {
    Plain(TcpStream),
    /// Boxed: rustls's connection state is several KiB.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Plain(tcp) => Pin::new(tcp).poll_close(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_close(cx),
        }
    }
}

/// The connection's stream behind hyper's I/O traits. Reads go through a scratch buffer
/// because filling hyper's uninitialised buffer directly would need `unsafe`.
pub(super) struct GlommioIo {
    stream: Stream,
    scratch: Vec<u8>,
    /// Told once whether the server spoke: the first bytes read, or the end of the stream
    /// or an error (reading or writing) before any.
    spoke: Option<oneshot::Sender<io::Result<()>>>,
}

impl GlommioIo {
    pub(super) fn new(stream: Stream, spoke: oneshot::Sender<io::Result<()>>) -> Self {
        Self {
            stream,
            scratch: vec![0; READ_CHUNK],
            spoke: Some(spoke),
        }
    }

    /// Tells the connect waiting on `spoke` how the first read or failed write went.
    fn tell_spoke(&mut self, outcome: &io::Result<usize>) {
        let Some(spoke) = self.spoke.take() else {
            return;
        };
        let told = match outcome {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => Ok(()),
            // The error itself goes to hyper; the waiter gets its words (and the rustls
            // error inside, for `ClientTls::explain`).
            Err(error) => Err(match error.get_ref() {
                Some(inner) => match inner.downcast_ref::<rustls::Error>() {
                    Some(tls) => io::Error::new(error.kind(), tls.clone()),
                    None => io::Error::new(error.kind(), inner.to_string()),
                },
                None => io::Error::from(error.kind()),
            }),
        };
        let _ = spoke.send(told);
    }
}

impl Read for GlommioIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let wanted = buf.remaining().min(this.scratch.len());
        let outcome = match this.stream.poll_read(cx, &mut this.scratch[..wanted]) {
            Poll::Ready(outcome) => outcome,
            Poll::Pending => return Poll::Pending,
        };
        if this.spoke.is_some() {
            this.tell_spoke(&outcome);
        }
        let read = outcome?;
        buf.put_slice(&this.scratch[..read]);
        Poll::Ready(Ok(()))
    }
}

impl Write for GlommioIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = this.stream.poll_write(cx, buf);
        if let Poll::Ready(failed @ Err(_)) = &outcome {
            this.tell_spoke(failed);
        }
        outcome
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().stream.poll_close(cx)
    }
}
