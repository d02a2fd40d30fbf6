//! TokenVerifier against tokens signed in the test: what it accepts, what it rejects and how it
//! uses the key source.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth_support;

use std::sync::Arc;
use std::time::Duration;

use auth_support::*;
use jsonwebtoken::Algorithm;
use runmesh_platform::auth::{AuthError, KeySource, Role, StaticKeySource, TokenVerifier};

fn static_verifier(keys: &[&TestKey]) -> Arc<TokenVerifier> {
    verifier(config(), Arc::new(StaticKeySource::new(jwks(keys))))
}

#[tokio::test]
async fn a_valid_token_gives_its_caller() {
    let key = TestKey::ed25519("k1");
    let verifier = static_verifier(&[&key]);
    let mut claims = claims();
    claims.roles = vec!["runner".into(), "organizer".into()];

    let caller = verifier.verify(&key.sign(&claims)).await.unwrap();

    assert_eq!(caller.user_id, "user-42");
    assert_eq!(caller.session_id, "session-7");
    assert_eq!(caller.token_id, claims.jti);
    assert_eq!(caller.roles, [Role::Runner, Role::Organizer]);
    assert!(!caller.is_admin());
}

#[tokio::test]
async fn a_token_signed_by_another_key_under_the_same_kid_is_rejected() {
    let published = TestKey::ed25519("k1");
    let impostor = TestKey::ed25519("k1");
    let verifier = static_verifier(&[&published]);

    let err = verifier
        .verify(&impostor.sign(&claims()))
        .await
        .unwrap_err();
    assert_eq!(err, AuthError::InvalidSignature);
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_rejected() {
    let key = TestKey::ed25519("k1");
    let verifier = static_verifier(&[&key]);

    let err = verifier
        .verify(&unsigned_token("k1", &claims()))
        .await
        .unwrap_err();
    // jsonwebtoken has no `none` algorithm, so the header itself does not parse.
    assert!(
        matches!(err, AuthError::Malformed | AuthError::AlgorithmNotAllowed),
        "{err:?}"
    );
    assert_eq!(err.reason(), "TOKEN_INVALID");
}

#[tokio::test]
async fn hs256_keyed_with_the_public_key_is_rejected() {
    let key = TestKey::ed25519("k1");
    let verifier = static_verifier(&[&key]);
    let jwk_x = match &key.jwk.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(params) => params.x.clone(),
        other => panic!("unexpected key parameters {other:?}"),
    };

    for secret in [key.public_key.clone(), jwk_x.into_bytes()] {
        let forged = hmac_token("k1", &secret, &claims());
        assert_eq!(
            verifier.verify(&forged).await.unwrap_err(),
            AuthError::AlgorithmNotAllowed
        );
    }
}

#[tokio::test]
async fn an_expired_token_is_rejected() {
    let key = TestKey::ed25519("k1");
    let verifier = static_verifier(&[&key]);
    let mut claims = claims();
    claims.iat = now() - 600;
    claims.nbf = claims.iat;
    claims.exp = now() - 120;

    let err = verifier.verify(&key.sign(&claims)).await.unwrap_err();
    assert_eq!(err, AuthError::Expired);
    assert_eq!(err.reason(), "TOKEN_EXPIRED");
}

#[tokio::test]
async fn a_token_not_valid_yet_is_rejected() {
    let key = TestKey::ed25519("k1");
    let verifier = static_verifier(&[&key]);
    let mut claims = claims();
    claims.nbf = now() + 120;
    claims.exp = now() + 600;

    let err = verifier.verify(&key.sign(&claims)).await.unwrap_err();
    assert_eq!(err, AuthError::NotYetValid);
}

#[tokio::test]
async fn a_token_for_another_audience_is_rejected() {
    let key = TestKey::ed25519("k1");
    let verifier = static_verifier(&[&key]);
    let mut claims = claims();
    claims.aud = "someone-else".into();

    let err = verifier.verify(&key.sign(&claims)).await.unwrap_err();
    assert_eq!(err, AuthError::WrongAudience);
}

#[tokio::test]
async fn a_token_from_another_issuer_is_rejected() {
    let key = TestKey::ed25519("k1");
    let verifier = static_verifier(&[&key]);
    let mut claims = claims();
    claims.iss = "https://evil.example".into();

    let err = verifier.verify(&key.sign(&claims)).await.unwrap_err();
    assert_eq!(err, AuthError::WrongIssuer);
}

