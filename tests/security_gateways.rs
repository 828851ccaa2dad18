//! Two gateways in front of one SeaweedFS, changing the users and the ACLs at the same time:
//! every change either gateway acknowledged (CreateAcls, DeleteAcls, AlterUserScramCredentials)
//! is in force on both once they have refreshed, none lost to the other gateway's writes.
//! Needs a real SeaweedFS (`TIDEGATE_SEAWEEDFS`); skipped without one.

use crate::common::*;
use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest,
    DescribeUserScramCredentialsRequest,
};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Kafka's codes: resource type TOPIC, pattern type LITERAL, operation READ, permission
/// DENY and ALLOW; ANY (1) in a filter.
const TOPIC: i8 = 2;
const LITERAL: i8 = 3;
const READ: i8 = 3;
const DENY: i8 = 2;
const ALLOW: i8 = 3;
const ANY: i8 = 1;
/// SCRAM-SHA-512.
const SHA512: i8 = 2;

const TOPIC_NAME: &str = "shared-acls";
/// Client threads per gateway, and the rounds each runs.
const THREADS: usize = 4;
const ROUNDS: usize = 12;

/// A binding, as (principal, permission): the rest is the same for all.
type Binding = (String, i8);

/// What one client thread had acknowledged, and the deletions answered with an error: the
/// change stays pending on its gateway and is stored by a later write (stored.rs), so
/// those bindings and users may or may not be in force, as a Kafka request that timed out
/// may or may not have taken effect.
#[derive(Default)]
struct Acknowledged {
    created: Vec<Binding>,
    deleted: Vec<Binding>,
    deletions_failed: Vec<Binding>,
    users: Vec<String>,
    users_deleted: Vec<String>,
    user_deletions_failed: Vec<String>,
}

fn creation((principal, permission): &Binding) -> AclCreation {
    AclCreation::default()
        .with_resource_type(TOPIC)
        .with_resource_name(TOPIC_NAME.into())
        .with_resource_pattern_type(LITERAL)
        .with_principal(principal.clone().into())
        .with_host("*".into())
        .with_operation(READ)
        .with_permission_type(*permission)
}

fn deletion((principal, permission): &Binding) -> DeleteAclsFilter {
    DeleteAclsFilter::default()
        .with_resource_type_filter(TOPIC)
        .with_resource_name_filter(Some(TOPIC_NAME.into()))
        .with_pattern_type_filter(LITERAL)
        .with_principal_filter(Some(principal.clone().into()))
        .with_host_filter(Some("*".into()))
        .with_operation(READ)
        .with_permission_type(*permission)
}

fn upsertion(user: &str) -> ScramCredentialUpsertion {
    ScramCredentialUpsertion::default()
        .with_name(user.to_string().into())
        .with_mechanism(SHA512)
        .with_iterations(4096)
        .with_salt(Bytes::from_static(b"shared-acls-salt"))
        .with_salted_password(Bytes::from(vec![9u8; 64]))
}

/// One client's changes through `server`: per round two bindings created in one request
/// (one DENY, one ALLOW), every third round one of them deleted again, and a user created
/// (every fourth one deleted again).
fn client_changes(server: &Server, gateway: usize, thread: usize) -> Acknowledged {
    let mut client = server.client();
    let mut acknowledged = Acknowledged::default();
    for round in 0..ROUNDS {
        let name = |what: &str| format!("g{gateway}-t{thread}-r{round}-{what}");
        let bindings = [
            (format!("User:{}", name("deny")), DENY),
            (format!("User:{}", name("allow")), ALLOW),
        ];
        let request =
            CreateAclsRequest::default().with_creations(bindings.iter().map(creation).collect());
        let response = client.call(&request, 3);
        for (binding, result) in bindings.iter().zip(&response.results) {
            if result.error_code == 0 {
                acknowledged.created.push(binding.clone());
            }
        }
        if round % 3 == 2 {
            let gone = bindings[round % 2].clone();
            let request = DeleteAclsRequest::default().with_filters(vec![deletion(&gone)]);
            let response = client.call(&request, 3);
            if response.filter_results[0].error_code == 0 {
                acknowledged.deleted.push(gone);
            } else {
                acknowledged.deletions_failed.push(gone);
            }
        }
        let user = name("user");
        let request =
            AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion(&user)]);
        if client.call(&request, 0).results[0].error_code == 0 {
            acknowledged.users.push(user.clone());
            if round % 4 == 3 {
                let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![
                    ScramCredentialDeletion::default()
                        .with_name(user.clone().into())
                        .with_mechanism(SHA512),
                ]);
                if client.call(&request, 0).results[0].error_code == 0 {
                    acknowledged.users_deleted.push(user);
                } else {
                    acknowledged.user_deletions_failed.push(user);
                }
            }
        }
    }
    acknowledged
}

