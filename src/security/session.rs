//! One connection's authentication: who the client is, and what it may send now.
//!
//! On a SASL listener a client first sends SaslHandshake (choosing a mechanism) and then
//! SaslAuthenticate until the mechanism is done; before that only ApiVersions is answered,
//! and anything else closes the connection (Kafka does the same). SaslHandshake v0 is the
//! old form: the SASL tokens that follow are bare length-prefixed frames, not requests.
//!
//! KIP-368: with `--connections-max-reauth-ms`, an authentication is good for that long.
//! Clients re-authenticate on the open connection in time (same mechanism, same user), with
//! other requests in flight; a request that arrives after the session expired closes it.
//!
//! Everything here runs in dispatch as each request is read, before the next one is: the
//! state a request sees is the state the requests before it left.

use super::credentials::Users;
use super::scram::{AuthFailure, SaslMechanism, SaslServer, SaslStep};
use std::time::{Duration, Instant};

/// The user of a client that has not authenticated (PLAINTEXT, SSL without a certificate).
pub const ANONYMOUS: &str = "ANONYMOUS";

/// What kind of request arrives, as far as authentication cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arriving {
    ApiVersions,
    SaslHandshake,
    SaslAuthenticate,
    Other,
}

/// What to do with an arriving frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Decode and answer it as a request.
    Proceed,
    /// It is a bare SASL token (after SaslHandshake v0), not a request.
    RawToken,
    /// Close the connection, for this reason.
    Refuse(&'static str),
}

/// Why a SASL request is refused; each maps to the Kafka error SaslHandshake or
/// SaslAuthenticate answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslError {
    /// ILLEGAL_SASL_STATE: not expected now (or not on this listener).
    IllegalState(String),
    /// UNSUPPORTED_SASL_MECHANISM: not one the listener offers.
    UnsupportedMechanism(String),
    /// SASL_AUTHENTICATION_FAILED.
    Failed(AuthFailure),
}

/// One connection's authentication state.
#[derive(Debug)]
pub struct Session {
    /// Whether the listener requires SASL.
    sasl: bool,
    /// Who the client is: the SASL user once authenticated, else its certificate's user.
    user: Option<String>,
    /// The mechanism of the first SASL authentication; re-authentication must use it.
    mechanism: Option<SaslMechanism>,
    exchange: Exchange,
    /// When the authentication stops being good (KIP-368).
    expires_at: Option<Instant>,
    /// "User:" and `user()`, as ACLs name principals; kept so that authorizing a request
    /// allocates nothing.
    principal: String,
}

#[derive(Debug)]
enum Exchange {
    /// No SASL exchange under way.
    Idle,
    /// A mechanism was chosen; the first token is next. `raw`: tokens come bare (v0).
    Chosen {
        mechanism: SaslMechanism,
        raw: bool,
    },
    Running {
        server: Box<SaslServer>,
        raw: bool,
    },
    /// Authentication failed: the connection closes once that is answered.
    Failed,
}

impl Session {
    /// A connection on a listener that does (`sasl`) or does not require SASL, whose
    /// client certificate (if any) names `certificate_user`.
    pub fn new(sasl: bool, certificate_user: Option<String>) -> Self {
        let mut session = Self {
            sasl,
            user: certificate_user,
            mechanism: None,
            exchange: Exchange::Idle,
            expires_at: None,
            principal: String::new(),
        };
        session.principal = format!("User:{}", session.user());
        session
    }

    /// The principal ACLs know the client by: "User:alice", or "User:ANONYMOUS".
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// Whether the client has proved who it is (SASL, or a verified client certificate on
    /// a listener without SASL).
    pub fn is_authenticated(&self) -> bool {
        match self.sasl {
            true => self.mechanism.is_some() && !matches!(self.exchange, Exchange::Failed),
            false => self.user.is_some(),
        }
    }

    /// The user the client acts as: its own once authenticated, else ANONYMOUS.
    pub fn user(&self) -> &str {
        match (&self.user, self.sasl && self.mechanism.is_none()) {
            (Some(user), false) => user,
            _ => ANONYMOUS,
        }
    }

    /// Whether the connection must close once the answers already read are written.
    pub fn must_close(&self) -> bool {
        matches!(self.exchange, Exchange::Failed)
    }

    /// What to do with a frame that arrives at `now` and (if it is a request) is of the
    /// kind `arriving`.
    pub fn admit(
        &self,
        arriving: impl FnOnce() -> Arriving,
        now: impl FnOnce() -> Instant,
    ) -> Gate {
        match &self.exchange {
            Exchange::Chosen { raw: true, .. } | Exchange::Running { raw: true, .. } => {
                return Gate::RawToken
            }
            Exchange::Failed => return Gate::Refuse("SASL authentication failed"),
            _ => {}
        }
        if !self.sasl {
            return Gate::Proceed;
        }
        match arriving() {
            Arriving::ApiVersions | Arriving::SaslHandshake | Arriving::SaslAuthenticate => {
                Gate::Proceed
            }
            Arriving::Other if self.mechanism.is_none() => {
                Gate::Refuse("request before SASL authentication")
            }
            Arriving::Other if self.expires_at.is_some_and(|at| now() >= at) => {
                Gate::Refuse("SASL authentication expired: the client did not re-authenticate")
            }
            Arriving::Other => Gate::Proceed,
        }
    }

