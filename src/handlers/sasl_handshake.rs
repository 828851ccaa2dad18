//! SaslHandshake: the client chooses a SASL mechanism. Answered by dispatch's
//! authentication stage as it is read, because it decides what the next frame may be (in
//! v0, bare SASL tokens).

use super::{str_bytes, RequestContext};
use crate::security::session::SaslError;
use crate::shard::Shard;
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::ResponseError;

pub const VERSIONS: (i16, i16) = (0, 1);

pub fn respond(
    shard: &Shard,
    context: &RequestContext,
    request: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    let offered = &shard.security.mechanisms;
    let mechanisms = offered.iter().map(|m| str_bytes(m.name())).collect();
    let response = SaslHandshakeResponse::default().with_mechanisms(mechanisms);
    let raw = context.version == 0;
    let chosen =
        context
            .connection
            .session
            .borrow_mut()
            .handshake(&request.mechanism, raw, offered);
    let code = match chosen {
        Ok(_) => return response,
        Err(SaslError::UnsupportedMechanism(_)) => ResponseError::UnsupportedSaslMechanism,
        Err(SaslError::IllegalState(_) | SaslError::Failed(_)) => ResponseError::IllegalSaslState,
    };
    tracing::warn!(
        client = %context.connection.client_host,
        mechanism = %request.mechanism,
        error = ?code,
        "SASL handshake refused"
    );
    response.with_error_code(code.code())
}
