//! Chunks of the log files SMQ flushes, read from the volume servers that store them: an
//! HTTP/1.1 GET of `/<file id>`. A request that does not accept gzip gets a chunk stored
//! compressed decompressed by the volume server. One connection per chunk: a chunk is up
//! to the broker's 8 MiB buffer, so connecting costs little beside it, and no idle
//! connection is left to break.

use super::channel::{GlommioIo, Stream};
use crate::metrics::seaweedfs;
use bytes::{Bytes, BytesMut};
use futures::future::{select, Either};
use glommio::net::TcpStream;
use hyper::body::Body;
use std::pin::{pin, Pin};
use std::time::{Duration, Instant};

/// How the metrics name a chunk read among SeaweedFS's gRPC calls (service, then call): it
/// is plain HTTP, but an operator looks for every call to SeaweedFS in one place.
const CALL_PATH: &str = "/volume_server.HTTP/GetChunk";
/// Longest one chunk may take to arrive.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest chunk read: the broker flushes its 8 MiB buffer, larger only for a single
/// record that does not fit in it.
pub const MAX_CHUNK_BYTES: u64 = 128 << 20;

/// The `size` bytes of chunk `file_id` from the volume server at `address` ("host:port"),
/// or why not.
pub async fn read_chunk(address: &str, file_id: &str, size: u64) -> Result<Bytes, String> {
    if size > MAX_CHUNK_BYTES {
        return Err(format!(
            "chunk {file_id} is {size} bytes, over {MAX_CHUNK_BYTES}"
        ));
    }
    let read = async {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| format!("cannot reach volume server {address}: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        // Whether the server spoke matters only to gRPC's connect (channel.rs).
        let (spoke, _) = futures::channel::oneshot::channel();
        let io = GlommioIo::new(Stream::Plain(tcp), spoke);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        glommio::spawn_local(async move {
            let _ = connection.await;
        })
        .detach();
        let request = http::Request::get(format!("/{file_id}"))
            .header(http::header::HOST, address)
            .body(tonic::body::Body::empty())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("GET /{file_id} from {address}: {e}"))?;
        if response.status() != http::StatusCode::OK {
            return Err(format!(
                "GET /{file_id} from {address}: {}",
                response.status()
            ));
        }
        let mut body = response.into_body();
        let mut data = BytesMut::with_capacity(size as usize);
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.map_err(|e| format!("reading /{file_id} from {address}: {e}"))?;
            if let Ok(piece) = frame.into_data() {
                if (data.len() + piece.len()) as u64 > size {
                    return Err(format!("/{file_id} from {address} is over {size} bytes"));
                }
                data.extend_from_slice(&piece);
            }
        }
        if data.len() as u64 != size {
            return Err(format!(
                "/{file_id} from {address} is {} bytes, not {size}",
                data.len()
            ));
        }
        Ok(data.freeze())
    };
    let rpc = seaweedfs::rpc(CALL_PATH);
    seaweedfs::called(rpc);
    let started = Instant::now();
    let outcome = match select(pin!(read), pin!(glommio::timer::sleep(CHUNK_TIMEOUT))).await {
        Either::Left((outcome, _)) => outcome,
        Either::Right(_) => {
            seaweedfs::failed(rpc, "DeadlineExceeded");
            return Err(format!(
                "/{file_id} from {address}: no answer in {}s",
                CHUNK_TIMEOUT.as_secs()
            ));
        }
    };
    match &outcome {
        Ok(_) => seaweedfs::answered(rpc, started.elapsed()),
        Err(_) => seaweedfs::failed(rpc, "transport"),
    }
    outcome
}
