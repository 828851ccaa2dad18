//! gRPC to SeaweedFS (MQ broker, filer, master) on the shard's own executor.
//!
//! tonic's `Channel` needs `Send` I/O and a Tokio runtime; neither exists on a glommio
//! shard. The generated client accepts any tower `Service` though, so this drives a hyper
//! HTTP/2 connection directly: glommio's `TcpStream` behind hyper's I/O traits, hyper's
//! background tasks spawned on the local executor, and `SendRequest` as the service.
//! One [`GrpcChannel`] serves any of the generated clients.

use super::proto::{SeaweedClient, SeaweedFilerClient, SeaweedMessagingClient};
use futures::io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use hyper::client::conn::http2;
use hyper::rt::{Read, ReadBufCursor, Write};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Bytes read from the socket per call; hyper's HTTP/2 frames are at most 16 KiB by default.
const READ_CHUNK: usize = 64 * 1024;
/// Flow-control windows large enough that a Fetch of several MiB is not throttled.
const STREAM_WINDOW: u32 = 8 << 20;
const CONNECTION_WINDOW: u32 = 32 << 20;

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

impl GrpcChannel {
    /// Opens an HTTP/2 connection to `address` ("host:port").
    pub async fn connect(address: &str) -> io::Result<Self> {
        let origin = format!("http://{address}")
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{address}: {e}")))?;
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http2::Builder::new(LocalExecutor)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .handshake(GlommioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        let peer = address.to_string();
        glommio::spawn_local(async move {
            if let Err(error) = connection.await {
                tracing::warn!(peer, %error, "SeaweedFS gRPC connection ended");
            }
        })
        .detach();
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

/// The tower service tonic's generated client calls: one HTTP/2 connection.
#[derive(Clone)]
pub struct Http2Channel {
    sender: http2::SendRequest<tonic::body::Body>,
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<hyper::body::Incoming>, hyper::Error>>>>;

impl tower_service::Service<http::Request<tonic::body::Body>> for Http2Channel {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.sender.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.sender.send_request(request))
    }
}

/// Spawns hyper's connection tasks on the current glommio executor.
#[derive(Clone, Copy)]
struct LocalExecutor;

impl<F> hyper::rt::Executor<F> for LocalExecutor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, future: F) {
        glommio::spawn_local(future).detach();
    }
}

/// glommio's socket behind hyper's I/O traits. Reads go through a scratch buffer because
/// filling hyper's uninitialised buffer directly would need `unsafe`.
struct GlommioIo {
    stream: TcpStream,
    scratch: Vec<u8>,
}

impl GlommioIo {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            scratch: vec![0; READ_CHUNK],
        }
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
        match Pin::new(&mut this.stream).poll_read(cx, &mut this.scratch[..wanted]) {
            Poll::Ready(Ok(read)) => {
                buf.put_slice(&this.scratch[..read]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Write for GlommioIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_close(cx)
    }
}