    /// SaslHandshake: the client chooses `mechanism` among `offered`; `raw` for v0 (bare
    /// tokens follow).
    pub fn handshake(
        &mut self,
        mechanism: &str,
        raw: bool,
        offered: &[SaslMechanism],
    ) -> Result<SaslMechanism, SaslError> {
        if !self.sasl {
            return Err(SaslError::IllegalState(
                "SaslHandshake on a listener without SASL".into(),
            ));
        }
        if !matches!(self.exchange, Exchange::Idle) {
            return Err(SaslError::IllegalState(
                "SaslHandshake in the middle of an authentication".into(),
            ));
        }
        let Some(chosen) = SaslMechanism::from_name(mechanism).filter(|m| offered.contains(m))
        else {
            self.exchange = Exchange::Failed;
            return Err(SaslError::UnsupportedMechanism(format!(
                "unsupported SASL mechanism {mechanism}"
            )));
        };
        if let Some(first) = self.mechanism {
            // KIP-368: re-authentication keeps the mechanism, and needs SaslAuthenticate.
            if first != chosen || raw {
                self.exchange = Exchange::Failed;
                return Err(SaslError::IllegalState(format!(
                    "re-authentication must use SaslAuthenticate and {}",
                    first.name()
                )));
            }
        }
        self.exchange = Exchange::Chosen {
            mechanism: chosen,
            raw,
        };
        Ok(chosen)
    }

