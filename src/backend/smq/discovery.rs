//! Where SeaweedFS's MQ broker and filer are: given on the command line, or asked of the
//! master (`ListClusterNodes`), once at start-up.
//!
//! Addresses in SeaweedFS are `pb.ServerAddress` strings (`weed/pb/server_address.go`):
//! "host:port" means the gRPC port is port + 10000, "host:port.grpcPort" names it. The
//! master lists filers that way (seen: `127.0.0.1:8888.18888`), while a broker's address
//! is its gRPC address already (seen: `127.0.0.1:17777`; the Go gateway dials it as is).

use super::channel::{ConnectError, GrpcChannel};
use super::proto::master_pb::ListClusterNodesRequest;
use super::tls::ClientTls;
use futures::future::{select, Either};
use std::pin::pin;
use std::time::{Duration, Instant};
use tonic::Code;

/// `ListClusterNodes` client types (`weed/cluster/cluster.go`).
const BROKER: &str = "broker";
const FILER: &str = "filer";

/// How often the master is asked again while it lists no broker or no filer yet.
const RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// gRPC addresses of the SeaweedFS servers a shard talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// MQ broker for topic administration ("host:port").
    pub broker: String,
    /// Filer holding committed consumer offsets ("host:port").
    pub filer: String,
}

/// The gRPC address of a master or filer given as a SeaweedFS server address:
/// "host:port.grpcPort" → "host:grpcPort", "host:port" → "host:(port + 10000)"
/// (`pb.ServerAddress.ToGrpcAddress`). `None` if it is not one.
pub fn grpc_address(server: &str) -> Option<String> {
    let (host, ports) = split_host(server)?;
    match ports.split_once('.') {
        Some((port, grpc)) => {
            port.parse::<u16>().ok()?;
            let grpc: u16 = grpc.parse().ok()?;
            Some(format!("{host}:{grpc}"))
        }
        None => {
            let port: u16 = ports.parse().ok()?;
            let grpc = port.checked_add(10_000)?;
            Some(format!("{host}:{grpc}"))
        }
    }
}

/// A broker's address as the master lists it is its gRPC address; should one carry a
/// ".grpcPort" suffix, that port is the one to dial.
fn broker_grpc_address(server: &str) -> Option<String> {
    let (host, ports) = split_host(server)?;
    let port = ports.rsplit('.').next()?;
    let port: u16 = port.parse().ok()?;
    Some(format!("{host}:{port}"))
}

/// Checks a "host:port" address (`with_grpc_suffix`: also "host:port.grpcPort").
pub fn valid_address(address: &str, with_grpc_suffix: bool) -> bool {
    match with_grpc_suffix {
        true => grpc_address(address).is_some(),
        false => split_host(address).is_some_and(|(_, port)| port.parse::<u16>().is_ok()),
    }
}

fn split_host(address: &str) -> Option<(&str, &str)> {
    let (host, ports) = address.rsplit_once(':')?;
    (!host.is_empty() && !ports.is_empty()).then_some((host, ports))
}

/// The broker and filer to use: those given, the rest from the first of `masters` (a
/// comma-separated list of server addresses) that lists them. Waits up to `timeout`
/// for a broker and a filer to register, as they do a few seconds after they start.
/// `tls`: how to reach the masters when SeaweedFS's gRPC is TLS.
pub async fn resolve(
    masters: Option<&str>,
    broker: Option<&str>,
    filer: Option<&str>,
    tls: Option<&ClientTls>,
    timeout: Duration,
) -> Result<Endpoints, String> {
    if let (Some(broker), Some(filer)) = (broker, filer) {
        return Ok(Endpoints {
            broker: broker.to_string(),
            filer: filer.to_string(),
        });
    }
    let masters = masters.ok_or("no SeaweedFS master to discover the broker and filer from")?;
    let deadline = Instant::now() + timeout;
    let mut warned = false;
    loop {
        // A connect to an address that drops packets would outlast the deadline.
        let left = deadline.saturating_duration_since(Instant::now());
        let asked = discover(masters, tls);
        let found = match select(pin!(asked), pin!(glommio::timer::sleep(left))).await {
            Either::Left((Err(Unanswered::NotAMaster(error) | Unanswered::Refused(error)), _)) => {
                return Err(error)
            }
            Either::Left((found, _)) => found,
            Either::Right(_) => Err(Unanswered::Unreachable(format!(
                "SeaweedFS master {masters} did not answer"
            ))),
        };
        let problem = match &found {
            Ok((brokers, filers)) => {
                let broker = broker
                    .map(str::to_string)
                    .or_else(|| brokers.first().cloned());
                let filer = filer
                    .map(str::to_string)
                    .or_else(|| filers.first().cloned());
                match (broker, filer) {
                    (Some(broker), Some(filer)) => {
                        tracing::debug!(
                            %masters, %broker, %filer, ?brokers, ?filers,
                            "SeaweedFS servers discovered from the master"
                        );
                        return Ok(Endpoints { broker, filer });
                    }
                    (None, _) => format!("master {masters} lists no MQ broker"),
                    (_, None) => format!("master {masters} lists no filer"),
                }
            }
            Err(
                Unanswered::Unreachable(error)
                | Unanswered::NotAMaster(error)
                | Unanswered::Refused(error),
            ) => error.clone(),
        };
        if Instant::now() >= deadline {
            return Err(format!("{problem} (gave up after {}s)", timeout.as_secs()));
        }
        if !warned {
            tracing::warn!("{problem}; asking again for up to {}s", timeout.as_secs());
            warned = true;
        }
        glommio::timer::sleep(RETRY_INTERVAL).await;
    }
}

