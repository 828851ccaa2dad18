//! Users and their SCRAM credentials, kept as Kafka keeps them: a salt, an iteration count
//! and two derived keys per mechanism, never a password (RFC 5802 section 3).
//!
//! With `StoredKey` and `ServerKey` the gateway can check a SCRAM proof and prove itself to
//! the client, and can check a SASL PLAIN password by deriving the keys again; whoever reads
//! the stored keys still cannot log in as the user without the password.
//!
//! A credential comes from a password ([`ScramCredential::from_password`], the users file),
//! or from the salt and salted password an AlterUserScramCredentials request carries
//! ([`ScramCredential::from_salted_password`]). [`Users`] is serialized as JSON
//! ([`Users::to_json`]) to be kept in SeaweedFS's filer and read back by every gateway.
//!
//! # The users file (`--users-file`)
//!
//! One user per line, `NAME:PASSWORD`. The name ends at the first `:`, so a password may
//! contain `:` but a name may not; the name must not be empty, nor the password. Empty lines
//! (or lines of only spaces) and lines whose first non-blank character is `#` are skipped.
//! The rest of the line is the password as written (spaces included); a `\r` before the
//! line end is dropped, so a file saved with CRLF line ends reads the same. A name may appear
//! once. Each user gets a SCRAM-SHA-256 and a SCRAM-SHA-512 credential with 4096 iterations
//! (Kafka's minimum and the usual default), each with its own random salt.
//!
//! ```text
//! # name:password
//! alice:alice-secret
//! bob:pass:with:colons
//! ```
//!
//! Parse it once at start-up and give each shard a clone: the salts are random, and a
//! client must see the same salt for a user on every connection (see [`Users`]).

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};
use serde::{Deserialize, Serialize};

/// Salt length for credentials made here, in bytes (a salt from AlterUserScramCredentials
/// keeps whatever length the client chose).
const SALT_LEN: usize = 32;

/// Iterations for credentials made from the users file.
pub const USERS_FILE_ITERATIONS: u32 = 4096;

/// A SCRAM mechanism: which hash SCRAM runs over (RFC 7677 for SHA-256; SHA-512 as Kafka
/// names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256; KIP-554 code 1.
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    /// SCRAM-SHA-512; KIP-554 code 2.
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    /// Both mechanisms, in KIP-554 code order.
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// Fewest iterations AlterUserScramCredentials accepts (Kafka's `minIterations`, the
    /// same for both mechanisms).
    pub const MIN_ITERATIONS: u32 = 4096;

    /// Most iterations AlterUserScramCredentials accepts (Kafka's `maxIterations`): each
    /// authentication with PLAIN costs this many HMACs, so the bound caps a login's CPU.
    pub const MAX_ITERATIONS: u32 = 16384;

    /// The SASL mechanism name, as SaslHandshake and the Kafka configs spell it.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism for a SASL name; names are case-sensitive, as in Kafka.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The `mechanism` int8 of DescribeUserScramCredentials and AlterUserScramCredentials
    /// (KIP-554): 1 for SHA-256, 2 for SHA-512 (0 is Kafka's UNKNOWN).
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The mechanism for a KIP-554 code; `None` for 0 (UNKNOWN) and anything else.
    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }

    /// Checks an AlterUserScramCredentials iteration count against Kafka's bounds; the
    /// errors' texts are Kafka's own (UNACCEPTABLE_CREDENTIAL).
    pub fn check_iterations(iterations: i32) -> Result<u32, CredentialError> {
        let iterations =
            u32::try_from(iterations).map_err(|_| CredentialError::TooFewIterations)?;
        check_bounds(iterations)?;
        Ok(iterations)
    }

    /// Length of the hash, of `StoredKey`, `ServerKey`, a salted password and a proof.
    pub fn digest_len(self) -> usize {
        self.digest_algorithm().output_len()
    }

    fn digest_algorithm(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn hmac_algorithm(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    /// `HMAC(key, data)` with this mechanism's hash.
    pub(crate) fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let key = hmac::Key::new(self.hmac_algorithm(), key);
        hmac::sign(&key, data).as_ref().to_vec()
    }

    /// `H(data)` with this mechanism's hash.
    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest_algorithm(), data)
            .as_ref()
            .to_vec()
    }

    /// `Hi(password, salt, iterations)` of RFC 5802, which is PBKDF2 with this HMAC and an
    /// output of one hash length. `None` for zero iterations (no credential has them).
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Option<Vec<u8>> {
        let iterations = NonZeroU32::new(iterations)?;
        let algorithm = match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        };
        let mut out = vec![0; self.digest_len()];
        pbkdf2::derive(algorithm, iterations, salt, password, &mut out);
        Some(out)
    }
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a credential or a user store could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// Below [`ScramMechanism::MIN_ITERATIONS`]; the text is Kafka's.
    #[error("Too few iterations")]
    TooFewIterations,
    /// Above [`ScramMechanism::MAX_ITERATIONS`]; the text is Kafka's.
    #[error("Too many iterations")]
    TooManyIterations,
    #[error("the salt must not be empty")]
    EmptySalt,
    #[error("a salted password for {mechanism} must be {expected} bytes, not {actual}")]
    SaltedPasswordLength {
        mechanism: ScramMechanism,
        expected: usize,
        actual: usize,
    },
    #[error("the system random number generator failed")]
    Random,
    #[error("stored users are not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("stored users are not valid: {0}")]
    Invalid(String),
}

