use sea_orm::entity::prelude::*;

/// An Ed25519 key that signs access tokens. Kept in the database so every replica signs with
/// the same keys; the private half never leaves this table and the process memory.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    /// The JWT `kid`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    /// PKCS#8 DER.
    pub private_key: Vec<u8>,
    /// The 32-byte public key.
    pub public_key: Vec<u8>,
    pub created_at: ChronoDateTimeUtc,
    /// Signs from here (published earlier, so verifiers know it before they see it)…
    pub signs_from: ChronoDateTimeUtc,
    /// …until here…
    pub signs_until: ChronoDateTimeUtc,
    /// …and is published until the last token it signed has expired.
    pub verifies_until: ChronoDateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("signs_from", &self.signs_from)
            .field("signs_until", &self.signs_until)
            .field("verifies_until", &self.verifies_until)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
