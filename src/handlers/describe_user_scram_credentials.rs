//! DescribeUserScramCredentials (KIP-554): each user's mechanisms and iteration counts,
//! never a salt or a key. As Kafka's `ScramImage.describe` answers it: no names (null or
//! empty) lists every user; a name asked twice gets DUPLICATE_RESOURCE, an unknown one
//! RESOURCE_NOT_FOUND, each with Kafka's message. (Describe on Cluster is checked by
//! dispatch before this runs.)

use super::{error_message, Reply, RequestContext};
use crate::error::Error;
use crate::security::credentials::Users;
use crate::shard::Shard;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 0);

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: DescribeUserScramCredentialsRequest,
) -> Reply<DescribeUserScramCredentialsResponse> {
    let names: Option<Vec<String>> = request
        .users
        .map(|users| users.iter().map(|u| u.name.to_string()).collect());
    let results = describe(&shard.security.users(), names.as_deref());
    Some(DescribeUserScramCredentialsResponse::default().with_results(results))
}

/// One result per distinct user, in the order first asked (every user, by name, when
/// none is named).
fn describe(users: &Users, names: Option<&[String]>) -> Vec<DescribeUserScramCredentialsResult> {
    let mut distinct: Vec<(String, bool)> = Vec::new();
    for name in names.unwrap_or_default() {
        match distinct.iter_mut().find(|(n, _)| n == name) {
            Some((_, duplicate)) => *duplicate = true,
            None => distinct.push((name.clone(), false)),
        }
    }
    let asked: Vec<String> = distinct.iter().map(|(n, _)| n.clone()).collect();
    let described = users.describe(Some(&asked).filter(|a| !a.is_empty()).map(Vec::as_slice));
    described
        .into_iter()
        .map(|user| {
            let duplicate = distinct.iter().any(|(n, d)| *d && *n == user.name);
            let result = DescribeUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user.name.clone()));
            let error = if duplicate {
                Error::DuplicateResource(format!(
                    "Cannot describe SCRAM credentials for the same user twice in a single \
                     request: {}",
                    user.name
                ))
            } else if user.credentials.is_empty() {
                Error::ResourceNotFound(format!(
                    "Attempt to describe a user credential that does not exist: {}",
                    user.name
                ))
            } else {
                return result.with_credential_infos(
                    user.credentials
                        .iter()
                        .map(|c| {
                            CredentialInfo::default()
                                .with_mechanism(c.mechanism.code())
                                .with_iterations(i32::try_from(c.iterations).unwrap_or(i32::MAX))
                        })
                        .collect(),
                );
            };
            result
                .with_error_code(error.code())
                .with_error_message(error_message(&error))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::credentials::{ScramCredential, ScramMechanism};
    use kafka_protocol::ResponseError;

    fn users() -> Users {
        let mut users = Users::new().expect("random");
        for (name, mechanism, iterations) in [
            ("alice", ScramMechanism::Sha256, 4096),
            ("alice", ScramMechanism::Sha512, 8192),
            ("bob", ScramMechanism::Sha512, 4096),
        ] {
            let credential =
                ScramCredential::from_password(mechanism, "pw", iterations).expect("valid");
            users.upsert(name, mechanism, credential);
        }
        users
    }

    type Summary = Vec<(String, i16, Vec<(i8, i32)>)>;

    fn summary(results: &[DescribeUserScramCredentialsResult]) -> Summary {
        results
            .iter()
            .map(|r| {
                (
                    r.user.to_string(),
                    r.error_code,
                    r.credential_infos
                        .iter()
                        .map(|c| (c.mechanism, c.iterations))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn all_users_when_none_is_named() {
        let expected = vec![
            ("alice".to_string(), 0, vec![(1, 4096), (2, 8192)]),
            ("bob".to_string(), 0, vec![(2, 4096)]),
        ];
        assert_eq!(summary(&describe(&users(), None)), expected);
        assert_eq!(summary(&describe(&users(), Some(&[]))), expected);
    }

    #[test]
    fn unknown_and_duplicate_names_are_errors() {
        let names = ["bob", "carol", "alice", "bob"].map(String::from);
        let results = describe(&users(), Some(&names));
        assert_eq!(
            summary(&results),
            vec![
                (
                    "bob".to_string(),
                    ResponseError::DuplicateResource.code(),
                    vec![]
                ),
                (
                    "carol".to_string(),
                    ResponseError::ResourceNotFound.code(),
                    vec![]
                ),
                ("alice".to_string(), 0, vec![(1, 4096), (2, 8192)]),
            ]
        );
        assert_eq!(
            results[1].error_message.as_deref(),
            Some("Attempt to describe a user credential that does not exist: carol")
        );
    }
}