/// The bindings on `TOPIC_NAME` a gateway has in force. (A request's nullable filters
/// default to "", not to null, hence the explicit `None`s.)
fn bindings_in_force(client: &mut Client) -> BTreeSet<Binding> {
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(TOPIC)
        .with_resource_name_filter(Some(TOPIC_NAME.into()))
        .with_pattern_type_filter(LITERAL)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(ANY)
        .with_permission_type(ANY);
    let response = client.call(&request, 3);
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    response
        .resources
        .iter()
        .flat_map(|resource| &resource.acls)
        .map(|acl| (acl.principal.to_string(), acl.permission_type))
        .collect()
}

/// The users a gateway has, of those named.
fn users_in_force(client: &mut Client, names: &[String]) -> BTreeSet<String> {
    let request = DescribeUserScramCredentialsRequest::default().with_users(Some(
        names
            .iter()
            .map(|name| UserName::default().with_name(name.clone().into()))
            .collect(),
    ));
    let response = client.call(&request, 0);
    response
        .results
        .iter()
        .filter(|result| result.error_code == 0 && !result.credential_infos.is_empty())
        .map(|result| result.user.to_string())
        .collect()
}

#[test]
fn concurrent_changes_through_two_gateways_are_all_kept() {
    let Some(ports) = seaweedfs() else {
        return;
    };
    // A namespace of its own: the users and ACLs it stores stay out of other tests.
    let namespace = format!("shared-acls-{}", std::process::id());
    let args = [
        "--backend",
        "smq",
        "--smq-master",
        &ports["MASTER"],
        "--smq-namespace",
        &namespace,
        "--security-refresh-ms",
        "100",
        "--shards",
        "2",
    ];
    let gateways = [Server::start(&args), Server::start(&args)];

    let acknowledged: Vec<Acknowledged> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..gateways.len() * THREADS)
            .map(|n| {
                let (gateway, thread) = (n % gateways.len(), n / gateways.len());
                let server = &gateways[gateway];
                scope.spawn(move || client_changes(server, gateway, thread))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("client thread"))
            .collect()
    });
    let deleted: BTreeSet<Binding> = acknowledged
        .iter()
        .flat_map(|a| a.deleted.clone())
        .collect();
    let either: BTreeSet<Binding> = acknowledged
        .iter()
        .flat_map(|a| a.deletions_failed.clone())
        .collect();
    let created: BTreeSet<Binding> = acknowledged
        .iter()
        .flat_map(|a| a.created.clone())
        .filter(|binding| !deleted.contains(binding))
        .collect();
    let users_deleted: BTreeSet<String> = acknowledged
        .iter()
        .flat_map(|a| a.users_deleted.clone())
        .collect();
    let users: Vec<String> = acknowledged.iter().flat_map(|a| a.users.clone()).collect();
    let users_either: BTreeSet<String> = acknowledged
        .iter()
        .flat_map(|a| a.user_deletions_failed.clone())
        .collect();
    let users_kept: BTreeSet<String> = users
        .iter()
        .filter(|user| !users_deleted.contains(*user) && !users_either.contains(*user))
        .cloned()
        .collect();
    let expected_changes = gateways.len() * THREADS * ROUNDS;
    assert_eq!(
        users.len(),
        expected_changes,
        "every user upsert acknowledged"
    );
    assert_eq!(
        created.len() + deleted.len(),
        2 * expected_changes,
        "every creation acknowledged"
    );

    // Those whose deletion failed may be in force or not: not looked at.
    let kept: BTreeSet<Binding> = created.difference(&either).cloned().collect();
    for (n, gateway) in gateways.iter().enumerate() {
        let mut client = gateway.client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let bindings: BTreeSet<Binding> = bindings_in_force(&mut client)
                .difference(&either)
                .cloned()
                .collect();
            let in_force = users_in_force(&mut client, &users);
            let missing: Vec<_> = kept.difference(&bindings).collect();
            let resurrected: Vec<_> = deleted.intersection(&bindings).collect();
            let users_missing: Vec<_> = users_kept.difference(&in_force).collect();
            let users_resurrected: Vec<_> = users_deleted.intersection(&in_force).collect();
            if missing.is_empty()
                && resurrected.is_empty()
                && users_missing.is_empty()
                && users_resurrected.is_empty()
            {
                assert_eq!(bindings, kept, "gateway {n}: nothing else in force");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "gateway {n}, 30 s after the last change: acknowledged bindings missing \
                 {missing:?}, deleted ones back {resurrected:?}; users missing \
                 {users_missing:?}, deleted ones back {users_resurrected:?}; {} bindings in \
                 force, the first {:?}",
                bindings.len(),
                bindings.first()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
