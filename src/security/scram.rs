//! The server side of SASL PLAIN (RFC 4616) and SCRAM (RFC 5802, RFC 7677), as Kafka
//! brokers speak them in SaslAuthenticate.
//!
//! A [`SaslServer`] is made per authentication and fed each client token with
//! [`SaslServer::step`]; it reads [`Users`] and nothing else (no clock, no I/O besides the
//! system random number generator for SCRAM's server nonce), so dispatch owns when and how
//! the answers travel.
//!
//! Exchanges:
//! - PLAIN: one token, `authzid NUL authcid NUL passwd`, checked against the user's
//!   SCRAM-SHA-512 credential (else SCRAM-SHA-256) by deriving the keys again. This runs
//!   `Hi`, thousands of HMACs: the cost of a PLAIN login is the credential's iteration count.
//! - SCRAM: client-first → server-first (`Continue`), client-final → server-final (`Done`).
//!   As in Kafka, a failure is not sent as RFC 5802's `e=` attribute but as a failed
//!   SaslAuthenticate carrying [`AuthFailure::message`].
//!
//! What is refused: channel binding (`p=`; the `-PLUS` mechanisms are not offered, so a
//! client's `y` flag is accepted), SCRAM extensions, Kafka's `tokenauth=true` among them
//! (delegation tokens are not supported), and an authorization id other than the user.
//!
//! A user that does not exist must look like a wrong password: SCRAM answers the
//! client-first with a salt derived from a secret and the name (stable per name, see
//! [`Users`]) and 4096 iterations, and fails only at the proof, with the same message as a
//! wrong password; PLAIN runs `Hi` against a fake credential so the time taken matches.
//! Only [`AuthFailure::log_reason`], for the server's log, says which it was.
//!
//! Names and passwords are compared as the bytes sent (no SASLprep), as Kafka does.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};

use super::credentials::{constant_time_eq, ScramCredential, ScramMechanism, Users};

/// The mechanisms SaslHandshake offers, in the order it lists them: strongest first, for a
/// client that takes the first one it knows.
pub const SUPPORTED: &[&str] = &["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"];

/// Random bytes in a server nonce (base64-encoded on the wire: 32 printable characters).
const SERVER_NONCE_LEN: usize = 24;

/// Kafka's text when the authorization id is not the user (PlainSaslServer and
/// ScramSaslServer say the same).
const AUTHZID_MISMATCH: &str =
    "Authentication failed: Client requested an authorization id that is different from username";

/// A SASL mechanism this gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaslMechanism {
    /// PLAIN (RFC 4616): the password in clear, so only over TLS in practice.
    Plain,
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    Scram(ScramMechanism),
}

impl SaslMechanism {
    /// The mechanism for a SaslHandshake name ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512");
    /// case-sensitive, as in Kafka.
    pub fn from_name(name: &str) -> Option<Self> {
        if name == "PLAIN" {
            Some(SaslMechanism::Plain)
        } else {
            ScramMechanism::from_name(name).map(SaslMechanism::Scram)
        }
    }

    /// The name as SaslHandshake spells it.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(m) => m.name(),
        }
    }
}

/// What to do after a client token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslStep {
    /// Send these bytes (SaslAuthenticate's `auth_bytes`) and wait for the next token.
    Continue(Vec<u8>),
    /// Authenticated as `user`; send `response` (empty for PLAIN, the server-final message
    /// for SCRAM). Every later step fails.
    Done { user: String, response: Vec<u8> },
    /// Authentication failed: answer SASL_AUTHENTICATION_FAILED with the failure's message.
    /// Every later step fails.
    Failed(AuthFailure),
}

/// Which way an authentication failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Unknown user, wrong password or proof, or a nonce not the server's: one message for
    /// all, so a client cannot tell which.
    InvalidCredentials,
    /// Not a message of the mechanism, or a token after the exchange ended.
    Malformed,
    /// Well formed but asks for what is not offered: channel binding, extensions (delegation
    /// tokens), an authorization id other than the user.
    Unsupported,
    /// The gateway could not go on (the random number generator failed).
    Internal,
}

/// Why authentication failed: what the client is told and what the log says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{log_reason}")]
pub struct AuthFailure {
    /// Which way it failed.
    pub kind: FailureKind,
    /// For SaslAuthenticate's `error_message`: Kafka's words, never whether the user exists.
    pub message: String,
    /// For the server's log: the precise reason (may say "unknown user"); never a password.
    pub log_reason: String,
}

impl AuthFailure {
    fn invalid_credentials(mechanism: SaslMechanism, log_reason: impl Into<String>) -> Self {
        AuthFailure {
            kind: FailureKind::InvalidCredentials,
            message: format!(
                "Authentication failed during authentication due to invalid credentials with \
                 SASL mechanism {}",
                mechanism.name()
            ),
            log_reason: log_reason.into(),
        }
    }

