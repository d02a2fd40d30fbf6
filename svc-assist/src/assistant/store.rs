//! The assistant's tables (svc-assist's database, PostgreSQL or SQLite): conversations and their
//! messages per runner, and the embedding vectors of knowledge chunks when dense retrieval is on.

use runmesh_platform::db::begin_write;
use sea_orm::entity::prelude::*;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{integer, string_len, text, timestamp_with_time_zone, uuid};

pub mod conversation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "assistant_conversations")]
    pub struct Model {
        /// UUIDv7.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: String,
        pub title: String,
        pub message_count: i32,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod message {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "assistant_messages")]
    pub struct Model {
        /// UUIDv7: conversation order is id order.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub conversation_id: Uuid,
        pub user_id: String,
        /// `runner` or `assistant`.
        pub role: String,
        pub text: String,
        pub language: String,
        /// The intent's number (`runmesh.assist.v1.Intent`).
        pub intent: i32,
        /// `[Citation]` as JSON (assistant messages).
        pub citations: String,
        /// `[DataUsed]` as JSON (assistant messages).
        pub data: String,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod chunk_vector {
    use sea_orm::entity::prelude::*;

    /// A knowledge chunk's embedding from one model; recomputed when the chunk's text changes.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "assistant_chunk_vectors")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub chunk_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub model: String,
        /// SHA-256 of the embedded text, hex.
        pub content_hash: String,
        /// The vector as a JSON array of numbers.
        pub vector: String,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[derive(DeriveIden, Clone, Copy)]
enum AssistantConversations {
    Table,
    Id,
    UserId,
    Title,
    MessageCount,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AssistantMessages {
    Table,
    Id,
    ConversationId,
    UserId,
    Role,
    Text,
    Language,
    Intent,
    Citations,
    Data,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AssistantChunkVectors {
    Table,
    ChunkId,
    Model,
    ContentHash,
    Vector,
    UpdatedAt,
}

/// The assistant's migration; svc-assist's migrator lists it.
pub struct CreateAssistant;

impl MigrationName for CreateAssistant {
    fn name(&self) -> &str {
        "m20261216_000001_assistant"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAssistant {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AssistantConversations::Table)
                    .if_not_exists()
                    .col(uuid(AssistantConversations::Id).primary_key())
                    .col(string_len(AssistantConversations::UserId, 64))
                    .col(string_len(AssistantConversations::Title, 200))
                    .col(integer(AssistantConversations::MessageCount))
                    .col(timestamp_with_time_zone(AssistantConversations::CreatedAt))
                    .col(timestamp_with_time_zone(AssistantConversations::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                runmesh_platform::db::index(
                    "assistant_conversations_user_updated",
                    AssistantConversations::Table,
                    &[
                        AssistantConversations::UserId,
                        AssistantConversations::UpdatedAt,
                    ],
                )
                .if_not_exists()
                .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AssistantMessages::Table)
                    .if_not_exists()
                    .col(uuid(AssistantMessages::Id).primary_key())
                    .col(uuid(AssistantMessages::ConversationId))
                    .col(string_len(AssistantMessages::UserId, 64))
                    .col(string_len(AssistantMessages::Role, 16))
                    .col(text(AssistantMessages::Text))
                    .col(string_len(AssistantMessages::Language, 8))
                    .col(integer(AssistantMessages::Intent))
                    .col(text(AssistantMessages::Citations))
                    .col(text(AssistantMessages::Data))
                    .col(timestamp_with_time_zone(AssistantMessages::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                runmesh_platform::db::index(
                    "assistant_messages_conversation",
                    AssistantMessages::Table,
                    &[AssistantMessages::ConversationId, AssistantMessages::Id],
                )
                .if_not_exists()
                .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AssistantChunkVectors::Table)
                    .if_not_exists()
                    .col(string_len(AssistantChunkVectors::ChunkId, 300))
                    .col(string_len(AssistantChunkVectors::Model, 200))
                    .col(string_len(AssistantChunkVectors::ContentHash, 64))
                    .col(text(AssistantChunkVectors::Vector))
                    .col(timestamp_with_time_zone(AssistantChunkVectors::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(AssistantChunkVectors::ChunkId)
                            .col(AssistantChunkVectors::Model),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AssistantChunkVectors::Table.into_iden(),
            AssistantMessages::Table.into_iden(),
            AssistantConversations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// One message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub role: &'static str,
    pub text: String,
    pub language: String,
    pub intent: i32,
    pub citations: String,
    pub data: String,
}

/// Conversations and messages, always scoped to their runner.
#[derive(Debug, Clone)]
pub struct Conversations {
    db: DatabaseConnection,
}

impl Conversations {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The runner's conversation, or `None` (also when it is another runner's).
    pub async fn get(&self, user_id: &str, id: Uuid) -> Result<Option<conversation::Model>, DbErr> {
        conversation::Entity::find_by_id(id)
            .filter(conversation::Column::UserId.eq(user_id))
            .one(&self.db)
            .await
    }

    /// A new conversation titled by its first question.
    pub async fn create(
        &self,
        user_id: &str,
        title: &str,
        now: ChronoDateTimeUtc,
    ) -> Result<conversation::Model, DbErr> {
        let title: String = title.chars().take(80).collect();
        conversation::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id.to_owned()),
            title: Set(title),
            message_count: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await
    }

    /// Appends messages to a conversation of the runner's; their ids, in order.
    pub async fn append(
        &self,
        user_id: &str,
        conversation_id: Uuid,
        messages: Vec<NewMessage>,
        now: ChronoDateTimeUtc,
    ) -> Result<Vec<Uuid>, DbErr> {
        let txn = begin_write(&self.db).await?;
        let Some(current) = conversation::Entity::find_by_id(conversation_id)
            .filter(conversation::Column::UserId.eq(user_id))
            .one(&txn)
            .await?
        else {
            return Err(DbErr::RecordNotFound(conversation_id.to_string()));
        };
        let mut ids = Vec::with_capacity(messages.len());
        let count = messages.len() as i32;
        for message in messages {
            let id = Uuid::now_v7();
            message::ActiveModel {
                id: Set(id),
                conversation_id: Set(conversation_id),
                user_id: Set(user_id.to_owned()),
                role: Set(message.role.to_owned()),
                text: Set(message.text),
                language: Set(message.language),
                intent: Set(message.intent),
                citations: Set(message.citations),
                data: Set(message.data),
                created_at: Set(now),
            }
            .insert(&txn)
            .await?;
            ids.push(id);
        }
        conversation::ActiveModel {
            id: Set(conversation_id),
            message_count: Set(current.message_count + count),
            updated_at: Set(now),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        txn.commit().await?;
        Ok(ids)
    }

    /// The runner's conversations, most recently updated first, from `offset`.
    pub async fn list(
        &self,
        user_id: &str,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<conversation::Model>, DbErr> {
        conversation::Entity::find()
            .filter(conversation::Column::UserId.eq(user_id))
            .order_by_desc(conversation::Column::UpdatedAt)
            .order_by_desc(conversation::Column::Id)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await
    }

    /// The messages of a conversation of the runner's, oldest first.
    pub async fn messages(
        &self,
        user_id: &str,
        conversation_id: Uuid,
    ) -> Result<Vec<message::Model>, DbErr> {
        message::Entity::find()
            .filter(message::Column::ConversationId.eq(conversation_id))
            .filter(message::Column::UserId.eq(user_id))
            .order_by_asc(message::Column::Id)
            .all(&self.db)
            .await
    }

    /// The last `n` messages of a conversation, oldest first (the model's context).
    pub async fn recent_messages(
        &self,
        user_id: &str,
        conversation_id: Uuid,
        n: u64,
    ) -> Result<Vec<message::Model>, DbErr> {
        let mut recent = message::Entity::find()
            .filter(message::Column::ConversationId.eq(conversation_id))
            .filter(message::Column::UserId.eq(user_id))
            .order_by_desc(message::Column::Id)
            .limit(n)
            .all(&self.db)
            .await?;
        recent.reverse();
        Ok(recent)
    }

    /// Deletes a conversation of the runner's; `false` when there was none.
    pub async fn delete(&self, user_id: &str, conversation_id: Uuid) -> Result<bool, DbErr> {
        let txn = begin_write(&self.db).await?;
        let deleted = conversation::Entity::delete_many()
            .filter(conversation::Column::Id.eq(conversation_id))
            .filter(conversation::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?
            .rows_affected;
        if deleted > 0 {
            message::Entity::delete_many()
                .filter(message::Column::ConversationId.eq(conversation_id))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(deleted > 0)
    }

    /// How many conversations the runner has.
    pub async fn count(&self, user_id: &str) -> Result<u64, DbErr> {
        conversation::Entity::find()
            .filter(conversation::Column::UserId.eq(user_id))
            .count(&self.db)
            .await
    }
}
