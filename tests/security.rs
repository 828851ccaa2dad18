//! Authentication as a client meets it on the wire: what a SASL listener answers before,
//! during and after authentication (raw frames), re-authentication (KIP-368), and TLS
//! certificates read again on SIGHUP. Real clients over TLS and SASL are
//! tests/clients/test_security.py.

use crate::common::{Client, Server};
use bytes::{Buf, Bytes};
use kafka_protocol::messages::{
    ApiVersionsRequest, MetadataRequest, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::ResponseError;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SASL: &str = "SASL=SASL_PLAINTEXT://127.0.0.1:0";

fn users_file() -> PathBuf {
    let path = scratch_dir("users").join("users");
    std::fs::write(&path, "alice:alice-secret\n").expect("users file");
    path
}

fn scratch_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tidegate-security-{what}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn sasl_server(extra: &[&str]) -> Server {
    let users = users_file();
    let mut args = vec!["--users-file", users.to_str().expect("path")];
    args.extend_from_slice(extra);
    Server::start_listeners(&[SASL], &args)
}

fn plain_token(user: &str, password: &str) -> Bytes {
    Bytes::from(format!("\0{user}\0{password}"))
}

/// SaslHandshake v1 and one SaslAuthenticate v2 with PLAIN: the answer's error code,
/// message and session lifetime.
fn authenticate(client: &mut Client, password: &str) -> (i16, Option<String>, i64) {
    let handshake = client.call(
        &SaslHandshakeRequest::default().with_mechanism("PLAIN".into()),
        1,
    );
    assert_eq!(handshake.error_code, 0);
    let mechanisms: Vec<String> = handshake.mechanisms.iter().map(|m| m.to_string()).collect();
    assert!(mechanisms.contains(&"PLAIN".to_string()), "{mechanisms:?}");
    let answer = client.call(
        &SaslAuthenticateRequest::default().with_auth_bytes(plain_token("alice", password)),
        2,
    );
    (
        answer.error_code,
        answer.error_message.map(|m| m.to_string()),
        answer.session_lifetime_ms,
    )
}

fn metadata_answers(client: &mut Client) -> bool {
    client.send_frame(&crate::common::request_frame(
        &MetadataRequest::default(),
        12,
        99,
    ));
    client.read_frame().is_some()
}

#[test]
fn only_api_versions_and_sasl_come_before_authentication() {
    let server = sasl_server(&[]);
    let mut client = Client::connect(server.listeners["SASL"]);
    let versions = client.call(&ApiVersionsRequest::default(), 3);
    assert_eq!(versions.error_code, 0);
    for key in [17, 36] {
        assert!(
            versions.api_keys.iter().any(|k| k.api_key == key),
            "SASL API {key} advertised"
        );
    }
    assert!(!metadata_answers(&mut client), "Metadata before SASL");
    server.wait_for_log(
        "request before SASL authentication",
        Duration::from_secs(10),
    );

    let mut client = Client::connect(server.listeners["SASL"]);
    let (code, _, lifetime) = authenticate(&mut client, "alice-secret");
    assert_eq!((code, lifetime), (0, 0));
    assert!(metadata_answers(&mut client), "Metadata once authenticated");
}

#[test]
fn a_wrong_password_is_answered_late_and_closes_the_connection() {
    let server = sasl_server(&["--connection-failed-authentication-delay-ms", "400"]);
    let mut client = Client::connect(server.listeners["SASL"]);
    let asked = Instant::now();
    let (code, message, _) = authenticate(&mut client, "guess");
    assert!(
        asked.elapsed() >= Duration::from_millis(400),
        "answered at once"
    );
    assert_eq!(code, ResponseError::SaslAuthenticationFailed.code());
    let message = message.expect("a message");
    assert!(message.contains("invalid credentials"), "{message}");
    assert!(client.is_closed_by_server(), "still open after a failure");
    assert!(!server.log().contains("guess"), "the password was logged");
}

#[test]
fn sasl_handshake_v0_takes_bare_tokens() {
    let server = sasl_server(&[]);
    let mut client = Client::connect(server.listeners["SASL"]);
    let handshake = client.call(
        &SaslHandshakeRequest::default().with_mechanism("PLAIN".into()),
        0,
    );
    assert_eq!(handshake.error_code, 0);
    client.send_frame(&plain_token("alice", "alice-secret"));
    let answer = client.read_frame().expect("a bare answer");
    assert!(answer.is_empty(), "PLAIN answers nothing: {answer:?}");
    assert!(metadata_answers(&mut client), "Metadata once authenticated");

    // A wrong bare token: v0 has no error answer, the connection closes.
    let mut client = Client::connect(server.listeners["SASL"]);
    client.call(
        &SaslHandshakeRequest::default().with_mechanism("PLAIN".into()),
        0,
    );
    client.send_frame(&plain_token("alice", "guess"));
    assert!(client.read_frame().is_none(), "answered a wrong bare token");
}

#[test]
fn a_client_that_does_not_reauthenticate_in_time_is_closed() {
    let lifetime = Duration::from_millis(2000);
    let server = sasl_server(&["--connections-max-reauth-ms", "2000"]);
    let mut client = Client::connect(server.listeners["SASL"]);
    let first = Instant::now();
    let (code, _, told) = authenticate(&mut client, "alice-secret");
    assert_eq!((code, told), (0, 2000), "the session lifetime is told");
    assert!(metadata_answers(&mut client));
    // Halfway, re-authentication on the same connection, as clients do.
    sleep_until(first + lifetime / 2);
    let second = Instant::now();
    let (code, _, _) = authenticate(&mut client, "alice-secret");
    assert_eq!(code, 0, "re-authentication");
    // The server started the second lifetime between `second` and this answer; on a loaded
    // machine that can be long after `second`, so expiry is awaited from the answer.
    let answered = Instant::now();
    // Past the first lifetime, within the second: still served.
    sleep_until(first + lifetime + Duration::from_millis(200));
    assert!(
        second.elapsed() < lifetime,
        "the machine was too slow to check inside the second lifetime"
    );
    assert!(metadata_answers(&mut client), "re-authenticated in time");
    // The second lifetime passes without re-authentication: the next request closes it.
    sleep_until(answered + lifetime + Duration::from_millis(100));
    assert!(
        !metadata_answers(&mut client),
        "served after the session expired"
    );
    server.wait_for_log("did not re-authenticate", Duration::from_secs(10));
}

/// Waiting for time itself to pass is what these tests check.
fn sleep_until(when: Instant) {
    std::thread::sleep(when.saturating_duration_since(Instant::now()));
}

/// Makes a CA and a server certificate for 127.0.0.1 with `openssl`, in `dir`; the server's
/// common name is `name`. Returns the CA's path.
fn make_certificates(dir: &Path, name: &str) -> PathBuf {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // A new P-256 key, unencrypted, with its request or self-signed certificate.
    let new_key = |rest: &[&str]| {
        let mut args = vec![
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ];
        args.push("-nodes");
        args.extend_from_slice(rest);
        openssl(&args);
    };
    if !dir.join("ca.pem").exists() {
        let ca = [
            "-x509",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "2",
        ];
        new_key(&[&ca[..], &["-subj", "/CN=test CA"]].concat());
    }
    let subject = format!("/CN={name}");
    new_key(&[
        "-keyout",
        "next-key.pem",
        "-out",
        "server.csr",
        "-subj",
        &subject,
    ]);
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "next.pem",
    ]);
    // Both files replaced by rename, as a certificate manager does.
    std::fs::rename(dir.join("next-key.pem"), dir.join("server-key.pem")).expect("key");
    std::fs::rename(dir.join("next.pem"), dir.join("server.pem")).expect("certificate");
    dir.join("ca.pem")
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to `address`, trusting `ca`; and the common name the server showed.
fn tls_connect(address: std::net::SocketAddr, ca: &Path) -> (Tls, String) {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_pki_types::CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(certificate.expect("pem")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::IpAddress(address.ip().into());
    let connection = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let socket = TcpStream::connect(address).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(connection, socket);
    api_versions_over(&mut tls);
    let certificate = tls.conn.peer_certificates().expect("certificate")[0].to_vec();
    let subject = tidegate::security::tls::subject_of(&certificate).expect("subject");
    (tls, subject)
}

/// ApiVersions over `tls`; panics unless answered.
fn api_versions_over(tls: &mut Tls) {
    let body = crate::common::request_frame(&ApiVersionsRequest::default(), 3, 7);
    tls.write_all(&(body.len() as i32).to_be_bytes())
        .expect("send");
    tls.write_all(&body).expect("send");
    let mut length = [0u8; 4];
    tls.read_exact(&mut length).expect("answer length");
    let mut body = vec![0u8; i32::from_be_bytes(length) as usize];
    tls.read_exact(&mut body).expect("answer");
    assert_eq!(Bytes::from(body).get_i32(), 7, "correlation id");
}

#[test]
fn sighup_serves_new_certificates_and_keeps_open_connections() {
    let dir = scratch_dir("tls");
    let ca = make_certificates(&dir, "first");
    let (certificate, key) = (dir.join("server.pem"), dir.join("server-key.pem"));
    let server = Server::start_listeners(
        &["TLS=SSL://127.0.0.1:0"],
        &[
            "--ssl-certificate",
            certificate.to_str().expect("path"),
            "--ssl-key",
            key.to_str().expect("path"),
        ],
    );
    let address = server.listeners["TLS"];
    let (mut open, subject) = tls_connect(address, &ca);
    assert_eq!(subject, "CN=first");

    make_certificates(&dir, "second");
    server.signal("HUP");
    server.wait_for_log("TLS certificate files read again", Duration::from_secs(10));
    let (_, subject) = tls_connect(address, &ca);
    assert_eq!(
        subject, "CN=second",
        "new connections get the new certificate"
    );
    api_versions_over(&mut open); // the old connection is still served

    // A broken file keeps the certificate in force.
    std::fs::write(&key, "not a key").expect("break the key");
    server.signal("HUP");
    server.wait_for_log("cannot read the TLS files", Duration::from_secs(10));
    let (_, subject) = tls_connect(address, &ca);
    assert_eq!(subject, "CN=second");
}

#[test]
fn a_stalled_tls_handshake_is_closed() {
    let dir = scratch_dir("stall");
    make_certificates(&dir, "stall");
    let server = Server::start_listeners(
        &["TLS=SSL://127.0.0.1:0"],
        &[
            "--ssl-certificate",
            dir.join("server.pem").to_str().expect("path"),
            "--ssl-key",
            dir.join("server-key.pem").to_str().expect("path"),
            "--ssl-handshake-timeout-ms",
            "300",
        ],
    );
    let mut silent = TcpStream::connect(server.listeners["TLS"]).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let connected = Instant::now();
    let mut byte = [0u8; 1];
    assert!(
        matches!(silent.read(&mut byte), Ok(0) | Err(_)),
        "closed without a handshake"
    );
    assert!(connected.elapsed() >= Duration::from_millis(300));
    server.wait_for_log("TLS handshake failed", Duration::from_secs(10));
}
