//! SaslAuthenticate: one SASL token each way. Answered by dispatch's authentication stage as
//! it is read, so the request after it sees the connection authenticated (or closing).
//! After SaslHandshake v0 the same tokens come bare, outside any request
//! ([`respond_to_bare_token`]).

use super::{str_bytes, RequestContext};
use crate::handlers::ConnectionState;
use crate::security::session::SaslError;
use crate::shard::Shard;
use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::ResponseError;
use std::time::{Duration, Instant};

pub const VERSIONS: (i16, i16) = (0, 2);

/// The answer, and how long to hold it back: a failed authentication is answered only after
/// `--connection-failed-authentication-delay-ms`, which slows password guessing.
pub fn respond(
    shard: &Shard,
    context: &RequestContext,
    request: SaslAuthenticateRequest,
) -> (SaslAuthenticateResponse, Option<Duration>) {
    let response = SaslAuthenticateResponse::default();
    match step(shard, &context.connection, &request.auth_bytes) {
        Ok((bytes, lifetime)) => {
            let lifetime_ms = lifetime.map_or(0, |l| l.as_millis() as i64);
            let response = response
                .with_auth_bytes(Bytes::from(bytes))
                .with_session_lifetime_ms(lifetime_ms);
            (response, None)
        }
        Err(error) => {
            let (code, message) = match error {
                SaslError::Failed(failure) => {
                    (ResponseError::SaslAuthenticationFailed, failure.message)
                }
                SaslError::IllegalState(reason) => (ResponseError::IllegalSaslState, reason),
                SaslError::UnsupportedMechanism(reason) => {
                    (ResponseError::UnsupportedSaslMechanism, reason)
                }
            };
            let response = response
                .with_error_code(code.code())
                .with_error_message(Some(str_bytes(message)));
            (response, Some(shard.security.failed_authentication_delay))
        }
    }
}

/// A bare token after SaslHandshake v0: the bytes to send back bare, or `None` when the
/// authentication failed (v0 has no way to say so: the connection closes).
pub fn respond_to_bare_token(
    shard: &Shard,
    connection: &ConnectionState,
    token: &[u8],
) -> Option<Vec<u8>> {
    step(shard, connection, token).ok().map(|(bytes, _)| bytes)
}

fn step(
    shard: &Shard,
    connection: &ConnectionState,
    token: &[u8],
) -> Result<(Vec<u8>, Option<Duration>), SaslError> {
    let users = shard.security.users();
    let lifetime = shard.security.reauthentication;
    let mut session = connection.session.borrow_mut();
    let stepped = session.authenticate(token, &users, Instant::now(), lifetime);
    match &stepped {
        Ok((_, _)) if session.is_authenticated() => {
            tracing::debug!(client = %connection.client_host, user = session.user(), "authenticated")
        }
        Ok(_) => {}
        Err(SaslError::Failed(failure)) => tracing::warn!(
            client = %connection.client_host,
            reason = %failure.log_reason,
            "SASL authentication failed"
        ),
        Err(error) => tracing::warn!(
            client = %connection.client_host,
            ?error,
            "SASL authentication refused"
        ),
    }
    stepped
}
