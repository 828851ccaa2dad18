//! Dispatch: decode a frame by its API key, check the version against the table in
//! `handlers` (once, here), let the authentication stage admit it, start the handler, and
//! encode its answer at the negotiated version.
//!
//! Authorization is the next stage ([`authorization`]): after decoding, before the
//! handler starts, the ACLs narrow the request or answer it.
//!
//! Authentication is one stage here, before any handler runs, so no handler can forget it:
//! each frame is admitted by the connection's [`Session`](crate::security::session), and
//! the SASL requests are answered here as they are read, so the next frame already sees
//! their outcome.

use crate::error::Fault;
use crate::handlers::{
    self, produce, sasl_authenticate, sasl_handshake, ConnectionState, RequestContext,
};
use crate::protocol::authorization::{self, Admitted};
use crate::protocol::budget::Charge;
use crate::protocol::error_codes;
use crate::security::session::{Arriving, Gate};
use crate::shard::Shard;
use bytes::{BufMut, Bytes, BytesMut};
use futures::FutureExt;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::ResponseError;
use std::rc::Rc;
use std::time::Instant;

/// Why a connection must close after a request: the third tier of failure, below a
/// partition's error code and a request's error response. Each is logged once, with whose
/// fault it is.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    // The client's: bytes that are not a request tidegate can answer.
    #[error("request of {0} bytes has no header")]
    NoHeader(usize),
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("{api:?} v{version} is not supported")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("bad {api:?} v{version} {part}: {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        /// "header" or "request".
        part: &'static str,
        reason: String,
    },
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("SASL authentication failed (SaslHandshake v0: no answer but closing)")]
    BareTokenRefused,
    /// Kafka's signal to a producer with acks=0, which reads no answers: it reconnects and
    /// refreshes its metadata.
    #[error("produce with acks=0 failed (error code {0}): closing instead of answering")]
    UnansweredProduceFailed(i16),
    // Ours: an answer the codec refused to encode (a field the version cannot carry).
    #[error("cannot encode the {api:?} v{version} response: {reason}")]
    Unencodable {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}

impl ConnectionError {
    /// Whose fault it is: the client's, or this gateway's (a bug to fix).
    pub fn fault(&self) -> Fault {
        match self {
            ConnectionError::Unencodable { .. } => Fault::Gateway,
            _ => Fault::Client,
        }
    }
}

/// A response being prepared: the encoded frame (or nothing, as for acks=0) with the
/// request's charge to the connection's memory budget, grown by the frame; or why it could
/// not be encoded.
pub type Routed = glommio::Task<Result<(Option<Bytes>, Charge), ConnectionError>>;