#[tokio::test]
async fn tokens_missing_claims_are_rejected() {
    let key = TestKey::ed25519("k1");
    let verifier = static_verifier(&[&key]);
    let full = serde_json::to_value(claims()).unwrap();

    for claim in ["exp", "nbf", "iss", "aud", "sub"] {
        let mut partial = full.clone();
        partial.as_object_mut().unwrap().remove(claim);
        assert_eq!(
            verifier.verify(&key.sign(&partial)).await.unwrap_err(),
            AuthError::MissingClaim(claim.to_string()),
            "without {claim}"
        );
    }
    for claim in ["iat", "jti", "sid", "roles"] {
        let mut partial = full.clone();
        partial.as_object_mut().unwrap().remove(claim);
        let err = verifier.verify(&key.sign(&partial)).await.unwrap_err();
        assert!(
            matches!(&err, AuthError::MalformedClaims(message) if message.contains(claim)),
            "without {claim}: {err:?}"
        );
    }

    let mut anonymous = claims();
    anonymous.sub = String::new();
    assert_eq!(
        verifier.verify(&key.sign(&anonymous)).await.unwrap_err(),
        AuthError::MissingClaim("sub".into())
    );
}

#[tokio::test]
async fn tokens_without_kid_or_with_critical_extensions_are_rejected() {
    let key = TestKey::ed25519("k1");
    let verifier = static_verifier(&[&key]);

    let header = jsonwebtoken::Header::new(Algorithm::EdDSA);
    let no_kid = jsonwebtoken::encode(&header, &claims(), &key.encoding).unwrap();
    assert_eq!(
        verifier.verify(&no_kid).await.unwrap_err(),
        AuthError::MissingKeyId
    );

    let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
    header.kid = Some("k1".into());
    header.crit = Some(vec!["exp".into()]);
    let critical = jsonwebtoken::encode(&header, &claims(), &key.encoding).unwrap();
    assert_eq!(
        verifier.verify(&critical).await.unwrap_err(),
        AuthError::UnsupportedCriticalHeader
    );

    for garbage in ["", "not-a-jwt", "a.b.c", "a.b"] {
        assert_eq!(
            verifier.verify(garbage).await.unwrap_err(),
            AuthError::Malformed,
            "{garbage:?}"
        );
    }
}

#[tokio::test]
async fn unknown_kids_are_rejected_without_hammering_the_key_source() {
    let key = TestKey::ed25519("k1");
    let stranger = TestKey::ed25519("made-up");
    let source = CountingKeySource::new(jwks(&[&key]));
    let verifier = verifier(config(), source.clone());

    for _ in 0..20 {
        assert_eq!(
            verifier
                .verify(&stranger.sign(&claims()))
                .await
                .unwrap_err(),
            AuthError::UnknownKey
        );
    }
    // The first call loads the JWKS; the other 19 fall inside the refresh interval.
    assert_eq!(source.fetches(), 1);

    verifier.verify(&key.sign(&claims())).await.unwrap();
    assert_eq!(source.fetches(), 1);
}

#[tokio::test]
async fn a_new_kid_is_fetched_once_the_refresh_interval_allows() {
    let old = TestKey::ed25519("2025-01");
    let new = TestKey::ed25519("2025-02");
    let source = CountingKeySource::new(jwks(&[&old]));
    let mut config = config();
    config.min_refresh_interval = Duration::ZERO;
    let verifier = verifier(config, source.clone());

    verifier.verify(&old.sign(&claims())).await.unwrap();
    assert_eq!(source.fetches(), 1);

    source.inner.replace(jwks(&[&old, &new]));
    let caller = verifier.verify(&new.sign(&claims())).await.unwrap();
    assert_eq!(caller.user_id, "user-42");
    assert_eq!(source.fetches(), 2);

    // Both keys are now cached: no further fetch while the JWKS is fresh.
    verifier.verify(&old.sign(&claims())).await.unwrap();
    verifier.verify(&new.sign(&claims())).await.unwrap();
    assert_eq!(source.fetches(), 2);
}

#[tokio::test]
async fn during_rotation_tokens_of_both_keys_verify() {
    let outgoing = TestKey::ed25519("2025-01");
    let incoming = TestKey::ed25519("2025-02");
    let verifier = static_verifier(&[&outgoing, &incoming]);

    let mut claims_a = claims();
    claims_a.sub = "user-a".into();
    let mut claims_b = claims();
    claims_b.sub = "user-b".into();

    assert_eq!(
        verifier
            .verify(&outgoing.sign(&claims_a))
            .await
            .unwrap()
            .user_id,
        "user-a"
    );
    assert_eq!(
        verifier
            .verify(&incoming.sign(&claims_b))
            .await
            .unwrap()
            .user_id,
        "user-b"
    );
}

#[tokio::test]
async fn a_key_removed_from_the_jwks_stops_verifying_after_the_ttl() {
    let retired = TestKey::ed25519("retired");
    let current = TestKey::ed25519("current");
    let source = CountingKeySource::new(jwks(&[&retired, &current]));
    let mut config = config();
    config.keys_ttl = Duration::ZERO;
    config.min_refresh_interval = Duration::ZERO;
    let verifier = verifier(config, source.clone());

    verifier.verify(&retired.sign(&claims())).await.unwrap();
    source.inner.replace(jwks(&[&current]));

    assert_eq!(
        verifier.verify(&retired.sign(&claims())).await.unwrap_err(),
        AuthError::UnknownKey
    );
    verifier.verify(&current.sign(&claims())).await.unwrap();
}

