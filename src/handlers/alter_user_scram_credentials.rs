//! AlterUserScramCredentials (KIP-554): add, replace or delete users' SCRAM credentials,
//! answered per user, with the rules and messages of Kafka's
//! `ScramControlManager.alterCredentials`:
//! - a user named twice in one request (deletions, then upsertions, in that order) gets
//!   DUPLICATE_RESOURCE and nothing of theirs changes; a user whose first alteration already
//!   failed keeps that error;
//! - an empty name: UNACCEPTABLE_CREDENTIAL; a mechanism other than SCRAM-SHA-256/512:
//!   UNSUPPORTED_SASL_MECHANISM;
//! - deleting a credential that does not exist: RESOURCE_NOT_FOUND;
//! - an upsertion outside 4096..=16384 iterations, with an empty salt or a salted password
//!   of the wrong length: UNACCEPTABLE_CREDENTIAL.
//!
//! The accepted alterations apply together, atomically with respect to every other shard,
//! and are stored before the answer. (Alter on Cluster is checked by dispatch before this
//! runs.) The client sends `SaltedPassword`, never the password; only `StoredKey` and
//! `ServerKey` are kept.

use super::{error_message, Reply, RequestContext};
use crate::backend::SecurityDocument;
use crate::error::{Error, Result};
use crate::security::credentials::{ScramCredential, ScramMechanism, Users};
use crate::shard::Shard;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

pub const VERSIONS: (i16, i16) = (0, 0);

const DUPLICATE: &str = "A user credential cannot be altered twice in the same request";

pub async fn handle(
    shard: Rc<Shard>,
    _context: RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> Reply<AlterUserScramCredentialsResponse> {
    let (mut outcomes, revision) = shard.security.alter_users(|users| alter(users, &request));
    if let Some(revision) = revision {
        let stored = shard
            .security
            .persist(&shard.security_store, SecurityDocument::Users, revision)
            .await;
        if let Err(error) = stored {
            for (_, outcome) in outcomes.iter_mut().filter(|(_, o)| o.is_ok()) {
                *outcome = Err(error.clone());
            }
        }
    }
    let results = outcomes
        .into_iter()
        .map(|(user, outcome)| {
            if outcome.is_ok() {
                tracing::info!(user, "SCRAM credentials altered");
            }
            let result =
                AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(user));
            match outcome {
                Ok(()) => result,
                Err(error) => result
                    .with_error_code(error.code())
                    .with_error_message(error_message(&error)),
            }
        })
        .collect();
    Some(AlterUserScramCredentialsResponse::default().with_results(results))
}

/// What one user's alteration comes to.
enum Alteration {
    Delete(ScramMechanism),
    Upsert(ScramMechanism, ScramCredential),
    Failed(Error),
}

/// Validates every alteration against `users` and applies the accepted ones; one outcome
/// per distinct user, in the order first named.
fn alter(
    users: &mut Users,
    request: &AlterUserScramCredentialsRequest,
) -> Vec<(String, Result<()>)> {
    let mut alterations: Vec<(String, Alteration)> = Vec::new();
    let mut decide = |name: &str, decide: &dyn Fn(bool) -> Alteration| match alterations
        .iter_mut()
        .find(|(n, _)| n == name)
    {
        Some((_, Alteration::Failed(_))) => {}
        Some((_, alteration)) => {
            *alteration = Alteration::Failed(Error::DuplicateResource(DUPLICATE.into()))
        }
        None => alterations.push((name.to_owned(), decide(false))),
    };
    for deletion in &request.deletions {
        decide(
            &deletion.name,
            &|_| match mechanism(&deletion.name, deletion.mechanism) {
                Err(error) => Alteration::Failed(error),
                Ok(mechanism) if users.get(&deletion.name, mechanism).is_none() => {
                    Alteration::Failed(Error::ResourceNotFound(
                        "Attempt to delete a user credential that does not exist".into(),
                    ))
                }
                Ok(mechanism) => Alteration::Delete(mechanism),
            },
        );
    }
    for upsertion in &request.upsertions {
        decide(&upsertion.name, &|_| {
            let credential =
                mechanism(&upsertion.name, upsertion.mechanism).and_then(|mechanism| {
                    let unacceptable = |e: crate::security::credentials::CredentialError| {
                        Error::UnacceptableCredential(e.to_string())
                    };
                    let iterations = ScramMechanism::check_iterations(upsertion.iterations)
                        .map_err(unacceptable)?;
                    let credential = ScramCredential::from_salted_password(
                        mechanism,
                        &upsertion.salt,
                        iterations,
                        &upsertion.salted_password,
                    )
                    .map_err(unacceptable)?;
                    Ok((mechanism, credential))
                });
            match credential {
                Ok((mechanism, credential)) => Alteration::Upsert(mechanism, credential),
                Err(error) => Alteration::Failed(error),
            }
        });
    }
    alterations
        .into_iter()
        .map(|(name, alteration)| {
            let outcome = match alteration {
                Alteration::Delete(mechanism) => {
                    users.remove(&name, mechanism);
                    Ok(())
                }
                Alteration::Upsert(mechanism, credential) => {
                    users.upsert(&name, mechanism, credential);
                    Ok(())
                }
                Alteration::Failed(error) => Err(error),
            };
            (name, outcome)
        })
        .collect()
}

