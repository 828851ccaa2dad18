//! TLS for SSL and SASL_SSL listeners: the server's certificate, client certificates, and
//! how a client certificate's subject becomes a principal.
//!
//! rustls does the TLS on the shard's own executor (futures-rustls over glommio's
//! `TcpStream`): no extra threads on the data path. The configuration is shared by every
//! shard and replaced whole on SIGHUP, so a renewed certificate is served to new
//! connections while open ones keep the session they have.

use crate::config::{ClientAuth, Config};
use regex::Regex;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The server side of TLS, as the flags set it, reloadable.
pub struct ServerTls {
    files: TlsFiles,
    /// Read once per accepted connection (not per request), replaced on reload.
    current: RwLock<Configs>,
}

/// One certificate, served two ways: SSL listeners ask for client certificates as
/// --ssl-client-auth says; SASL_SSL listeners never do (clients prove who they are with
/// SASL there), as Kafka does unless ssl.client.auth is set for that listener.
#[derive(Clone)]
struct Configs {
    ssl: Arc<ServerConfig>,
    sasl_ssl: Arc<ServerConfig>,
}

/// Where the configuration is read from, again on each reload.
struct TlsFiles {
    certificate: PathBuf,
    key: PathBuf,
    ca: Option<PathBuf>,
    client_auth: ClientAuth,
}

impl ServerTls {
    /// The TLS configuration of `config`'s SSL and SASL_SSL listeners; `None` when no
    /// listener uses TLS. Fails, naming the file, when a file cannot be used.
    pub fn from_config(config: &Config) -> Result<Option<Arc<Self>>, String> {
        if !config.listeners().iter().any(|l| l.protocol.uses_tls()) {
            return Ok(None);
        }
        let (Some(certificate), Some(key)) = (&config.ssl_certificate, &config.ssl_key) else {
            return Err("SSL and SASL_SSL listeners need --ssl-certificate and --ssl-key".into());
        };
        let files = TlsFiles {
            certificate: certificate.clone(),
            key: key.clone(),
            ca: config.ssl_ca.clone(),
            client_auth: config.ssl_client_auth,
        };
        let current = RwLock::new(files.load()?);
        Ok(Some(Arc::new(Self { files, current })))
    }

    /// An acceptor with the configuration in force now, for an SSL listener or (`sasl`) a
    /// SASL_SSL one.
    pub fn acceptor(&self, sasl: bool) -> futures_rustls::TlsAcceptor {
        let configs = match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        futures_rustls::TlsAcceptor::from(match sasl {
            true => configs.sasl_ssl,
            false => configs.ssl,
        })
    }

    /// Reads the certificate, key and CA files again and serves them to new connections.
    /// On an error the configuration in force stays, and the error says which file.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = self.files.load()?;
        match self.current.write() {
            Ok(mut current) => *current = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }
}

impl TlsFiles {
    fn load(&self) -> Result<Configs, String> {
        Ok(Configs {
            ssl: self.load_one(self.client_auth)?,
            sasl_ssl: self.load_one(ClientAuth::None)?,
        })
    }