    /// A SASL token (SaslAuthenticate's `auth_bytes`, or a bare one after v0) at `now`.
    /// Answers the bytes to send back and, once done, how long the authentication is good
    /// for (`lifetime`, or `None` for the connection's life).
    pub fn authenticate(
        &mut self,
        token: &[u8],
        users: &Users,
        now: Instant,
        lifetime: Option<Duration>,
    ) -> Result<(Vec<u8>, Option<Duration>), SaslError> {
        let (mut server, raw) = match std::mem::replace(&mut self.exchange, Exchange::Idle) {
            Exchange::Chosen { mechanism, raw } => (Box::new(SaslServer::new(mechanism)), raw),
            Exchange::Running { server, raw } => (server, raw),
            Exchange::Idle => {
                return Err(SaslError::IllegalState(
                    "SaslAuthenticate before SaslHandshake".into(),
                ))
            }
            Exchange::Failed => {
                self.exchange = Exchange::Failed;
                return Err(SaslError::IllegalState(
                    "SaslAuthenticate after a failed authentication".into(),
                ));
            }
        };
        match server.step(token, users) {
            SaslStep::Continue(challenge) => {
                self.exchange = Exchange::Running { server, raw };
                Ok((challenge, None))
            }
            SaslStep::Done { user, response } => {
                if self.mechanism.is_some() && self.user.as_deref() != Some(user.as_str()) {
                    self.exchange = Exchange::Failed;
                    return Err(SaslError::IllegalState(format!(
                        "re-authentication as {user} on a connection of {}",
                        self.user.as_deref().unwrap_or(ANONYMOUS)
                    )));
                }
                self.mechanism = Some(server.mechanism());
                self.user = Some(user);
                self.principal = format!("User:{}", self.user());
                self.expires_at = lifetime.map(|l| now + l);
                Ok((response, lifetime))
            }
            SaslStep::Failed(failure) => {
                self.exchange = Exchange::Failed;
                Err(SaslError::Failed(failure))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::credentials::parse_users_file;

    const PLAIN: SaslMechanism = SaslMechanism::Plain;

    fn plain_token(user: &str, password: &str) -> Vec<u8> {
        format!("\0{user}\0{password}").into_bytes()
    }

    fn at(session: &Session, arriving: Arriving, now: Instant) -> Gate {
        session.admit(|| arriving, || now)
    }

    #[test]
    fn a_sasl_listener_answers_only_api_versions_and_sasl_before_authentication() {
        let users = parse_users_file("alice:secret").expect("users");
        let now = Instant::now();
        let mut session = Session::new(true, None);
        assert_eq!(session.user(), ANONYMOUS);
        for arriving in [Arriving::ApiVersions, Arriving::SaslHandshake] {
            assert_eq!(at(&session, arriving, now), Gate::Proceed);
        }
        assert!(matches!(
            at(&session, Arriving::Other, now),
            Gate::Refuse(_)
        ));
        session
            .handshake("PLAIN", false, &[PLAIN])
            .expect("offered");
        let (response, lifetime) = session
            .authenticate(&plain_token("alice", "secret"), &users, now, None)
            .expect("right password");
        assert!(response.is_empty() && lifetime.is_none());
        assert!(session.is_authenticated());
        assert_eq!(session.user(), "alice");
        assert_eq!(session.principal(), "User:alice");
        assert_eq!(at(&session, Arriving::Other, now), Gate::Proceed);
    }

    #[test]
    fn a_wrong_password_fails_and_closes() {
        let users = parse_users_file("alice:secret").expect("users");
        let now = Instant::now();
        let mut session = Session::new(true, None);
        session
            .handshake("PLAIN", false, &[PLAIN])
            .expect("offered");
        let failed = session.authenticate(&plain_token("alice", "guess"), &users, now, None);
        assert!(matches!(failed, Err(SaslError::Failed(_))));
        assert!(session.must_close() && !session.is_authenticated());
        assert_eq!(session.user(), ANONYMOUS);
        assert!(matches!(
            at(&session, Arriving::SaslHandshake, now),
            Gate::Refuse(_)
        ));
    }

    #[test]
    fn mechanisms_not_offered_and_requests_out_of_order_are_refused() {
        let users = parse_users_file("alice:secret").expect("users");
        let now = Instant::now();
        let mut session = Session::new(true, None);
        assert!(matches!(
            session.authenticate(b"x", &users, now, None),
            Err(SaslError::IllegalState(_))
        ));
        assert!(matches!(
            session.handshake("GSSAPI", false, &[PLAIN]),
            Err(SaslError::UnsupportedMechanism(_))
        ));
        let mut plain_listener = Session::new(false, None);
        assert!(matches!(
            plain_listener.handshake("PLAIN", false, &[PLAIN]),
            Err(SaslError::IllegalState(_))
        ));
        assert_eq!(at(&plain_listener, Arriving::Other, now), Gate::Proceed);
        assert!(!plain_listener.is_authenticated());
        let certified = Session::new(false, Some("CN=bob".into()));
        assert!(certified.is_authenticated());
        assert_eq!(certified.user(), "CN=bob");
    }

    #[test]
    fn v0_tokens_come_bare_until_done() {
        let users = parse_users_file("alice:secret").expect("users");
        let now = Instant::now();
        let mut session = Session::new(true, None);
        session.handshake("PLAIN", true, &[PLAIN]).expect("offered");
        assert_eq!(at(&session, Arriving::Other, now), Gate::RawToken);
        session
            .authenticate(&plain_token("alice", "secret"), &users, now, None)
            .expect("authenticated");
        assert_eq!(at(&session, Arriving::Other, now), Gate::Proceed);
    }

    #[test]
    fn reauthentication_keeps_mechanism_and_user_and_expiry_closes() {
        let users = parse_users_file("alice:secret\nbob:other").expect("users");
        let start = Instant::now();
        let lifetime = Some(Duration::from_secs(60));
        let mut session = Session::new(true, None);
        session
            .handshake("PLAIN", false, &[PLAIN])
            .expect("offered");
        let (_, told) = session
            .authenticate(&plain_token("alice", "secret"), &users, start, lifetime)
            .expect("authenticated");
        assert_eq!(told, lifetime);
        let later = start + Duration::from_secs(59);
        assert_eq!(at(&session, Arriving::Other, later), Gate::Proceed);
        let expired = start + Duration::from_secs(60);
        assert!(matches!(
            at(&session, Arriving::Other, expired),
            Gate::Refuse(_)
        ));
        // In time, with requests still allowed while it runs.
        session
            .handshake("PLAIN", false, &[PLAIN])
            .expect("re-auth");
        assert_eq!(at(&session, Arriving::Other, later), Gate::Proceed);
        session
            .authenticate(&plain_token("alice", "secret"), &users, later, lifetime)
            .expect("re-authenticated");
        assert_eq!(at(&session, Arriving::Other, expired), Gate::Proceed);
        // As someone else: refused, and the connection closes.
        session
            .handshake("PLAIN", false, &[PLAIN])
            .expect("re-auth");
        let other = session.authenticate(&plain_token("bob", "other"), &users, later, lifetime);
        assert!(matches!(other, Err(SaslError::IllegalState(_))));
        assert!(session.must_close());
    }

    #[test]
    fn reauthentication_with_another_mechanism_is_refused() {
        let users = parse_users_file("alice:secret").expect("users");
        let scram = SaslMechanism::from_name("SCRAM-SHA-256").expect("scram");
        let mut session = Session::new(true, None);
        session
            .handshake("PLAIN", false, &[PLAIN, scram])
            .expect("offered");
        session
            .authenticate(
                &plain_token("alice", "secret"),
                &users,
                Instant::now(),
                None,
            )
            .expect("authenticated");
        assert!(matches!(
            session.handshake("SCRAM-SHA-256", false, &[PLAIN, scram]),
            Err(SaslError::IllegalState(_))
        ));
    }
}
