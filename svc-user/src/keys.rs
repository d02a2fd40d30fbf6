//! The signing keys: Ed25519 key pairs in the database, shared by every replica.
//!
//! Each key signs for one period (`rotation`) and is published `publish_ahead` before it starts
//! signing, so verifiers that cache the JWKS already hold it when its first token arrives; it
//! stays published until the last token it signed has expired. Keys therefore rotate without
//! signing anyone out, and several keys are valid at once.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use parking_lot::RwLock;
use rand::TryRngCore as _;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set};
use tokio_util::sync::CancellationToken;

use crate::store::signing_key;

/// How keys are rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    /// How long one key signs.
    pub rotation: Duration,
    /// How long a key is published before it signs; longer than verifiers cache the JWKS.
    pub publish_ahead: Duration,
    /// The lifetime of the tokens a key signs (plus clock leeway): how long it stays published
    /// after it stopped signing.
    pub token_lifetime: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error("encoding a private key: {0}")]
    Encoding(String),
    #[error("no signing key is active")]
    NoActiveKey,
    #[error("a duration is out of range: {0}")]
    Duration(#[from] chrono::OutOfRangeError),
}

/// A key that may sign now or later.
#[derive(Clone)]
struct Signer {
    kid: String,
    signs_from: DateTime<Utc>,
    signs_until: DateTime<Utc>,
    key: EncodingKey,
}

#[derive(Clone, Default)]
struct Loaded {
    signers: Vec<Signer>,
    jwks: JwkSet,
}

/// The keys in memory, reloaded from the database by [`KeyRing::spawn_maintenance`] and when a
/// verifier asks for the JWKS. Also the in-process [`KeySource`](runmesh_platform::auth::KeySource)
/// of svc-user's own auth layer (and of every service in embedded mode).
pub struct KeyRing {
    db: DatabaseConnection,
    policy: KeyPolicy,
    loaded: RwLock<Arc<Loaded>>,
}

impl KeyRing {
    /// Makes sure a key signs now and the next one is published in time, then loads them.
    pub async fn open(db: DatabaseConnection, policy: KeyPolicy) -> Result<Self, KeyError> {
        let ring = Self {
            db,
            policy,
            loaded: RwLock::new(Arc::default()),
        };
        ring.maintain(Utc::now()).await?;
        Ok(ring)
    }

    /// The key that signs at `now`: of those whose signing period holds `now`, the one that
    /// started last.
    pub(crate) fn signer(&self, now: DateTime<Utc>) -> Result<(String, EncodingKey), KeyError> {
        let loaded = Arc::clone(&self.loaded.read());
        loaded
            .signers
            .iter()
            .filter(|signer| signer.signs_from <= now && now < signer.signs_until)
            .max_by(|a, b| (a.signs_from, &a.kid).cmp(&(b.signs_from, &b.kid)))
            .map(|signer| (signer.kid.clone(), signer.key.clone()))
            .ok_or(KeyError::NoActiveKey)
    }

    /// The `kid` of the key that signs at `now`.
    pub fn signing_kid(&self, now: DateTime<Utc>) -> Result<String, KeyError> {
        self.signer(now).map(|(kid, _)| kid)
    }

    /// The public keys: every key that signs now, will sign soon, or signed tokens that are
    /// still valid.
    pub fn jwks(&self) -> JwkSet {
        self.loaded.read().jwks.clone()
    }

    /// Creates missing keys, deletes keys no token can need any more, and reloads.
    pub async fn maintain(&self, now: DateTime<Utc>) -> Result<(), KeyError> {
        signing_key::Entity::delete_many()
            .filter(signing_key::Column::VerifiesUntil.lte(now))
            .exec(&self.db)
            .await?;
        let keys = self.load_rows(now).await?;
        let signing_now = keys
            .iter()
            .any(|key| key.signs_from <= now && now < key.signs_until);
        let covered_until = keys.iter().map(|key| key.signs_until).max();
        let publish_ahead = chrono::Duration::from_std(self.policy.publish_ahead)?;
        if !signing_now {
            self.create_key(now).await?;
        } else if covered_until.is_some_and(|until| until <= now + publish_ahead * 2) {
            self.create_key(now + publish_ahead).await?;
        }
        self.reload(now).await
    }

    /// Starts a new key that signs from now on (e.g. when a key may have leaked, after deleting
    /// it). Tokens signed by the older keys stay valid until they expire.
    pub async fn rotate_now(&self) -> Result<String, KeyError> {
        let now = Utc::now();
        let kid = self.create_key(now).await?;
        self.reload(now).await?;
        Ok(kid)
    }

    /// Reads the keys again from the database.
    pub async fn reload(&self, now: DateTime<Utc>) -> Result<(), KeyError> {
        let rows = self.load_rows(now).await?;
        let mut loaded = Loaded::default();
        for row in rows {
            loaded.jwks.keys.push(public_jwk(&row.kid, &row.public_key));
            loaded.signers.push(Signer {
                key: EncodingKey::from_ed_der(&row.private_key),
                kid: row.kid,
                signs_from: row.signs_from,
                signs_until: row.signs_until,
            });
        }
        *self.loaded.write() = Arc::new(loaded);
        Ok(())
    }

    /// Maintains the keys every `interval` until `shutdown`.
    pub async fn maintain_every(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Err(err) = self.maintain(Utc::now()).await {
                tracing::warn!(error = %err, "maintaining the signing keys failed; keeping the loaded ones");
            }
        }
    }

    async fn load_rows(&self, now: DateTime<Utc>) -> Result<Vec<signing_key::Model>, DbErr> {
        signing_key::Entity::find()
            .filter(signing_key::Column::VerifiesUntil.gt(now))
            .all(&self.db)
            .await
    }

    async fn create_key(&self, signs_from: DateTime<Utc>) -> Result<String, KeyError> {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|err| KeyError::Random(err.to_string()))?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let private_key = key
            .to_pkcs8_der()
            .map_err(|err| KeyError::Encoding(err.to_string()))?;
        let signs_until = signs_from + chrono::Duration::from_std(self.policy.rotation)?;
        let verifies_until = signs_until + chrono::Duration::from_std(self.policy.token_lifetime)?;
        let kid = uuid::Uuid::now_v7().simple().to_string();
        signing_key::Entity::insert(signing_key::ActiveModel {
            kid: Set(kid.clone()),
            private_key: Set(private_key.as_bytes().to_vec()),
            public_key: Set(key.verifying_key().to_bytes().to_vec()),
            created_at: Set(Utc::now()),
            signs_from: Set(signs_from),
            signs_until: Set(signs_until),
            verifies_until: Set(verifies_until),
        })
        .exec_without_returning(&self.db)
        .await?;
        tracing::info!(kid, %signs_from, %signs_until, "created a token signing key");
        Ok(kid)
    }
}

#[async_trait::async_trait]
impl runmesh_platform::auth::KeySource for KeyRing {
    /// Reloads from the database first, so a key another replica just created is found; when
    /// the database cannot be read, the keys already loaded are served.
    async fn fetch(&self) -> anyhow::Result<JwkSet> {
        if let Err(err) = self.reload(Utc::now()).await {
            tracing::warn!(error = %err, "reloading the signing keys failed; serving the loaded ones");
        }
        Ok(self.jwks())
    }
}

/// The public JWK of an Ed25519 key (RFC 8037).
fn public_jwk(kid: &str, public_key: &[u8]) -> Jwk {
    Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            key_id: Some(kid.to_owned()),
            ..CommonParameters::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: URL_SAFE_NO_PAD.encode(public_key),
        }),
    }
}