    fn load_one(&self, client_auth: ClientAuth) -> Result<Arc<ServerConfig>, String> {
        let chain = certificates(&self.certificate)?;
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| format!("--ssl-key {}: {e}", self.key.display()))?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = match (&self.ca, client_auth) {
            (_, ClientAuth::None) => builder.with_no_client_auth(),
            (None, _) => return Err("--ssl-client-auth needs --ssl-ca".into()),
            (Some(ca), auth) => {
                let mut roots = RootCertStore::empty();
                for certificate in certificates(ca)? {
                    roots
                        .add(certificate)
                        .map_err(|e| format!("--ssl-ca {}: {e}", ca.display()))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
                let verifier = match auth {
                    ClientAuth::Requested => verifier.allow_unauthenticated(),
                    _ => verifier,
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| format!("--ssl-ca {}: {e}", ca.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(chain, key).map_err(|e| {
            format!(
                "--ssl-certificate {} and --ssl-key {}: {e}",
                self.certificate.display(),
                self.key.display()
            )
        })?;
        Ok(Arc::new(config))
    }
}

/// The one crypto provider of every TLS configuration (listeners, SeaweedFS).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The PEM certificates in `path`; an error naming the file when it has none.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let found = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if found.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(found)
}

/// A certificate's subject as Kafka names it (Java's X500Principal in RFC 2253 form):
/// "CN=alice,OU=eng,O=example,C=DE", most specific first.
pub fn subject_of(certificate: &[u8]) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate).ok()?;
    let mut rdns: Vec<String> = Vec::new();
    for rdn in parsed.subject().iter() {
        let attributes: Vec<String> = rdn
            .iter()
            .map(|attribute| {
                let oid = attribute.attr_type().to_id_string();
                let value = attribute.as_str().map(escape_rfc2253).unwrap_or_else(|_| {
                    // Not a string type: RFC 2253 gives its DER as #hex.
                    let bytes = attribute.as_slice();
                    format!(
                        "#{}",
                        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
                    )
                });
                format!("{}={value}", short_name(&oid).unwrap_or(&oid))
            })
            .collect();
        rdns.push(attributes.join("+"));
    }
    // The certificate lists the least specific first; RFC 2253 prints the reverse.
    rdns.reverse();
    Some(rdns.join(","))
}

/// The names Java's X500Principal uses in RFC 2253 form; other attributes keep their OID.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn escape_rfc2253(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let leading = i == 0 && (c == ' ' || c == '#');
        let trailing = i == last && c == ' ';
        if leading || trailing || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Kafka's ssl.principal.mapping.rules: how a certificate subject becomes a user name.
#[derive(Debug)]
pub struct PrincipalMapper {
    rules: Vec<MappingRule>,
}

#[derive(Debug)]
enum MappingRule {
    /// The whole subject, as it is.
    Default,
    Rule {
        /// The pattern anchored at both ends: Kafka applies a rule only when it matches the
        /// whole subject.
        whole: Regex,
        pattern: Regex,
        replacement: String,
        case: Option<Case>,
    },
}

#[derive(Debug, Clone, Copy)]
enum Case {
    Lower,
    Upper,
}

impl PrincipalMapper {
    /// Parses "RULE:pattern/replacement/[LU]" and "DEFAULT" entries separated by commas (a
    /// pattern may hold commas, and "\/" for a slash), as Kafka does.
    pub fn parse(rules: &str) -> Result<Self, String> {
        let mut parsed = Vec::new();
        let mut rest = rules.trim_start_matches([' ', ',']);
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                parsed.push(MappingRule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after)
                    .ok_or_else(|| format!("{rest:?}: a RULE is RULE:pattern/replacement/"))?;
                let (replacement, mut after) = until_slash(after)
                    .ok_or_else(|| format!("{rest:?}: a RULE is RULE:pattern/replacement/"))?;
                let case = match after.chars().next() {
                    Some('L') => Some(Case::Lower),
                    Some('U') => Some(Case::Upper),
                    _ => None,
                };
                if case.is_some() {
                    after = &after[1..];
                }
                let compile = |p: &str| Regex::new(p).map_err(|e| format!("{pattern:?}: {e}"));
                parsed.push(MappingRule::Rule {
                    whole: compile(&format!("^(?:{pattern})$"))?,
                    pattern: compile(&pattern)?,
                    replacement: java_replacement(&replacement),
                    case,
                });
                rest = after;
            } else {
                return Err(format!("{rest:?} is neither DEFAULT nor RULE:…"));
            }
            rest = rest.trim_start_matches(' ');
            match rest.strip_prefix(',') {
                Some(after) => rest = after.trim_start_matches(' '),
                None if rest.is_empty() => {}
                None => return Err(format!("{rest:?}: rules are separated by commas")),
            }
        }
        if parsed.is_empty() {
            parsed.push(MappingRule::Default);
        }
        Ok(Self { rules: parsed })
    }

    /// The user name of a certificate with subject `subject`: the first rule that applies,
    /// or the subject itself when none does.
    pub fn user_name(&self, subject: &str) -> String {
        for rule in &self.rules {
            match rule {
                MappingRule::Default => return subject.to_string(),
                MappingRule::Rule {
                    whole,
                    pattern,
                    replacement,
                    case,
                } if whole.is_match(subject) => {
                    let name = pattern.replace_all(subject, replacement.as_str());
                    return match case {
                        Some(Case::Lower) => name.to_lowercase(),
                        Some(Case::Upper) => name.to_uppercase(),
                        None => name.into_owned(),
                    };
                }
                MappingRule::Rule { .. } => {}
            }
        }
        subject.to_string()
    }
}

/// The text up to the next unescaped '/', with "\/" unescaped, and what follows it.
fn until_slash(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if text[i + 1..].starts_with('/') => {
                out.push('/');
                chars.next();
            }
            '/' => return Some((out, &text[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// Java's replacement syntax ($1) in the regex crate's (${1}), so "$1x" stays group 1
/// followed by "x" as Java reads it.
fn java_replacement(replacement: &str) -> String {
    let mut out = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut group = String::new();
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    group.push(d);
                }
                out.push_str(&format!("${{{group}}}"));
            }
            '$' => out.push_str("$$"),
            '\\' => {
                if let Some(next) = chars.next() {
                    if next == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(next);
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_rules_as_kafka_documents_them() {
        let mapper = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
        )
        .expect("Kafka's documented example");
        assert_eq!(
            mapper.user_name(
                "CN=kafka-admin,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown"
            ),
            "kafka-admin"
        );
        assert_eq!(
            mapper.user_name("CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Santa Clara,ST=CA,C=US"),
            "duke@javasoft"
        );
        assert_eq!(mapper.user_name("OU=x,cn=Alice.B,O=y"), "alice.b");
        assert_eq!(mapper.user_name("O=no-cn"), "O=no-cn");
        let default = PrincipalMapper::parse("DEFAULT").expect("DEFAULT");
        assert_eq!(default.user_name("CN=a,O=b"), "CN=a,O=b");
        let upper = PrincipalMapper::parse("RULE:^CN=([^,]*).*$/$1/U").expect("U");
        assert_eq!(upper.user_name("CN=bob,O=x"), "BOB");
        let slash = PrincipalMapper::parse(r"RULE:^CN=(.*)\/(.*)$/$2-$1/").expect("escaped /");
        assert_eq!(slash.user_name("CN=a/b"), "b-a");
        for bad in ["RULE:^CN=(.*$/x/", "RULE:no-slash", "NOPE", "DEFAULT x"] {
            assert!(PrincipalMapper::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc2253_escapes_specials() {
        assert_eq!(escape_rfc2253("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rfc2253(" #x "), "\\ #x\\ ");
        assert_eq!(escape_rfc2253("#x"), "\\#x");
    }
}