#[tokio::test]
async fn a_remembered_token_stops_when_its_key_is_withdrawn() {
    let retired = TestKey::ed25519("retired");
    let current = TestKey::ed25519("current");
    let source = CountingKeySource::new(jwks(&[&retired, &current]));
    let mut config = config();
    config.keys_ttl = Duration::ZERO;
    config.min_refresh_interval = Duration::ZERO;
    let verifier = verifier(config, source.clone());
    let token = retired.sign(&claims());

    verifier.verify(&token).await.unwrap();
    verifier.verify(&token).await.unwrap();
    source.inner.replace(jwks(&[&current]));

    assert_eq!(
        verifier.verify(&token).await.unwrap_err(),
        AuthError::UnknownKey
    );
}

#[tokio::test]
async fn a_remembered_token_is_checked_once_and_still_expires() {
    let key = TestKey::ed25519("k1");
    let source = CountingKeySource::new(jwks(&[&key]));
    let mut config = config();
    config.leeway = Duration::ZERO;
    let verifier = verifier(config, source.clone());
    let mut claims = claims();
    claims.exp = now() + 1;
    let token = key.sign(&claims);

    for _ in 0..3 {
        assert_eq!(verifier.verify(&token).await.unwrap().user_id, "user-42");
    }
    assert_eq!(source.fetches(), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;

    assert_eq!(
        verifier.verify(&token).await.unwrap_err(),
        AuthError::Expired
    );
}

#[tokio::test]
async fn cached_keys_outlive_a_key_source_outage() {
    let key = TestKey::ed25519("k1");
    let source = CountingKeySource::new(jwks(&[&key]));
    let mut config = config();
    config.keys_ttl = Duration::ZERO;
    config.min_refresh_interval = Duration::ZERO;
    let verifier = verifier(config, source.clone());
    verifier.refresh_keys().await.unwrap();

    source.set_down(true);
    let caller = verifier.verify(&key.sign(&claims())).await.unwrap();
    assert_eq!(caller.user_id, "user-42");
    assert!(source.fetches() >= 2, "the stale JWKS was refetched");
}

#[tokio::test]
async fn without_any_keys_the_failure_is_unavailability_not_a_bad_token() {
    let key = TestKey::ed25519("k1");
    let source = CountingKeySource::new(jwks(&[&key]));
    source.set_down(true);
    let verifier = verifier(config(), source.clone());

    for _ in 0..3 {
        let err = verifier.verify(&key.sign(&claims())).await.unwrap_err();
        assert_eq!(err, AuthError::KeysUnavailable);
        assert_eq!(err.reason(), "AUTH_KEYS_UNAVAILABLE");
    }
    assert_eq!(source.fetches(), 1, "retries wait for the refresh interval");
}

struct HangingKeySource;

#[async_trait::async_trait]
impl KeySource for HangingKeySource {
    async fn fetch(&self) -> anyhow::Result<jsonwebtoken::jwk::JwkSet> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_hanging_key_source_times_out() {
    let key = TestKey::ed25519("k1");
    let mut config = config();
    config.fetch_timeout = Duration::from_millis(50);
    let verifier = verifier(config, Arc::new(HangingKeySource));

    assert_eq!(
        verifier.verify(&key.sign(&claims())).await.unwrap_err(),
        AuthError::KeysUnavailable
    );
}

#[tokio::test]
async fn es256_tokens_verify_only_where_es256_is_pinned() {
    let ec = TestKey::p256("ec-1");
    let ed = TestKey::ed25519("ed-1");
    let keys = jwks(&[&ec, &ed]);

    let both = verifier(
        eddsa_and_es256(config()),
        Arc::new(StaticKeySource::new(keys.clone())),
    );
    assert_eq!(
        both.verify(&ec.sign(&claims())).await.unwrap().user_id,
        "user-42"
    );
    both.verify(&ed.sign(&claims())).await.unwrap();

    let eddsa_only = verifier(config(), Arc::new(StaticKeySource::new(keys)));
    assert_eq!(
        eddsa_only.verify(&ec.sign(&claims())).await.unwrap_err(),
        AuthError::AlgorithmNotAllowed
    );
}

#[tokio::test]
async fn a_header_alg_that_does_not_match_the_key_is_rejected() {
    let ec = TestKey::p256("ec-1");
    let ed = TestKey::ed25519("ed-1");
    let verifier = verifier(
        eddsa_and_es256(config()),
        Arc::new(StaticKeySource::new(jwks(&[&ec, &ed]))),
    );

    // Signed with the P-256 key but naming the Ed25519 key.
    let mismatched = ec.sign_as(Algorithm::ES256, "ed-1", &claims());
    assert_eq!(
        verifier.verify(&mismatched).await.unwrap_err(),
        AuthError::AlgorithmNotAllowed
    );
}