/// Kafka's `validateScramUsernameAndMechanism`.
fn mechanism(name: &str, code: i8) -> Result<ScramMechanism> {
    if name.is_empty() {
        return Err(Error::UnacceptableCredential(
            "Username must not be empty".into(),
        ));
    }
    ScramMechanism::from_code(code)
        .ok_or_else(|| Error::UnsupportedSaslMechanism("Unknown SCRAM mechanism".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::alter_user_scram_credentials_request::{
        ScramCredentialDeletion, ScramCredentialUpsertion,
    };
    use kafka_protocol::ResponseError;

    fn upsertion(
        name: &str,
        mechanism: i8,
        iterations: i32,
        salted_len: usize,
    ) -> ScramCredentialUpsertion {
        ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_string(name.into()))
            .with_mechanism(mechanism)
            .with_iterations(iterations)
            .with_salt(bytes::Bytes::from_static(b"salt"))
            .with_salted_password(bytes::Bytes::from(vec![7; salted_len]))
    }

    fn deletion(name: &str, mechanism: i8) -> ScramCredentialDeletion {
        ScramCredentialDeletion::default()
            .with_name(StrBytes::from_string(name.into()))
            .with_mechanism(mechanism)
    }

    fn codes(outcomes: &[(String, Result<()>)]) -> Vec<(&str, i16)> {
        outcomes
            .iter()
            .map(|(n, o)| (n.as_str(), o.as_ref().map_or_else(|e| e.code(), |()| 0)))
            .collect()
    }

    #[test]
    fn every_rule_has_its_code() {
        let mut users = Users::new().expect("random");
        let existing =
            ScramCredential::from_password(ScramMechanism::Sha256, "pw", 4096).expect("valid");
        users.upsert("dora", ScramMechanism::Sha256, existing);
        let request = AlterUserScramCredentialsRequest::default()
            .with_deletions(vec![
                deletion("dora", 1),
                deletion("erin", 2),
                deletion("", 1),
                deletion("fay", 3),
            ])
            .with_upsertions(vec![
                upsertion("alice", 2, 8192, 64),
                upsertion("bob", 2, 4095, 64),
                upsertion("carl", 2, 16385, 64),
                upsertion("gus", 1, 4096, 64),
                upsertion("hal", 0, 4096, 32),
                upsertion("dora", 2, 4096, 64),
                upsertion("ivy", 1, 4096, 32),
                upsertion("ivy", 2, 4096, 64),
                upsertion("erin", 1, 4096, 32),
            ]);
        let outcomes = alter(&mut users, &request);
        assert_eq!(
            codes(&outcomes),
            [
                ("dora", ResponseError::DuplicateResource.code()),
                ("erin", ResponseError::ResourceNotFound.code()),
                ("", ResponseError::UnacceptableCredential.code()),
                ("fay", ResponseError::UnsupportedSaslMechanism.code()),
                ("alice", 0),
                ("bob", ResponseError::UnacceptableCredential.code()),
                ("carl", ResponseError::UnacceptableCredential.code()),
                // A salted password of SHA-256's length for SHA-512.
                ("gus", ResponseError::UnacceptableCredential.code()),
                ("hal", ResponseError::UnsupportedSaslMechanism.code()),
                ("ivy", ResponseError::DuplicateResource.code()),
            ]
        );
        let message = |name: &str| {
            outcomes
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, o)| o.as_ref().err())
                .and_then(Error::message)
        };
        assert_eq!(message("bob").as_deref(), Some("Too few iterations"));
        assert_eq!(message("carl").as_deref(), Some("Too many iterations"));
        assert_eq!(message("dora").as_deref(), Some(DUPLICATE));
        assert_eq!(
            message("erin").as_deref(),
            Some("Attempt to delete a user credential that does not exist")
        );
        // Only alice changed; dora's duplicate left her credential alone.
        assert!(users.get("alice", ScramMechanism::Sha512).is_some());
        assert!(users.get("dora", ScramMechanism::Sha256).is_some());
        assert!(users.get("ivy", ScramMechanism::Sha256).is_none());
        assert_eq!(users.len(), 2);
    }

    #[test]
    fn deleting_the_last_credential_removes_the_user() {
        let mut users = Users::new().expect("random");
        let request = AlterUserScramCredentialsRequest::default()
            .with_upsertions(vec![upsertion("alice", 2, 4096, 64)]);
        assert_eq!(codes(&alter(&mut users, &request)), [("alice", 0)]);
        let request =
            AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion("alice", 2)]);
        assert_eq!(codes(&alter(&mut users, &request)), [("alice", 0)]);
        assert!(users.is_empty());
        assert_eq!(
            codes(&alter(&mut users, &request)),
            [("alice", ResponseError::ResourceNotFound.code())]
        );
    }
}