/// Why no master told us the brokers and filers.
#[derive(Debug)]
enum Unanswered {
    /// Not answering (yet): SeaweedFS may still be starting, so ask again.
    Unreachable(String),
    /// Something answered that is not a SeaweedFS master: asking again will not help.
    NotAMaster(String),
    /// The master will not talk with us as we are set up (TLS): nor will asking again.
    Refused(String),
}

/// Brokers and filers (gRPC addresses, sorted) as the first master that knows both
/// lists them; a master that is not the raft leader may know no one, so try the next.
async fn discover(
    masters: &str,
    tls: Option<&ClientTls>,
) -> Result<(Vec<String>, Vec<String>), Unanswered> {
    let mut partial = None;
    let mut unreachable = Vec::new();
    let mut wrong = Vec::new();
    let mut refused = Vec::new();
    for master in masters.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        match ask(master, tls).await {
            Ok((brokers, filers)) if !brokers.is_empty() && !filers.is_empty() => {
                return Ok((brokers, filers))
            }
            Ok(found) => partial = Some(found),
            Err(Unanswered::Unreachable(error)) => unreachable.push(format!("{master}: {error}")),
            Err(Unanswered::NotAMaster(error)) => wrong.push(format!("{master}: {error}")),
            Err(Unanswered::Refused(error)) => {
                refused.push(format!("--smq-master {master}: {error}"))
            }
        }
    }
    if let Some(found) = partial {
        return Ok(found);
    }
    if unreachable.is_empty() && !refused.is_empty() {
        return Err(Unanswered::Refused(refused.join("; ")));
    }
    unreachable.extend(refused);
    if unreachable.is_empty() {
        return Err(Unanswered::NotAMaster(format!(
            "--smq-master {masters} is not a SeaweedFS master ({}); give the master's HTTP \
             address (port 9333 unless changed: its gRPC port is that plus 10000)",
            wrong.join("; ")
        )));
    }
    unreachable.extend(wrong);
    Err(Unanswered::Unreachable(format!(
        "SeaweedFS master unreachable ({})",
        unreachable.join("; ")
    )))
}

async fn ask(
    master: &str,
    tls: Option<&ClientTls>,
) -> Result<(Vec<String>, Vec<String>), Unanswered> {
    let address = grpc_address(master)
        .ok_or_else(|| Unanswered::NotAMaster(format!("{master} is not HOST:PORT")))?;
    let channel = GrpcChannel::connect(&address, tls)
        .await
        .map_err(|e| match e {
            ConnectError::Refused(error) => Unanswered::Refused(error),
            ConnectError::Unreachable(e) => {
                Unanswered::Unreachable(format!("cannot connect to its gRPC port {address}: {e}"))
            }
        })?;
    let brokers = list(&channel, BROKER, broker_grpc_address).await?;
    let filers = list(&channel, FILER, grpc_address).await?;
    Ok((brokers, filers))
}

async fn list(
    channel: &GrpcChannel,
    client_type: &str,
    convert: fn(&str) -> Option<String>,
) -> Result<Vec<String>, Unanswered> {
    let request = ListClusterNodesRequest {
        client_type: client_type.to_string(),
        filer_group: String::new(),
        limit: 1000,
    };
    let nodes = channel
        .master()
        .list_cluster_nodes(request)
        .await
        .map_err(|status| {
            let error = format!("ListClusterNodes: {}", status.message());
            // A server that does not know the call (or refuses us) answers the same way
            // next time; one that is busy or starting may not.
            match status.code() {
                Code::Unimplemented
                | Code::InvalidArgument
                | Code::PermissionDenied
                | Code::Unauthenticated => Unanswered::NotAMaster(error),
                _ => Unanswered::Unreachable(error),
            }
        })?
        .into_inner()
        .cluster_nodes;
    let mut addresses: Vec<String> = nodes
        .iter()
        .filter_map(|node| {
            let address = convert(&node.address);
            if address.is_none() {
                tracing::warn!(
                    node = node.address,
                    client_type,
                    "unusable address from the master"
                );
            }
            address
        })
        .collect();
    // The same choice on every start: the first by address.
    addresses.sort();
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_become_grpc_addresses_as_seaweedfs_does() {
        assert_eq!(
            grpc_address("127.0.0.1:9333").as_deref(),
            Some("127.0.0.1:19333")
        );
        assert_eq!(
            grpc_address("127.0.0.1:8888.18888").as_deref(),
            Some("127.0.0.1:18888")
        );
        assert_eq!(
            grpc_address("filer.local:10258.20258").as_deref(),
            Some("filer.local:20258")
        );
        assert_eq!(grpc_address("[::1]:9333").as_deref(), Some("[::1]:19333"));
        assert_eq!(grpc_address("127.0.0.1:60000"), None); // past 65535
        for bad in ["", "127.0.0.1", ":9333", "host:", "host:port", "host:1.x"] {
            assert_eq!(grpc_address(bad), None, "{bad:?}");
        }
        assert_eq!(
            broker_grpc_address("127.0.0.1:17777").as_deref(),
            Some("127.0.0.1:17777")
        );
        assert_eq!(
            broker_grpc_address("127.0.0.1:7777.17777").as_deref(),
            Some("127.0.0.1:17777")
        );
    }

    #[test]
    fn addresses_are_checked() {
        assert!(valid_address("127.0.0.1:17777", false));
        assert!(!valid_address("127.0.0.1:17777.1", false));
        assert!(valid_address("127.0.0.1:9333.19333", true));
        assert!(!valid_address("127.0.0.1", true));
    }
}