/// One user's credential for one mechanism (RFC 5802 section 3):
/// `SaltedPassword = Hi(password, salt, iterations)`,
/// `StoredKey = H(HMAC(SaltedPassword, "Client Key"))`,
/// `ServerKey = HMAC(SaltedPassword, "Server Key")`.
///
/// Serialized with the byte fields in standard base64. `Debug` leaves the keys out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    #[serde(with = "base64_bytes")]
    salt: Vec<u8>,
    iterations: u32,
    #[serde(with = "base64_bytes")]
    stored_key: Vec<u8>,
    #[serde(with = "base64_bytes")]
    server_key: Vec<u8>,
}

impl ScramCredential {
    /// A credential for `password` with a fresh random salt of 32 bytes. `iterations` must
    /// lie within Kafka's bounds ([`ScramMechanism::MIN_ITERATIONS`] to `MAX_ITERATIONS`).
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        iterations: u32,
    ) -> Result<Self, CredentialError> {
        check_bounds(iterations)?;
        let mut salt = vec![0; SALT_LEN];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| CredentialError::Random)?;
        let salted = mechanism
            .salted_password(password.as_bytes(), &salt, iterations)
            .ok_or(CredentialError::TooFewIterations)?;
        Self::from_salted_password(mechanism, &salt, iterations, &salted)
    }

    /// A credential from what AlterUserScramCredentials carries: the salt, the iteration
    /// count and `SaltedPassword` (the client ran `Hi`, so the password never travels).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: &[u8],
        iterations: u32,
        salted_password: &[u8],
    ) -> Result<Self, CredentialError> {
        check_bounds(iterations)?;
        if salt.is_empty() {
            return Err(CredentialError::EmptySalt);
        }
        if salted_password.len() != mechanism.digest_len() {
            return Err(CredentialError::SaltedPasswordLength {
                mechanism,
                expected: mechanism.digest_len(),
                actual: salted_password.len(),
            });
        }
        let (stored_key, server_key) = derive_keys(mechanism, salted_password);
        Ok(ScramCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key,
            server_key,
        })
    }

    /// Whether `password` is this credential's password (SASL PLAIN): runs `Hi` again and
    /// compares the derived `StoredKey` in constant time. Costs `iterations` HMACs.
    pub fn verify_password(&self, mechanism: ScramMechanism, password: &str) -> bool {
        let Some(salted) =
            mechanism.salted_password(password.as_bytes(), &self.salt, self.iterations)
        else {
            return false;
        };
        let (stored_key, _) = derive_keys(mechanism, &salted);
        constant_time_eq(&stored_key, &self.stored_key)
    }

    /// The salt, sent to the client in the SCRAM server-first message.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// The `Hi` iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// `StoredKey`: checks a client's proof.
    pub fn stored_key(&self) -> &[u8] {
        &self.stored_key
    }

    /// `ServerKey`: signs the server-final message.
    pub fn server_key(&self) -> &[u8] {
        &self.server_key
    }

    /// Whether the lengths fit `mechanism` and the count lies within Kafka's bounds: a
    /// credential read back from storage passed through no constructor.
    fn check(&self, mechanism: ScramMechanism) -> Result<(), String> {
        check_bounds(self.iterations).map_err(|e| e.to_string())?;
        let len = mechanism.digest_len();
        if self.salt.is_empty() {
            return Err("empty salt".into());
        }
        if self.stored_key.len() != len || self.server_key.len() != len {
            return Err(format!("keys for {mechanism} must be {len} bytes"));
        }
        Ok(())
    }
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys stay out of logs: with StoredKey and ServerKey one can pose as the server.
        f.debug_struct("ScramCredential")
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