    fn malformed(mechanism: SaslMechanism, log_reason: impl Into<String>) -> Self {
        AuthFailure {
            kind: FailureKind::Malformed,
            message: format!(
                "Authentication failed: malformed {} message",
                mechanism.name()
            ),
            log_reason: log_reason.into(),
        }
    }

    fn unsupported(message: &str, log_reason: impl Into<String>) -> Self {
        AuthFailure {
            kind: FailureKind::Unsupported,
            message: message.to_owned(),
            log_reason: log_reason.into(),
        }
    }
}

/// One authentication's server side; see the module comment.
#[derive(Debug)]
pub struct SaslServer {
    mechanism: SaslMechanism,
    state: State,
    /// A fixed server nonce, for test vectors; `None` draws a random one.
    fixed_nonce: Option<String>,
}

#[derive(Debug)]
enum State {
    Start,
    /// SCRAM's server-first is sent; the client-final is awaited.
    ServerFirstSent(Box<ScramExchange>),
    /// Done or failed: nothing more is accepted.
    Finished,
}

/// What the client-final is checked against.
#[derive(Debug)]
struct ScramExchange {
    user: String,
    /// False when `credential` is the fake one: the exchange fails whatever the proof.
    known_user: bool,
    credential: ScramCredential,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    /// Client nonce followed by server nonce.
    nonce: String,
}

impl SaslServer {
    /// A server for one authentication with `mechanism`.
    pub fn new(mechanism: SaslMechanism) -> Self {
        SaslServer {
            mechanism,
            state: State::Start,
            fixed_nonce: None,
        }
    }

    /// A server whose SCRAM server nonce is `nonce` (printable ASCII without ','), so the
    /// exchange is reproducible.
    #[cfg(test)]
    pub(crate) fn with_server_nonce(mechanism: SaslMechanism, nonce: &str) -> Self {
        SaslServer {
            fixed_nonce: Some(nonce.to_owned()),
            ..SaslServer::new(mechanism)
        }
    }

    /// The mechanism this server speaks.
    pub fn mechanism(&self) -> SaslMechanism {
        self.mechanism
    }

    /// Takes the client's next token. Never panics, whatever the bytes; after `Done` or
    /// `Failed` every step fails.
    pub fn step(&mut self, token: &[u8], users: &Users) -> SaslStep {
        // Finished unless a step below moves on: a failure anywhere ends the exchange.
        let state = std::mem::replace(&mut self.state, State::Finished);
        let outcome = match (self.mechanism, state) {
            (SaslMechanism::Plain, State::Start) => plain(token, users),
            (SaslMechanism::Scram(m), State::Start) => {
                self.client_first(m, token, users).map(|exchange| {
                    let reply = exchange.server_first.clone().into_bytes();
                    self.state = State::ServerFirstSent(Box::new(exchange));
                    SaslStep::Continue(reply)
                })
            }
            (SaslMechanism::Scram(m), State::ServerFirstSent(exchange)) => {
                client_final(m, &exchange, token)
            }
            (_, State::Finished) | (SaslMechanism::Plain, State::ServerFirstSent(_)) => Err(
                AuthFailure::malformed(self.mechanism, "a SASL token after the exchange ended"),
            ),
        };
        outcome.unwrap_or_else(SaslStep::Failed)
    }

    /// RFC 5802 section 7:
    /// `gs2-header = gs2-cbind-flag "," [ authzid ] ","`,
    /// `client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]`.
    fn client_first(
        &self,
        m: ScramMechanism,
        token: &[u8],
        users: &Users,
    ) -> Result<ScramExchange, AuthFailure> {
        let mechanism = SaslMechanism::Scram(m);
        let malformed =
            |why: &str| AuthFailure::malformed(mechanism, format!("SCRAM client-first: {why}"));
        let text = std::str::from_utf8(token).map_err(|_| malformed("not UTF-8"))?;

        let (cbind_flag, rest) = text
            .split_once(',')
            .ok_or_else(|| malformed("no gs2 header"))?;
        match cbind_flag {
            // "y": the client could bind but believes the server cannot; true, as no
            // -PLUS mechanism is offered.
            "n" | "y" => {}
            _ if cbind_flag.starts_with("p=") => {
                return Err(AuthFailure::unsupported(
                    "Authentication failed: SCRAM channel binding is not supported",
                    "SCRAM client-first asks for channel binding",
                ))
            }
            _ => return Err(malformed("bad channel binding flag")),
        }
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or_else(|| malformed("no gs2 header"))?;
        let authzid = match authzid {
            "" => None,
            _ => Some(
                authzid
                    .strip_prefix("a=")
                    .and_then(decode_saslname)
                    .ok_or_else(|| malformed("bad authzid"))?,
            ),
        };
        let gs2_header = &text[..text.len() - bare.len()];

        let mut attributes = bare.split(',');
        let username = attributes.next().unwrap_or_default();
        if username.starts_with("m=") {
            return Err(AuthFailure::unsupported(
                "Authentication failed: SCRAM mandatory extensions are not supported",
                "SCRAM client-first carries a mandatory extension (m=)",
            ));
        }
        let user = username
            .strip_prefix("n=")
            .and_then(decode_saslname)
            .ok_or_else(|| malformed("bad user name"))?;
        let client_nonce = attributes
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .filter(|nonce| valid_nonce(nonce))
            .ok_or_else(|| malformed("bad nonce"))?;
        check_no_extensions(mechanism, attributes, "client-first")?;
        if authzid.is_some_and(|a| a != user) {
            return Err(AuthFailure::unsupported(
                AUTHZID_MISMATCH,
                format!("SCRAM authzid differs from user {user}"),
            ));
        }

        let (credential, known_user) = match users.get(&user, m) {
            Some(credential) => (credential.clone(), true),
            None => (users.fake_credential(&user, m), false),
        };
        let nonce = format!("{client_nonce}{}", self.server_nonce(mechanism)?);
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(credential.salt()),
            credential.iterations()
        );
        Ok(ScramExchange {
            user,
            known_user,
            credential,
            gs2_header: gs2_header.to_owned(),
            client_first_bare: bare.to_owned(),
            server_first,
            nonce,
        })
    }

    fn server_nonce(&self, mechanism: SaslMechanism) -> Result<String, AuthFailure> {
        if let Some(nonce) = &self.fixed_nonce {
            return Ok(nonce.clone());
        }
        let mut bytes = [0u8; SERVER_NONCE_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| AuthFailure {
                kind: FailureKind::Internal,
                message: format!(
                    "Authentication failed: internal error with SASL mechanism {}",
                    mechanism.name()
                ),
                log_reason: "the system random number generator failed".into(),
            })?;
        Ok(BASE64.encode(bytes))
    }
}

