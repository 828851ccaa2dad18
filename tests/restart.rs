//! tidegate restarted on the same ports right after it stopped, as a supervisor does after a
//! crash: the connections it had leave its side in TIME_WAIT on its ports for a minute, and
//! the new process must still bind them at once.

use crate::common::{Client, Server};
use kafka_protocol::messages::ApiVersionsRequest;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};

/// A port where `count` consecutive ports are free now.
fn free_ports(count: u16) -> u16 {
    loop {
        let first = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let all_free = (first..first.saturating_add(count))
            .all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok());
        if all_free && first.checked_add(count).is_some() {
            return first;
        }
    }
}

fn every_port(server: &Server) -> Vec<SocketAddr> {
    std::iter::once(server.bootstrap)
        .chain(server.brokers.iter().copied())
        .collect()
}

#[test]
fn a_restart_on_the_same_ports_binds_them_while_old_connections_are_in_time_wait() {
    let (port, broker_port_base) = (free_ports(1), free_ports(2));
    let args = ["--shards", "2"];
    let server = Server::start_on(port, broker_port_base, &args);
    let addresses = every_port(&server);
    let mut clients: Vec<Client> = addresses.iter().map(|a| Client::connect(*a)).collect();
    for client in &mut clients {
        assert_eq!(client.call(&ApiVersionsRequest::default(), 3).error_code, 0);
    }

    drop(server); // SIGKILL: the kernel closes tidegate's side of every connection first,
    for client in &mut clients {
        assert!(client.is_closed_by_server());
    }
    drop(clients); // so when ours close, tidegate's side is left in TIME_WAIT.

    let server = Server::start_on(port, broker_port_base, &args);
    assert_eq!(every_port(&server), addresses);
    for address in addresses {
        let versions = Client::connect(address).call(&ApiVersionsRequest::default(), 3);
        assert_eq!(versions.error_code, 0, "through {address}");
    }
}

#[test]
fn a_second_tidegate_on_ports_in_use_is_refused_not_sharing_them() {
    let (port, broker_port_base) = (free_ports(1), free_ports(1));
    let server = Server::start_on(port, broker_port_base, &["--shards", "1"]);
    let other_broker_port_base = free_ports(1).to_string();
    let port = port.to_string();
    let broker_port_base = broker_port_base.to_string();
    for (port, broker_port_base) in [
        (port.as_str(), other_broker_port_base.as_str()),
        ("0", broker_port_base.as_str()),
    ] {
        let mut second = Command::new(env!("CARGO_BIN_EXE_tidegate"))
            .args(["--listen", "127.0.0.1", "--shards", "1"])
            .args(["--port", port, "--broker-port-base", broker_port_base])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a second tidegate");
        // Its stdout ends without a ready line if it refuses to start.
        let mut ready = String::new();
        let stdout = second.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut ready).expect("read");
        if !ready.is_empty() {
            let _ = second.kill();
        }
        let second = second.wait_with_output().expect("second tidegate's exit");
        assert_eq!(ready, "", "port {port}, broker {broker_port_base}");
        assert!(!second.status.success());
        let stderr = String::from_utf8_lossy(&second.stderr);
        assert!(stderr.contains("in use"), "{stderr}");
    }
    let versions = server.client().call(&ApiVersionsRequest::default(), 3);
    assert_eq!(versions.error_code, 0, "the first one still serves");
}