fn check_bounds(iterations: u32) -> Result<(), CredentialError> {
    if iterations < ScramMechanism::MIN_ITERATIONS {
        Err(CredentialError::TooFewIterations)
    } else if iterations > ScramMechanism::MAX_ITERATIONS {
        Err(CredentialError::TooManyIterations)
    } else {
        Ok(())
    }
}

/// `(StoredKey, ServerKey)` from `SaltedPassword`.
fn derive_keys(mechanism: ScramMechanism, salted_password: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let client_key = mechanism.hmac(salted_password, b"Client Key");
    let stored_key = mechanism.hash(&client_key);
    let server_key = mechanism.hmac(salted_password, b"Server Key");
    (stored_key, server_key)
}

/// Compares two secrets without stopping at the first difference, so the time taken does
/// not tell how long a prefix matched. ring's own `constant_time` module is deprecated; the
/// lengths compared here are public (a digest length).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// One user's credentials as DescribeUserScramCredentials reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserScramCredentials {
    /// The user name.
    pub name: String,
    /// One entry per mechanism, in code order; empty when the user does not exist (the
    /// handler answers RESOURCE_NOT_FOUND), since a user without credentials is removed.
    pub credentials: Vec<CredentialInfo>,
}

/// A credential's public part: its mechanism and iteration count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialInfo {
    pub mechanism: ScramMechanism,
    pub iterations: u32,
}

/// The users the gateway authenticates: name → mechanism → credential.
///
/// Besides the credentials it keeps a random key for fake salts: a client that names an
/// unknown user must get a server-first message that looks like a real user's, with the
/// same salt on every attempt (a real user's salt does not change between attempts). The
/// key travels with the users (JSON, clones), so every shard and every gateway reading the
/// same stored users gives an unknown name the same fake salt.
#[derive(Clone, Serialize, Deserialize)]
pub struct Users {
    /// Bumped on every change; saved, so a reader can tell whether what it holds is stale.
    version: u64,
    #[serde(with = "base64_bytes", default)]
    fake_salt_key: Vec<u8>,
    users: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
}

impl Users {
    /// No users, version 0, a fresh fake-salt key.
    pub fn new() -> Result<Self, CredentialError> {
        Ok(Users {
            version: 0,
            fake_salt_key: random_key()?,
            users: BTreeMap::new(),
        })
    }

    /// `name`'s credential for `mechanism`, if any.
    pub fn get(&self, name: &str, mechanism: ScramMechanism) -> Option<&ScramCredential> {
        self.users.get(name)?.get(&mechanism)
    }