/// RFC 4616: `message = [authzid] NUL authcid NUL passwd`.
fn plain(token: &[u8], users: &Users) -> Result<SaslStep, AuthFailure> {
    let mechanism = SaslMechanism::Plain;
    let malformed = |why: &str| AuthFailure::malformed(mechanism, format!("PLAIN: {why}"));
    let text = std::str::from_utf8(token).map_err(|_| malformed("not UTF-8"))?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected authzid NUL authcid NUL passwd"));
    };
    if authcid.is_empty() {
        return Err(malformed("empty user name"));
    }
    if password.is_empty() {
        return Err(malformed("empty password"));
    }
    if !authzid.is_empty() && authzid != authcid {
        return Err(AuthFailure::unsupported(
            AUTHZID_MISMATCH,
            format!("PLAIN authzid differs from user {authcid}"),
        ));
    }
    let found = [ScramMechanism::Sha512, ScramMechanism::Sha256]
        .into_iter()
        .find_map(|m| users.get(authcid, m).map(|c| (m, c)));
    match found {
        Some((m, credential)) if credential.verify_password(m, password) => Ok(SaslStep::Done {
            user: authcid.to_owned(),
            response: Vec::new(),
        }),
        Some(_) => Err(AuthFailure::invalid_credentials(
            mechanism,
            format!("PLAIN: wrong password for user {authcid}"),
        )),
        None => {
            // Spend what a real check spends, so the answer's delay does not tell that the
            // user is unknown.
            let m = ScramMechanism::Sha512;
            let _ = users
                .fake_credential(authcid, m)
                .verify_password(m, password);
            Err(AuthFailure::invalid_credentials(
                mechanism,
                format!("PLAIN: unknown user {authcid}"),
            ))
        }
    }
}