/// Decodes a frame and starts its handler. `Err` means the connection must close: the bytes
/// are not a request tidegate can answer (malformed, unknown API, unsupported version).
///
/// `charge` is what the frame holds of the connection's budget. The response takes it over
/// and adds its own bytes, so request and response are given back together once the
/// response is written: one charge per request, not two.
pub fn route(
    shard: &Rc<Shard>,
    frame: Bytes,
    mut charge: Charge,
    connection: &Rc<ConnectionState>,
) -> Result<Routed, ConnectionError> {
    let gate = connection.session.borrow().admit(
        || match frame.get(..2).map(|k| i16::from_be_bytes([k[0], k[1]])) {
            Some(k) if k == ApiKey::ApiVersions as i16 => Arriving::ApiVersions,
            Some(k) if k == ApiKey::SaslHandshake as i16 => Arriving::SaslHandshake,
            Some(k) if k == ApiKey::SaslAuthenticate as i16 => Arriving::SaslAuthenticate,
            _ => Arriving::Other,
        },
        Instant::now,
    );
    match gate {
        Gate::Proceed => {}
        Gate::Refuse(reason) => return Err(ConnectionError::Unauthenticated(reason)),
        Gate::RawToken => return answer_bare_token(shard, frame, charge, connection),
    }
    if frame.len() < 8 {
        return Err(ConnectionError::NoHeader(frame.len()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api = handlers::find_api(key).ok_or(ConnectionError::UnknownApi(key))?;
    if !(api.min_version..=api.max_version).contains(&version) {
        if api.key == ApiKey::ApiVersions {
            // A client newer than us: KIP-511 says answer in v0 with our ranges, so it can
            // pick a version we know.
            let bytes = unsupported_api_versions(correlation_id);
            charge.grow(bytes.len());
            return Ok(glommio::spawn_local(
                async move { Ok((Some(bytes), charge)) },
            ));
        }
        return Err(ConnectionError::UnsupportedVersion {
            api: api.key,
            version,
        });
    }
    let (context, request) = decode_request(api.key, version, frame, connection.clone())?;
    let (response, delay) = match request {
        RequestKind::SaslHandshake(request) => {
            let response = sasl_handshake::respond(shard, &context, request);
            (ResponseKind::SaslHandshake(response), None)
        }
        RequestKind::SaslAuthenticate(request) => {
            let (response, delay) = sasl_authenticate::respond(shard, &context, request);
            (ResponseKind::SaslAuthenticate(response), delay)
        }
        request => return Ok(start(shard, api, context, request, correlation_id, charge)),
    };
    let reply = Box::pin(async move {
        if let Some(delay) = delay {
            glommio::timer::sleep(delay).await;
        }
        Some(response)
    });
    Ok(encode_when_answered(
        shard,
        api.key,
        version,
        correlation_id,
        reply,
        Answer::Wanted,
        charge,
    ))
}

/// Whether the client reads an answer to a request.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Wanted,
    /// Produce with acks=0: nothing is sent, and a failure closes the connection.
    Unwanted,
}

/// Starts the handler of a request that was admitted, once the authorization stage let it
/// (narrowed to what the client may do), or answers what that stage decided.
fn start(
    shard: &Rc<Shard>,
    api: &'static handlers::Api,
    context: RequestContext,
    request: RequestKind,
    correlation_id: i32,
    charge: Charge,
) -> Routed {
    let version = context.version;
    let answer = match &request {
        RequestKind::Produce(produce) if produce.acks == 0 => Answer::Unwanted,
        _ => Answer::Wanted,
    };
    // The common case (no ACL can deny anything), and the produce path: the handler starts
    // now, and the request goes to it without passing through the stage's verdict.
    let reply = if shard.access.allows_all() {
        api.handle(shard.clone(), context, request)
    } else {
        authorized(shard, api, context, request)
    };
    encode_when_answered(
        shard,
        api.key,
        version,
        correlation_id,
        reply,
        answer,
        charge,
    )
}

/// The handler's answer to a request the authorization stage decided on: run as it is or
/// narrowed, answered by the stage itself, or run once the ids it names are resolved.
fn authorized(
    shard: &Rc<Shard>,
    api: &'static handlers::Api,
    context: RequestContext,
    request: RequestKind,
) -> futures::future::LocalBoxFuture<'static, handlers::Reply<ResponseKind>> {
    match authorization::admit(shard, &context, request, false) {
        Admitted::Run(request, None) => api.handle(shard.clone(), context, request),
        Admitted::Run(request, Some(amend)) => {
            let (shard, connection) = (shard.clone(), context.connection.clone());
            let reply = api.handle(shard.clone(), context, request);
            Box::pin(async move { amended(&shard, &connection, reply, amend).await })
        }
        Admitted::Answer(response) => Box::pin(async move { response }),
        Admitted::ResolveIds(request) => {
            let shard = shard.clone();
            Box::pin(async move {
                // A Produce takes its place among the connection's produces before the ids
                // are looked up (which may wait on the backend), so a later one that needs
                // no lookup cannot overtake it.
                let in_order = match &request {
                    RequestKind::Produce(_) => {
                        Some(context.connection.produce_order.next_turn().await)
                    }
                    _ => None,
                };
                let request = authorization::resolve_ids(&shard, request).await;
                let (request, amend) = match authorization::admit(&shard, &context, request, true) {
                    Admitted::Run(request, amend) => (request, amend),
                    Admitted::Answer(response) => return response,
                    // Resolved already: not asked again.
                    Admitted::ResolveIds(_) => return None,
                };
                let connection = context.connection.clone();
                let reply = match request {
                    RequestKind::Produce(request) => {
                        let reply =
                            produce::handle_in_order(shard.clone(), context, request, in_order);
                        reply
                            .map(|reply| reply.map(ResponseKind::Produce))
                            .boxed_local()
                    }
                    request => api.handle(shard.clone(), context, request),
                };
                match amend {
                    None => reply.await,
                    Some(amend) => amended(&shard, &connection, reply, amend).await,
                }
            })
        }
    }
}

/// The handler's answer, with the authorization stage's amendment applied to it.
async fn amended(
    shard: &Shard,
    connection: &ConnectionState,
    reply: futures::future::LocalBoxFuture<'static, handlers::Reply<ResponseKind>>,
    amend: authorization::Amend,
) -> handlers::Reply<ResponseKind> {
    let mut response = reply.await?;
    let session = connection.session.borrow();
    let who = authorization::Who {
        access: &shard.access,
        principal: session.principal(),
        host: connection.client_ip,
    };
    amend(&who, &mut response);
    Some(response)
}

/// A bare SASL token after SaslHandshake v0, answered bare (length and bytes, no header).
fn answer_bare_token(
    shard: &Rc<Shard>,
    token: Bytes,
    mut charge: Charge,
    connection: &Rc<ConnectionState>,
) -> Result<Routed, ConnectionError> {
    let answer = sasl_authenticate::respond_to_bare_token(shard, connection, &token)
        .ok_or(ConnectionError::BareTokenRefused)?;
    let mut frame = BytesMut::with_capacity(4 + answer.len());
    frame.put_i32(answer.len() as i32);
    frame.put_slice(&answer);
    let frame = frame.freeze();
    charge.grow(frame.len());
    Ok(glommio::spawn_local(
        async move { Ok((Some(frame), charge)) },
    ))
}

/// Encodes a handler's answer once it comes, adding its bytes to the request's charge.
/// Counts it in the shard's metrics, its latency taken from the handler's start to its
/// answer (the decoding before is a small part, and the writing after waits on the answers
/// before it and on the client).
fn encode_when_answered(
    shard: &Rc<Shard>,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    reply: futures::future::LocalBoxFuture<'static, handlers::Reply<ResponseKind>>,
    answer: Answer,
    mut charge: Charge,
) -> Routed {
    let started = Instant::now();
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let reply = reply.await;
        let errors = reply.as_ref().map(error_codes::of).unwrap_or_default();
        shard
            .metrics
            .answered(api_key as i16, started.elapsed(), &errors);
        match reply {
            Some(_) if answer == Answer::Unwanted => match errors.first() {
                Some(&code) => Err(ConnectionError::UnansweredProduceFailed(code)),
                None => Ok((None, charge)),
            },
            Some(response) => match encode_response(api_key, version, correlation_id, &response) {
                Ok(frame) => {
                    charge.grow(frame.len());
                    Ok((Some(frame), charge))
                }
                Err(e) => Err(ConnectionError::Unencodable {
                    api: api_key,
                    version,
                    reason: e.to_string(),
                }),
            },
            None => Ok((None, charge)),
        }
    })
}