    /// Sets `name`'s credential for `mechanism`, creating the user if need be.
    pub fn upsert(&mut self, name: &str, mechanism: ScramMechanism, credential: ScramCredential) {
        self.users
            .entry(name.to_owned())
            .or_default()
            .insert(mechanism, credential);
        self.version += 1;
    }

    /// Removes `name`'s credential for `mechanism`; a user left with none is removed.
    /// Returns whether there was one (AlterUserScramCredentials answers
    /// RESOURCE_NOT_FOUND when not).
    pub fn remove(&mut self, name: &str, mechanism: ScramMechanism) -> bool {
        let Some(credentials) = self.users.get_mut(name) else {
            return false;
        };
        if credentials.remove(&mechanism).is_none() {
            return false;
        }
        if credentials.is_empty() {
            self.users.remove(name);
        }
        self.version += 1;
        true
    }

    /// Every credential: user, mechanism, credential, in name then mechanism order.
    pub fn credentials(&self) -> impl Iterator<Item = (&str, ScramMechanism, &ScramCredential)> {
        self.users.iter().flat_map(|(name, credentials)| {
            credentials
                .iter()
                .map(move |(&mechanism, credential)| (name.as_str(), mechanism, credential))
        })
    }

    /// What DescribeUserScramCredentials answers: with `None` or an empty list (Kafka's
    /// "null or empty to describe all users"), every user in name order; otherwise one
    /// entry per name asked, in the order asked, duplicates included (the handler reports
    /// them), an unknown name with no credentials.
    pub fn describe(&self, names: Option<&[String]>) -> Vec<UserScramCredentials> {
        let describe_one = |name: &str| UserScramCredentials {
            name: name.to_owned(),
            credentials: self
                .users
                .get(name)
                .map(|credentials| {
                    credentials
                        .iter()
                        .map(|(&mechanism, c)| CredentialInfo {
                            mechanism,
                            iterations: c.iterations,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        match names {
            Some(names) if !names.is_empty() => names.iter().map(|n| describe_one(n)).collect(),
            _ => self.users.keys().map(|n| describe_one(n)).collect(),
        }
    }

    /// The change counter: 0 when new, one more after each upsert or successful remove.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The users as JSON, for SeaweedFS's filer: salts and keys in base64, no password,
    /// the version and the fake-salt key included.
    pub fn to_json(&self) -> Result<String, CredentialError> {
        Ok(serde_json::to_string(self)?)
    }

    /// Users read back from [`Users::to_json`]'s output. Every credential is checked
    /// (lengths, iteration bounds), since what is stored may have been edited; a document
    /// without a fake-salt key gets a fresh one.
    pub fn from_json(json: &[u8]) -> Result<Self, CredentialError> {
        let mut users: Users = serde_json::from_slice(json)?;
        for (name, credentials) in &users.users {
            if name.is_empty() {
                return Err(CredentialError::Invalid("empty user name".into()));
            }
            if credentials.is_empty() {
                return Err(CredentialError::Invalid(format!(
                    "user {name} has no credentials"
                )));
            }
            for (&mechanism, credential) in credentials {
                credential.check(mechanism).map_err(|e| {
                    CredentialError::Invalid(format!("user {name}, {mechanism}: {e}"))
                })?;
            }
        }
        if users.fake_salt_key.is_empty() {
            users.fake_salt_key = random_key()?;
        }
        Ok(users)
    }

    /// A credential for a user that does not exist, the same for the same name every time
    /// (see [`Users`]): salt and keys derived from the fake-salt key, Kafka's usual 4096
    /// iterations. No password matches it, and callers fail the exchange regardless.
    pub(crate) fn fake_credential(&self, name: &str, mechanism: ScramMechanism) -> ScramCredential {
        let derive = |label: &str, len: usize| {
            // Label and mechanism hold no NUL, so after the second NUL comes the name alone:
            // different inputs never collide.
            let input = [
                label.as_bytes(),
                b"\0",
                mechanism.name().as_bytes(),
                b"\0",
                name.as_bytes(),
            ]
            .concat();
            let mut out = ScramMechanism::Sha512.hmac(&self.fake_salt_key, &input);
            out.truncate(len);
            out
        };
        ScramCredential {
            salt: derive("salt", SALT_LEN),
            iterations: USERS_FILE_ITERATIONS,
            stored_key: derive("stored key", mechanism.digest_len()),
            server_key: derive("server key", mechanism.digest_len()),
        }
    }
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names and mechanisms only: no keys in logs.
        f.debug_struct("Users")
            .field("version", &self.version)
            .field(
                "users",
                &self
                    .users
                    .iter()
                    .map(|(name, c)| (name, c.keys().collect::<Vec<_>>()))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn random_key() -> Result<Vec<u8>, CredentialError> {
    let mut key = vec![0; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| CredentialError::Random)?;
    Ok(key)
}

/// Reads a `--users-file` (format in the module comment). The error names the line and
/// never quotes it, since the line holds a password.
pub fn parse_users_file(text: &str) -> Result<Users, String> {
    let mut users = Users::new().map_err(|e| e.to_string())?;
    let mut first_seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, line) in text.split('\n').enumerate() {
        let number = index + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((name, password)) = line.split_once(':') else {
            return Err(format!("users file, line {number}: expected NAME:PASSWORD"));
        };
        if name.is_empty() {
            return Err(format!("users file, line {number}: the user name is empty"));
        }
        if password.is_empty() {
            return Err(format!("users file, line {number}: the password is empty"));
        }
        if let Some(first) = first_seen.insert(name, number) {
            return Err(format!(
                "users file, line {number}: user {name} already appears on line {first}"
            ));
        }
        for mechanism in ScramMechanism::ALL {
            let credential =
                ScramCredential::from_password(mechanism, password, USERS_FILE_ITERATIONS)
                    .map_err(|e| format!("users file, line {number}: {e}"))?;
            users.upsert(name, mechanism, credential);
        }
    }
    Ok(users)
}

/// Serde for byte fields as standard base64 strings.
mod base64_bytes {
    use super::BASE64;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        BASE64.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    /// `Hi` written out as RFC 5802 section 2.2 defines it (U1 = HMAC(p, salt || INT(1)),
    /// Ui = HMAC(p, Ui-1), XOR of all), independent of ring's PBKDF2.
    fn rfc_hi(mechanism: ScramMechanism, password: &[u8], salt: &[u8], i: u32) -> Vec<u8> {
        let mut u = mechanism.hmac(password, &[salt, &[0, 0, 0, 1]].concat());
        let mut out = u.clone();
        for _ in 1..i {
            u = mechanism.hmac(password, &u);
            out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
        }
        out
    }

    #[test]
    fn mechanism_names_and_kip_554_codes() {
        assert_eq!(ScramMechanism::Sha256.name(), "SCRAM-SHA-256");
        assert_eq!(ScramMechanism::Sha512.name(), "SCRAM-SHA-512");
        assert_eq!(ScramMechanism::Sha256.code(), 1);
        assert_eq!(ScramMechanism::Sha512.code(), 2);
        for m in ScramMechanism::ALL {
            assert_eq!(ScramMechanism::from_name(m.name()), Some(m));
            assert_eq!(ScramMechanism::from_code(m.code()), Some(m));
        }
        assert_eq!(ScramMechanism::from_name("scram-sha-256"), None);
        assert_eq!(ScramMechanism::from_name("PLAIN"), None);
        assert_eq!(ScramMechanism::from_code(0), None);
        assert_eq!(ScramMechanism::from_code(3), None);
        assert_eq!(ScramMechanism::from_code(-1), None);
    }

    #[test]
    fn iteration_bounds_are_kafkas() {
        let check = ScramMechanism::check_iterations;
        assert!(matches!(check(-1), Err(CredentialError::TooFewIterations)));
        assert!(matches!(
            check(4095),
            Err(CredentialError::TooFewIterations)
        ));
        assert_eq!(check(4096).expect("min"), 4096);
        assert_eq!(check(16384).expect("max"), 16384);
        assert!(matches!(
            check(16385),
            Err(CredentialError::TooManyIterations)
        ));
        assert_eq!(
            CredentialError::TooFewIterations.to_string(),
            "Too few iterations"
        );
        assert_eq!(
            CredentialError::TooManyIterations.to_string(),
            "Too many iterations"
        );

        let sp = [0u8; 32];
        let m = ScramMechanism::Sha256;
        assert!(ScramCredential::from_salted_password(m, b"salt", 4095, &sp).is_err());
        assert!(ScramCredential::from_salted_password(m, b"salt", 16385, &sp).is_err());
        assert!(ScramCredential::from_password(m, "p", 100).is_err());
    }

    #[test]
    fn from_salted_password_checks_salt_and_length() {
        let m = ScramMechanism::Sha512;
        assert!(matches!(
            ScramCredential::from_salted_password(m, b"", 4096, &[0; 64]),
            Err(CredentialError::EmptySalt)
        ));
        assert!(matches!(
            ScramCredential::from_salted_password(m, b"s", 4096, &[0; 32]),
            Err(CredentialError::SaltedPasswordLength {
                expected: 64,
                actual: 32,
                ..
            })
        ));
    }

    #[test]
    fn keys_follow_rfc_5802() {
        // RFC 7677's user: salt and count from its example exchange.
        let m = ScramMechanism::Sha256;
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("b64");
        let salted = rfc_hi(m, b"pencil", &salt, 4096);
        let c = ScramCredential::from_salted_password(m, &salt, 4096, &salted).expect("credential");
        let client_key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &salted), b"Client Key");
        assert_eq!(
            c.stored_key(),
            digest::digest(&digest::SHA256, client_key.as_ref()).as_ref()
        );
        let server_key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &salted), b"Server Key");
        assert_eq!(c.server_key(), server_key.as_ref());
        assert_eq!(c.salt(), &salt[..]);
        assert_eq!(c.iterations(), 4096);
        // ring's PBKDF2 agrees with the formula, so PLAIN accepts the same password.
        assert!(c.verify_password(m, "pencil"));
        assert!(!c.verify_password(m, "pencil "));
        assert!(!c.verify_password(m, ""));
    }

    #[test]
    fn from_password_salts_randomly_and_verifies() {
        for m in ScramMechanism::ALL {
            let a = ScramCredential::from_password(m, "secret", 4096).expect("a");
            let b = ScramCredential::from_password(m, "secret", 4096).expect("b");
            assert_eq!(a.salt().len(), 32);
            assert_ne!(a.salt(), b.salt());
            assert_ne!(a.stored_key(), b.stored_key());
            assert_eq!(a.stored_key().len(), m.digest_len());
            assert!(a.verify_password(m, "secret"));
            assert!(!a.verify_password(m, "Secret"));
        }
        // A credential checked under the other mechanism does not verify.
        let a = ScramCredential::from_password(ScramMechanism::Sha256, "secret", 4096).expect("a");
        assert!(!a.verify_password(ScramMechanism::Sha512, "secret"));
    }

    #[test]
    fn debug_leaves_keys_out() {
        let c = ScramCredential::from_password(ScramMechanism::Sha256, "pw", 4096).expect("c");
        let shown = format!("{c:?}");
        assert!(!shown.contains(&format!("{:?}", c.stored_key())));
        assert!(!shown.contains("stored"));
        let mut users = Users::new().expect("users");
        users.upsert("alice", ScramMechanism::Sha256, c);
        let shown = format!("{users:?}");
        assert!(shown.contains("alice") && !shown.contains("key"), "{shown}");
    }

    fn credential(m: ScramMechanism, iterations: u32) -> ScramCredential {
        ScramCredential::from_salted_password(m, b"salt", iterations, &vec![7; m.digest_len()])
            .expect("credential")
    }

    #[test]
    fn upsert_get_remove_and_version() {
        let (s256, s512) = (ScramMechanism::Sha256, ScramMechanism::Sha512);
        let mut users = Users::new().expect("users");
        assert_eq!(users.version(), 0);
        assert!(users.is_empty());
        users.upsert("alice", s256, credential(s256, 4096));
        users.upsert("alice", s512, credential(s512, 8192));
        assert_eq!(users.version(), 2);
        assert_eq!(users.get("alice", s512).map(|c| c.iterations()), Some(8192));
        assert_eq!(users.get("bob", s512), None);

        users.upsert("alice", s512, credential(s512, 5000));
        assert_eq!(users.get("alice", s512).map(|c| c.iterations()), Some(5000));
        assert_eq!(users.version(), 3);

        assert!(!users.remove("bob", s256));
        assert!(users.remove("alice", s256));
        assert!(!users.remove("alice", s256));
        assert_eq!(
            users.version(),
            4,
            "a remove that finds nothing changes nothing"
        );
        assert_eq!(users.len(), 1);
        assert!(users.remove("alice", s512));
        assert!(users.is_empty(), "a user without credentials is gone");
        assert_eq!(users.version(), 5);
    }

    #[test]
    fn describe_all_named_and_unknown() {
        let (s256, s512) = (ScramMechanism::Sha256, ScramMechanism::Sha512);
        let mut users = Users::new().expect("users");
        users.upsert("bob", s512, credential(s512, 8192));
        users.upsert("alice", s512, credential(s512, 4096));
        users.upsert("alice", s256, credential(s256, 4096));
        let info = |mechanism, iterations| CredentialInfo {
            mechanism,
            iterations,
        };

        let all = users.describe(None);
        assert_eq!(
            all,
            vec![
                UserScramCredentials {
                    name: "alice".into(),
                    credentials: vec![info(s256, 4096), info(s512, 4096)],
                },
                UserScramCredentials {
                    name: "bob".into(),
                    credentials: vec![info(s512, 8192)],
                },
            ]
        );
        assert_eq!(
            users.describe(Some(&[])),
            all,
            "empty means all, as in Kafka"
        );

        let asked = ["bob".to_string(), "nobody".to_string(), "bob".to_string()];
        let named = users.describe(Some(&asked));
        assert_eq!(named.len(), 3);
        assert_eq!(named[0].credentials, vec![info(s512, 8192)]);
        assert_eq!(named[1].name, "nobody");
        assert!(named[1].credentials.is_empty());
        assert_eq!(named[2], named[0]);
    }

    #[test]
    fn json_round_trip() {
        let (s256, s512) = (ScramMechanism::Sha256, ScramMechanism::Sha512);
        let mut users = Users::new().expect("users");
        users.upsert("alice", s256, credential(s256, 4096));
        users.upsert("a,b=c", s512, credential(s512, 16384));
        let json = users.to_json().expect("json");
        assert!(json.contains("\"SCRAM-SHA-256\""), "{json}");
        assert!(
            json.contains(&BASE64.encode(b"salt")),
            "bytes are base64: {json}"
        );

        let back = Users::from_json(json.as_bytes()).expect("read back");
        assert_eq!(back.version(), users.version());
        assert_eq!(back.get("alice", s256), users.get("alice", s256));
        assert_eq!(back.get("a,b=c", s512), users.get("a,b=c", s512));
        assert_eq!(back.describe(None), users.describe(None));
        assert_eq!(
            back.fake_credential("ghost", s512),
            users.fake_credential("ghost", s512),
            "an unknown user's fake salt survives storage"
        );
    }

    #[test]
    fn from_json_rejects_bad_documents() {
        assert!(matches!(
            Users::from_json(b"not json"),
            Err(CredentialError::Json(_))
        ));
        assert!(Users::from_json(b"{}").is_err());
        let doc = |iterations: u32, stored: &[u8]| {
            format!(
                r#"{{"version":1,"users":{{"u":{{"SCRAM-SHA-256":{{"salt":"c2FsdA==","iterations":{iterations},"stored_key":"{}","server_key":"{}"}}}}}}}}"#,
                BASE64.encode(stored),
                BASE64.encode([1u8; 32]),
            )
        };
        let good = Users::from_json(doc(4096, &[0; 32]).as_bytes()).expect("good");
        assert_eq!(good.len(), 1);
        assert!(
            !good.fake_salt_key.is_empty(),
            "a missing fake-salt key is made"
        );
        assert!(matches!(
            Users::from_json(doc(0, &[0; 32]).as_bytes()),
            Err(CredentialError::Invalid(_))
        ));
        assert!(Users::from_json(doc(1 << 30, &[0; 32]).as_bytes()).is_err());
        assert!(Users::from_json(doc(4096, &[0; 64]).as_bytes()).is_err());
        let bad_b64 = doc(4096, &[0; 32]).replace("c2FsdA==", "***");
        assert!(Users::from_json(bad_b64.as_bytes()).is_err());
        let unknown_mechanism = doc(4096, &[0; 32]).replace("SCRAM-SHA-256", "SCRAM-SHA-1");
        assert!(Users::from_json(unknown_mechanism.as_bytes()).is_err());
    }

    #[test]
    fn fake_credential_is_stable_per_name_and_unguessable() {
        let m = ScramMechanism::Sha256;
        let users = Users::new().expect("users");
        let a = users.fake_credential("ghost", m);
        assert_eq!(a, users.fake_credential("ghost", m));
        assert_eq!(a, users.clone().fake_credential("ghost", m));
        assert_ne!(a.salt(), users.fake_credential("ghost2", m).salt());
        assert_ne!(
            a.salt(),
            users
                .fake_credential("ghost", ScramMechanism::Sha512)
                .salt()
        );
        assert_eq!(a.salt().len(), 32);
        assert_eq!(a.iterations(), 4096);
        assert_eq!(a.stored_key().len(), 32);
        let other = Users::new().expect("other");
        assert_ne!(
            a.salt(),
            other.fake_credential("ghost", m).salt(),
            "keyed by a secret"
        );
    }

    #[test]
    fn users_file() {
        let text = "# comment\n\n   \nalice:alice-secret\r\n  # indented comment\nbob:pass:with:colons\ncarol: spaced \n";
        let users = parse_users_file(text).expect("parse");
        assert_eq!(users.len(), 3);
        for m in ScramMechanism::ALL {
            let alice = users.get("alice", m).expect("alice");
            assert_eq!(alice.iterations(), 4096);
            assert!(
                alice.verify_password(m, "alice-secret"),
                "the \\r is not in the password"
            );
            assert!(users
                .get("bob", m)
                .expect("bob")
                .verify_password(m, "pass:with:colons"));
            assert!(users
                .get("carol", m)
                .expect("carol")
                .verify_password(m, " spaced "));
        }
        assert!(parse_users_file("").expect("empty").is_empty());
    }

    #[test]
    fn users_file_errors_name_the_line_not_the_password() {
        let err = parse_users_file("alice:a\nno-colon-secret\n").expect_err("no colon");
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        let err = parse_users_file("# c\n:secret\n").expect_err("empty name");
        assert!(err.contains("line 2") && err.contains("name"), "{err}");
        let err = parse_users_file("alice:\n").expect_err("empty password");
        assert!(err.contains("line 1") && err.contains("password"), "{err}");
        let err = parse_users_file("alice:a\nbob:b\nalice:secret\n").expect_err("twice");
        assert!(err.contains("line 3") && err.contains("line 1"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
}