/// RFC 5802 section 7: `client-final-message = channel-binding "," nonce ["," extensions]
/// "," proof`, and the proof check of section 3:
/// `ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage)`, accepted when
/// `H(ClientKey) = StoredKey`.
fn client_final(
    m: ScramMechanism,
    exchange: &ScramExchange,
    token: &[u8],
) -> Result<SaslStep, AuthFailure> {
    let mechanism = SaslMechanism::Scram(m);
    let malformed =
        |why: &str| AuthFailure::malformed(mechanism, format!("SCRAM client-final: {why}"));
    let text = std::str::from_utf8(token).map_err(|_| malformed("not UTF-8"))?;

    // The proof comes last and signs everything before it.
    let (without_proof, proof) = text
        .rsplit_once(",p=")
        .ok_or_else(|| malformed("no proof"))?;
    let proof = BASE64
        .decode(proof)
        .map_err(|_| malformed("proof is not base64"))?;
    if proof.len() != m.digest_len() {
        return Err(malformed("proof has the wrong length"));
    }
    let mut attributes = without_proof.split(',');
    let channel_binding = attributes
        .next()
        .and_then(|a| a.strip_prefix("c="))
        .and_then(|c| BASE64.decode(c).ok())
        .ok_or_else(|| malformed("bad channel binding attribute"))?;
    // Without channel binding, c= is the gs2 header itself: a client that sent "y,," or an
    // authzid must repeat it, or a man in the middle could have changed it.
    if channel_binding != exchange.gs2_header.as_bytes() {
        return Err(malformed("channel binding does not repeat the gs2 header"));
    }
    let nonce = attributes
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or_else(|| malformed("no nonce"))?;
    check_no_extensions(mechanism, attributes, "client-final")?;
    // Kafka checks that the nonce ends with the server's, not that it equals it, and
    // librdkafka up to 2.x sends its own nonce in front of the server's (which already
    // starts with it). The proof signs whatever was sent, so this admits nothing unsigned.
    if !nonce.ends_with(&exchange.nonce) {
        return Err(AuthFailure::invalid_credentials(
            mechanism,
            format!("SCRAM: nonce is not the server's, user {}", exchange.user),
        ));
    }

    let auth_message = format!(
        "{},{},{without_proof}",
        exchange.client_first_bare, exchange.server_first
    );
    let credential = &exchange.credential;
    let client_signature = m.hmac(credential.stored_key(), auth_message.as_bytes());
    let client_key: Vec<u8> = proof
        .iter()
        .zip(&client_signature)
        .map(|(p, s)| p ^ s)
        .collect();
    // Checked for a fake credential too, so an unknown user costs the same time.
    let proof_ok = constant_time_eq(&m.hash(&client_key), credential.stored_key());
    if !exchange.known_user {
        return Err(AuthFailure::invalid_credentials(
            mechanism,
            format!("SCRAM: unknown user {}", exchange.user),
        ));
    }
    if !proof_ok {
        return Err(AuthFailure::invalid_credentials(
            mechanism,
            format!("SCRAM: wrong proof for user {}", exchange.user),
        ));
    }
    let server_signature = m.hmac(credential.server_key(), auth_message.as_bytes());
    Ok(SaslStep::Done {
        user: exchange.user.clone(),
        response: format!("v={}", BASE64.encode(server_signature)).into_bytes(),
    })
}

/// Fails on any attribute left after the ones the message must have: extensions are not
/// supported, and Kafka's `tokenauth` gets its own message.
fn check_no_extensions<'a>(
    mechanism: SaslMechanism,
    mut rest: impl Iterator<Item = &'a str>,
    message: &str,
) -> Result<(), AuthFailure> {
    let Some(first) = rest.next() else {
        return Ok(());
    };
    let extensions: Vec<&str> = std::iter::once(first).chain(rest).collect();
    let well_formed = |a: &&str| {
        a.split_once('=').is_some_and(|(key, _)| {
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric())
        })
    };
    if !extensions.iter().all(well_formed) {
        return Err(AuthFailure::malformed(
            mechanism,
            format!("SCRAM {message}: bad attribute after the nonce"),
        ));
    }
    if extensions.iter().any(|a| a.starts_with("tokenauth=")) {
        return Err(AuthFailure::unsupported(
            "Authentication failed: delegation tokens are not supported",
            format!("SCRAM {message} asks for delegation token authentication"),
        ));
    }
    Err(AuthFailure::unsupported(
        "Authentication failed: SCRAM extensions are not supported",
        format!("SCRAM {message} carries extensions"),
    ))
}