/// Decodes the header and body of a request whose key and version were checked.
pub fn decode_request(
    api_key: ApiKey,
    version: i16,
    mut frame: Bytes,
    connection: Rc<ConnectionState>,
) -> Result<(RequestContext, RequestKind), ConnectionError> {
    let frame_len = frame.len();
    let malformed = |part, e: anyhow::Error| ConnectionError::Malformed {
        api: api_key,
        version,
        part,
        reason: e.to_string(),
    };
    let header = RequestHeader::decode(&mut frame, api_key.request_header_version(version))
        .map_err(|e| malformed("header", e))?;
    let request =
        RequestKind::decode(api_key, &mut frame, version).map_err(|e| malformed("request", e))?;
    let context = RequestContext {
        header,
        api_key,
        version,
        connection,
        frame_len,
    };
    Ok((context, request))
}

/// A whole response frame: length, header, body.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> anyhow::Result<Bytes> {
    // A Fetch response carries the records: sized exactly up front, so that copying them
    // in does not regrow (and recopy) the buffer a few hundred times (callgrind: that
    // growth was most of the fetch path's cost). Small responses are not worth a sizing pass.
    let capacity = match body {
        ResponseKind::Fetch(fetch) => {
            8 + header_size(api_key, version, correlation_id) + fetch.compute_size(version)?
        }
        _ => 256,
    };
    let mut frame = BytesMut::with_capacity(capacity);
    frame.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut frame, api_key.response_header_version(version))?;
    body.encode(&mut frame, version)?;
    let length = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    Ok(frame.freeze())
}

fn header_size(api_key: ApiKey, version: i16, correlation_id: i32) -> usize {
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .compute_size(api_key.response_header_version(version))
        .unwrap_or(0)
}

fn unsupported_api_versions(correlation_id: i32) -> Bytes {
    let response = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(handlers::api_versions::supported());
    let body = ResponseKind::ApiVersions(response);
    // v0 cannot fail to encode these fields; an empty frame would at least close cleanly.
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &body).unwrap_or_default()
}