/// `saslname` of RFC 5802: ',' and '=' travel as "=2C" and "=3D"; any other '=' is an
/// error, as is an empty name or a NUL.
fn decode_saslname(name: &str) -> Option<String> {
    if name.is_empty() || name.contains('\0') {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        out.push(match rest.get(at..at + 3)? {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// `c-nonce` of RFC 5802: printable ASCII except ','.
fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::{digest, hmac};

    const S256: ScramMechanism = ScramMechanism::Sha256;
    const S512: ScramMechanism = ScramMechanism::Sha512;

    /// A SCRAM client written from RFC 5802's formulas with ring's primitives directly,
    /// sharing no code with the server.
    struct Client {
        mechanism: ScramMechanism,
        password: String,
        gs2_header: String,
        client_first_bare: String,
        nonce: String,
        /// Sent before the server's nonce in client-final, as librdkafka 2.x does.
        final_nonce_prefix: String,
    }

    fn hmac_algorithm(m: ScramMechanism) -> (hmac::Algorithm, &'static digest::Algorithm) {
        match m {
            ScramMechanism::Sha256 => (hmac::HMAC_SHA256, &digest::SHA256),
            ScramMechanism::Sha512 => (hmac::HMAC_SHA512, &digest::SHA512),
        }
    }

    fn client_hmac(m: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
        let key = hmac::Key::new(hmac_algorithm(m).0, key);
        hmac::sign(&key, data).as_ref().to_vec()
    }

    /// `Hi(str, salt, i)`: U1 = HMAC(str, salt || INT(1)), Ui = HMAC(str, Ui-1), XOR of all.
    fn hi(m: ScramMechanism, password: &[u8], salt: &[u8], i: u32) -> Vec<u8> {
        let mut u = client_hmac(m, password, &[salt, &[0, 0, 0, 1]].concat());
        let mut out = u.clone();
        for _ in 1..i {
            u = client_hmac(m, password, &u);
            out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
        }
        out
    }

    impl Client {
        fn new(m: ScramMechanism, user: &str, password: &str, nonce: &str) -> Self {
            Self::with_header(m, "n,,", user, password, nonce)
        }

        fn with_header(
            m: ScramMechanism,
            gs2: &str,
            user: &str,
            password: &str,
            nonce: &str,
        ) -> Self {
            let user = user.replace('=', "=3D").replace(',', "=2C");
            Client {
                mechanism: m,
                password: password.into(),
                gs2_header: gs2.into(),
                client_first_bare: format!("n={user},r={nonce}"),
                nonce: nonce.into(),
                final_nonce_prefix: String::new(),
            }
        }

        fn first(&self) -> Vec<u8> {
            format!("{}{}", self.gs2_header, self.client_first_bare).into_bytes()
        }

        /// The client-final for `server_first`, and the server signature it expects.
        fn last(&self, server_first: &[u8]) -> (Vec<u8>, String) {
            let m = self.mechanism;
            let server_first = std::str::from_utf8(server_first).expect("utf8");
            let mut parts = server_first.split(',');
            let nonce = parts.next().and_then(|a| a.strip_prefix("r=")).expect("r=");
            assert!(
                nonce.starts_with(&self.nonce),
                "server nonce extends the client's"
            );
            let salt = parts.next().and_then(|a| a.strip_prefix("s=")).expect("s=");
            let salt = BASE64.decode(salt).expect("salt b64");
            let i: u32 = parts
                .next()
                .and_then(|a| a.strip_prefix("i="))
                .expect("i=")
                .parse()
                .expect("i");
            let salted = hi(m, self.password.as_bytes(), &salt, i);
            let client_key = client_hmac(m, &salted, b"Client Key");
            let stored_key = digest::digest(hmac_algorithm(m).1, &client_key);
            let without_proof = format!(
                "c={},r={}{nonce}",
                BASE64.encode(&self.gs2_header),
                self.final_nonce_prefix
            );
            let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
            let signature = client_hmac(m, stored_key.as_ref(), auth_message.as_bytes());
            let proof: Vec<u8> = client_key
                .iter()
                .zip(&signature)
                .map(|(a, b)| a ^ b)
                .collect();
            let server_key = client_hmac(m, &salted, b"Server Key");
            let server_signature = client_hmac(m, &server_key, auth_message.as_bytes());
            (
                format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes(),
                format!("v={}", BASE64.encode(server_signature)),
            )
        }
    }

    fn users_with(name: &str, password: &str, mechanisms: &[ScramMechanism]) -> Users {
        let mut users = Users::new().expect("users");
        for &m in mechanisms {
            let credential = ScramCredential::from_password(m, password, 4096).expect("credential");
            users.upsert(name, m, credential);
        }
        users
    }

    fn continued(step: SaslStep) -> Vec<u8> {
        match step {
            SaslStep::Continue(reply) => reply,
            other => panic!("expected Continue, got {other:?}"),
        }
    }

    fn failed(step: SaslStep) -> AuthFailure {
        match step {
            SaslStep::Failed(failure) => failure,
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    fn invalid_credentials_message(m: &str) -> String {
        format!(
            "Authentication failed during authentication due to invalid credentials with SASL \
             mechanism {m}"
        )
    }

    /// Runs a whole SCRAM exchange as `client` against `users`.
    fn scram(m: ScramMechanism, client: &Client, users: &Users) -> (SaslStep, String) {
        let mut server = SaslServer::new(SaslMechanism::Scram(m));
        let server_first = continued(server.step(&client.first(), users));
        let (last, expected) = client.last(&server_first);
        (server.step(&last, users), expected)
    }

    #[test]
    fn names_and_supported_list() {
        for name in SUPPORTED {
            assert_eq!(
                SaslMechanism::from_name(name).map(|m| m.name()),
                Some(*name)
            );
        }
        assert_eq!(
            SaslMechanism::from_name("PLAIN"),
            Some(SaslMechanism::Plain)
        );
        assert_eq!(
            SaslMechanism::from_name("SCRAM-SHA-512"),
            Some(SaslMechanism::Scram(S512))
        );
        assert_eq!(SaslMechanism::from_name("GSSAPI"), None);
        assert_eq!(SaslMechanism::from_name("plain"), None);
    }

    #[test]
    fn rfc_7677_test_vector() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let salted = hi(S256, b"pencil", &salt, 4096);
        let mut users = Users::new().expect("users");
        users.upsert(
            "user",
            S256,
            ScramCredential::from_salted_password(S256, &salt, 4096, &salted).expect("credential"),
        );
        let mut server = SaslServer::with_server_nonce(
            SaslMechanism::Scram(S256),
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        );
        let server_first = continued(server.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &users));
        assert_eq!(
            std::str::from_utf8(&server_first).expect("utf8"),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let step = server.step(
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
              p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            &users,
        );
        assert_eq!(
            step,
            SaslStep::Done {
                user: "user".into(),
                response: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec(),
            }
        );
        // Over: any further token fails.
        assert_eq!(
            failed(server.step(b"", &users)).kind,
            FailureKind::Malformed
        );
    }

    #[test]
    fn scram_sha_512_and_256_with_an_independent_client() {
        for m in ScramMechanism::ALL {
            let users = users_with("alice", "s3cret", &[m]);
            let client = Client::new(m, "alice", "s3cret", "fyko+d2lbbFgONRv9qkxdawL");
            let (step, expected) = scram(m, &client, &users);
            assert_eq!(
                step,
                SaslStep::Done {
                    user: "alice".into(),
                    response: expected.into_bytes(),
                }
            );
        }
    }

    #[test]
    fn server_nonces_are_fresh() {
        let users = users_with("alice", "pw", &[S512]);
        let client = Client::new(S512, "alice", "pw", "abc");
        let a =
            continued(SaslServer::new(SaslMechanism::Scram(S512)).step(&client.first(), &users));
        let b =
            continued(SaslServer::new(SaslMechanism::Scram(S512)).step(&client.first(), &users));
        assert_ne!(a, b);
    }

    #[test]
    fn escaped_names_and_matching_authzid() {
        let users = users_with("a,b=c", "pw", &[S256]);
        let client = Client::new(S256, "a,b=c", "pw", "nonce1");
        assert!(client.first().starts_with(b"n,,n=a=2Cb=3Dc,"));
        let (step, _) = scram(S256, &client, &users);
        assert!(
            matches!(step, SaslStep::Done { ref user, .. } if user == "a,b=c"),
            "{step:?}"
        );

        // An authzid equal to the user, and the "y" flag, are accepted and must be repeated
        // in c=.
        let client = Client::with_header(S256, "y,a=a=2Cb=3Dc,", "a,b=c", "pw", "nonce2");
        let (step, expected) = scram(S256, &client, &users);
        assert_eq!(
            step,
            SaslStep::Done {
                user: "a,b=c".into(),
                response: expected.into_bytes()
            }
        );
    }

    #[test]
    fn wrong_password_and_unknown_user_look_the_same() {
        let users = users_with("alice", "right", &[S512]);
        let wrong = Client::new(S512, "alice", "wrong", "n1");
        let (step, _) = scram(S512, &wrong, &users);
        let wrong_failure = failed(step);
        assert_eq!(wrong_failure.kind, FailureKind::InvalidCredentials);
        assert_eq!(
            wrong_failure.message,
            invalid_credentials_message("SCRAM-SHA-512")
        );
        assert!(
            wrong_failure.log_reason.contains("wrong proof"),
            "{wrong_failure:?}"
        );

        let ghost = Client::new(S512, "ghost", "whatever", "n2");
        let mut server = SaslServer::new(SaslMechanism::Scram(S512));
        let server_first = continued(server.step(&ghost.first(), &users));
        // The server-first has a real one's shape: 32-byte salt, 4096 iterations.
        let text = String::from_utf8(server_first.clone()).expect("utf8");
        let salt = text
            .split(",s=")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .expect("salt");
        assert_eq!(BASE64.decode(salt).expect("b64").len(), 32);
        assert!(text.ends_with(",i=4096"), "{text}");
        // The same salt on the next attempt, as a real user's would be.
        let again =
            continued(SaslServer::new(SaslMechanism::Scram(S512)).step(&ghost.first(), &users));
        let salt_again = String::from_utf8(again).expect("utf8");
        assert!(salt_again.contains(&format!(",s={salt},")), "{salt_again}");

        let (last, _) = ghost.last(&server_first);
        let ghost_failure = failed(server.step(&last, &users));
        assert_eq!(ghost_failure.kind, wrong_failure.kind);
        assert_eq!(ghost_failure.message, wrong_failure.message);
        assert!(
            ghost_failure.log_reason.contains("unknown user"),
            "{ghost_failure:?}"
        );

        // A user with only the other mechanism is unknown to this one.
        let only_256 = users_with("bob", "pw", &[S256]);
        let (step, _) = scram(S512, &Client::new(S512, "bob", "pw", "n3"), &only_256);
        assert_eq!(failed(step).message, wrong_failure.message);
    }

    #[test]
    fn a_client_nonce_repeated_before_the_servers_is_accepted_as_kafka_does() {
        let users = users_with("alice", "pw", &[S256]);
        let mut client = Client::new(S256, "alice", "pw", "clientnonce");
        client.final_nonce_prefix = "clientnonce".into();
        let mut server = SaslServer::new(SaslMechanism::Scram(S256));
        let server_first = continued(server.step(&client.first(), &users));
        let (last, expected) = client.last(&server_first);
        match server.step(&last, &users) {
            SaslStep::Done { user, response } => {
                assert_eq!((user.as_str(), response), ("alice", expected.into_bytes()))
            }
            other => panic!("librdkafka's client-final refused: {other:?}"),
        }
    }

    #[test]
    fn tampered_final_messages_fail() {
        let users = users_with("alice", "pw", &[S256]);
        let client = Client::new(S256, "alice", "pw", "clientnonce");
        let run = |edit: &dyn Fn(String) -> String| {
            let mut server = SaslServer::new(SaslMechanism::Scram(S256));
            let server_first = continued(server.step(&client.first(), &users));
            let (last, _) = client.last(&server_first);
            let last = edit(String::from_utf8(last).expect("utf8"));
            failed(server.step(last.as_bytes(), &users))
        };

        // A nonce other than the server's (a replay, or a man in the middle).
        let failure = run(&|last| last.replacen(",r=clientnonce", ",r=clientnoncX", 1));
        assert_eq!(failure.kind, FailureKind::InvalidCredentials);
        assert_eq!(
            failure.message,
            invalid_credentials_message("SCRAM-SHA-256")
        );
        let failure = run(&|last| {
            let (head, proof) = last.split_once(",p=").expect("p=");
            format!("{head}X,p={proof}")
        });
        assert_eq!(failure.kind, FailureKind::InvalidCredentials);

        // c= not the gs2 header: "y,," instead of "n,,", or not base64.
        let failure = run(&|last| last.replacen("c=biws", "c=eSws", 1));
        assert_eq!(failure.kind, FailureKind::Malformed);
        assert_eq!(
            failure.message,
            "Authentication failed: malformed SCRAM-SHA-256 message"
        );
        assert_eq!(
            run(&|last| last.replacen("c=biws", "c=b!ws", 1)).kind,
            FailureKind::Malformed
        );

        // A flipped proof bit.
        let failure = run(&|last| {
            let (head, proof) = last.split_once(",p=").expect("p=");
            let mut proof = BASE64.decode(proof).expect("b64");
            proof[0] ^= 1;
            format!("{head},p={}", BASE64.encode(proof))
        });
        assert_eq!(failure.kind, FailureKind::InvalidCredentials);

        // A short proof, a missing proof, an extension.
        assert_eq!(
            run(&|last| format!("{},p=AAAA", last.split_once(",p=").expect("p=").0)).kind,
            FailureKind::Malformed
        );
        assert_eq!(
            run(&|last| last.split_once(",p=").expect("p=").0.to_owned()).kind,
            FailureKind::Malformed
        );
        assert_eq!(
            run(&|last| last.replacen(",p=", ",x=1,p=", 1)).kind,
            FailureKind::Unsupported
        );
    }

    #[test]
    fn refused_client_firsts() {
        let users = users_with("alice", "pw", &[S512]);
        let first = |token: &str| {
            failed(SaslServer::new(SaslMechanism::Scram(S512)).step(token.as_bytes(), &users))
        };

        let cb = first("p=tls-unique,,n=alice,r=abc");
        assert_eq!(cb.kind, FailureKind::Unsupported);
        assert!(cb.message.contains("channel binding"), "{cb:?}");

        let token = first("n,,n=alice,r=abc,tokenauth=true");
        assert_eq!(token.kind, FailureKind::Unsupported);
        assert!(token.message.contains("delegation tokens"), "{token:?}");
        assert_eq!(
            first("n,,n=alice,r=abc,ext=1").kind,
            FailureKind::Unsupported
        );
        assert_eq!(
            first("n,,m=must,n=alice,r=abc").kind,
            FailureKind::Unsupported
        );

        let authzid = first("n,a=bob,n=alice,r=abc");
        assert_eq!(authzid.kind, FailureKind::Unsupported);
        assert_eq!(authzid.message, AUTHZID_MISMATCH);

        for malformed in [
            "",
            "n",
            "n,",
            "n,,",
            "x,,n=alice,r=abc",
            "n,b=alice,n=alice,r=abc",
            "n,,n=,r=abc",
            "n,,n=al=ice,r=abc",
            "n,,n=alice=2,r=abc",
            "n,,n=alice=2c,r=abc",
            "n,,n=al\0ice,r=abc",
            "n,,n=alice",
            "n,,n=alice,r=",
            "n,,n=alice,r=a b",
            "n,,n=alice,x=abc",
            "n,,r=abc,n=alice",
            "n,,n=alice,r=abc,",
            "n,,n=alice,r=abc,=1",
        ] {
            let failure = first(malformed);
            assert_eq!(
                failure.kind,
                FailureKind::Malformed,
                "{malformed:?}: {failure:?}"
            );
            assert_eq!(
                failure.message,
                "Authentication failed: malformed SCRAM-SHA-512 message"
            );
        }
        assert_eq!(
            SaslServer::new(SaslMechanism::Scram(S512)).step(&[b'n', b',', b',', 0xff], &users),
            SaslStep::Failed(AuthFailure::malformed(
                SaslMechanism::Scram(S512),
                "SCRAM client-first: not UTF-8"
            ))
        );
    }

    #[test]
    fn a_failed_exchange_stays_failed() {
        let users = users_with("alice", "pw", &[S512]);
        let client = Client::new(S512, "alice", "pw", "n");
        let mut server = SaslServer::new(SaslMechanism::Scram(S512));
        failed(server.step(b"garbage", &users));
        // Even a correct client-first is refused now.
        failed(server.step(&client.first(), &users));

        let mut plain = SaslServer::new(SaslMechanism::Plain);
        failed(plain.step(b"\0alice\0wrong", &users));
        failed(plain.step(b"\0alice\0pw", &users));
    }

    #[test]
    fn plain() {
        let users = users_with("alice", "pw:with\u{e9}", &[S256, S512]);
        let only_256 = users_with("bob", "bobpw", &[S256]);
        let step =
            |token: &[u8], users: &Users| SaslServer::new(SaslMechanism::Plain).step(token, users);
        let done = |user: &str| SaslStep::Done {
            user: user.into(),
            response: Vec::new(),
        };

        assert_eq!(
            step("\0alice\0pw:with\u{e9}".as_bytes(), &users),
            done("alice")
        );
        assert_eq!(
            step("alice\0alice\0pw:with\u{e9}".as_bytes(), &users),
            done("alice")
        );
        assert_eq!(
            step(b"\0bob\0bobpw", &only_256),
            done("bob"),
            "falls back to SHA-256"
        );

        let wrong = failed(step(b"\0alice\0pw", &users));
        assert_eq!(wrong.kind, FailureKind::InvalidCredentials);
        assert_eq!(wrong.message, invalid_credentials_message("PLAIN"));
        let unknown = failed(step(b"\0ghost\0pw", &users));
        assert_eq!(unknown.message, wrong.message);
        assert!(unknown.log_reason.contains("unknown user"), "{unknown:?}");
        assert!(!unknown.log_reason.contains("pw"), "no password in the log");

        let mismatch = failed(step("bob\0alice\0pw:with\u{e9}".as_bytes(), &users));
        assert_eq!(mismatch.kind, FailureKind::Unsupported);
        assert_eq!(mismatch.message, AUTHZID_MISMATCH);

        for malformed in [
            &b""[..],
            b"alice",
            b"\0alice",
            b"\0\0pw",
            b"\0alice\0",
            b"\0alice\0pw\0",
            b"\0alice\0\xff",
        ] {
            let failure = failed(step(malformed, &users));
            assert_eq!(failure.kind, FailureKind::Malformed, "{malformed:?}");
            assert_eq!(
                failure.message,
                "Authentication failed: malformed PLAIN message"
            );
        }
    }

    /// xorshift64*: enough randomness to shake a parser, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn bytes(&mut self, len: usize, alphabet: &[u8]) -> Vec<u8> {
            (0..len)
                .map(|_| {
                    let r = self.next();
                    if alphabet.is_empty() {
                        r as u8
                    } else {
                        alphabet[(r % alphabet.len() as u64) as usize]
                    }
                })
                .collect()
        }
    }

    #[test]
    fn no_input_panics() {
        let users = users_with("alice", "pw", &[S256, S512]);
        let client = Client::new(S256, "alice", "pw", "fuzznonce");
        let mut seed = SaslServer::with_server_nonce(SaslMechanism::Scram(S256), "servernonce");
        let server_first = continued(seed.step(&client.first(), &users));
        let (last, _) = client.last(&server_first);
        let first = client.first();
        let plain_token = b"alice\0alice\0pw".to_vec();

        // Bytes that make the parsers take their branches, and any byte at all.
        let scram_alphabet = b"nypacrmsi=,23CD\0\xff\xc3AZaz09+/";
        let mut rng = Rng(0x5eed_cafe_f00d_0001);
        let mut tokens: Vec<Vec<u8>> = Vec::new();
        for message in [&first, &last, &plain_token] {
            // Every prefix and every one-byte change.
            for len in 0..message.len() {
                tokens.push(message[..len].to_vec());
                let mut changed = message.clone();
                changed[len] = scram_alphabet[len % scram_alphabet.len()];
                tokens.push(changed);
            }
        }
        for _ in 0..300 {
            let len = (rng.next() % 64) as usize;
            tokens.push(rng.bytes(len, &[]));
            tokens.push(rng.bytes(len, scram_alphabet));
        }

        for token in &tokens {
            for mechanism in [SaslMechanism::Scram(S256), SaslMechanism::Scram(S512)] {
                // As a client-first, then a client-final after a good client-first.
                let mut server = SaslServer::new(mechanism);
                if let SaslStep::Continue(_) = server.step(token, &users) {
                    assert!(matches!(server.step(token, &users), SaslStep::Failed(_)));
                }
                let mut server =
                    SaslServer::with_server_nonce(SaslMechanism::Scram(S256), "servernonce");
                continued(server.step(&first, &users));
                let outcome = server.step(token, &users);
                if token != &last {
                    assert!(
                        matches!(outcome, SaslStep::Failed(_)),
                        "{token:?}: {outcome:?}"
                    );
                }
            }
            // PLAIN runs Hi for a well-formed token, so only the short or odd ones here.
            if token.len() < 24 {
                let outcome = SaslServer::new(SaslMechanism::Plain).step(token, &users);
                if token != &plain_token {
                    assert!(
                        matches!(outcome, SaslStep::Failed(_)),
                        "{token:?}: {outcome:?}"
                    );
                }
            }
        }
    }
}
