//! The bulk path of the board benchmark: writes posts and comments exactly as `CreatePost` and
//! `CreateComment` do — the same row builders ([`crate::board::new_post`], [`crate::board::new_comment`]),
//! each post's `comment_count` equal to its comments, and one `CommentCreated` per comment in
//! the outbox (the same envelope `CreateComment` writes) — but many rows per statement and
//! transaction. Only for seeding a fresh crew; it skips what a runner's call checks first
//! (membership, rate limits), so the authors must be members.

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, TransactionTrait};
use uuid::Uuid;

use crate::board::{comment_created, new_comment, new_post};
use crate::domain::PostCategory;
use crate::events;
use crate::store::{comment, post};

/// Rows per statement (12 columns each: well under PostgreSQL's 65,535 parameters).
const BATCH: usize = 1_000;

/// A post to seed: its id (a UUIDv7 minted at `at`, so the board's order is the seed's), author
/// and how many comments it gets.
#[derive(Debug, Clone)]
pub struct SeedPost {
    pub id: Uuid,
    pub author_id: String,
    pub at: DateTime<Utc>,
    pub comments: u32,
}

/// Writes `posts` on `crew_id`'s board with their comments (authors in turn from
/// `commenters`), in batches; returns the comments written.
pub async fn seed_board(
    db: &DatabaseConnection,
    crew_id: Uuid,
    posts: &[SeedPost],
    commenters: &[String],
) -> Result<u64, DbErr> {
    let mut written = 0u64;
    for chunk in posts.chunks(BATCH) {
        let txn = db.begin().await?;
        let mut rows = Vec::with_capacity(chunk.len());
        let mut models = Vec::with_capacity(chunk.len());
        for seed in chunk {
            let mut row = new_post(
                seed.id,
                crew_id,
                &seed.author_id,
                PostCategory::Free,
                format!("Group run report {}", seed.id.simple()),
                "Easy 10K along the river, **negative splits**.".to_owned(),
                seed.at,
            );
            row.comment_count = sea_orm::Set(i32::try_from(seed.comments).unwrap_or(i32::MAX));
            models.push(post::Model {
                id: seed.id,
                crew_id,
                author_id: seed.author_id.clone(),
                category: PostCategory::Free.code().to_owned(),
                title: String::new(),
                body: String::new(),
                pinned: 0,
                moderation: String::new(),
                report_count: 0,
                comment_count: 0,
                created_at: seed.at,
                edited_at: None,
            });
            rows.push(row);
        }
        post::Entity::insert_many(rows)
            .exec_without_returning(&txn)
            .await?;
        let mut comments = Vec::new();
        let mut envelopes = Vec::new();
        for (seed, post) in chunk.iter().zip(&models) {
            for n in 0..seed.comments {
                let at = seed.at + chrono::Duration::milliseconds(i64::from(n) + 1);
                let author = &commenters[(written as usize + comments.len()) % commenters.len()];
                let row = new_comment(
                    Uuid::now_v7(),
                    post,
                    None,
                    author,
                    "Count me in next time.".to_owned(),
                    at,
                );
                let model = comment::Model {
                    id: *row.id.as_ref(),
                    post_id: post.id,
                    crew_id,
                    parent_id: None,
                    author_id: author.clone(),
                    body: String::new(),
                    moderation: String::new(),
                    report_count: 0,
                    created_at: at,
                };
                envelopes.push(events::envelope(
                    crew_id,
                    &comment_created(post, &model, None),
                ));
                comments.push(row);
                if comments.len() == BATCH {
                    written += flush(&txn, &mut comments, &mut envelopes).await?;
                }
            }
        }
        written += flush(&txn, &mut comments, &mut envelopes).await?;
        txn.commit().await?;
    }
    Ok(written)
}

async fn flush(
    txn: &sea_orm::DatabaseTransaction,
    comments: &mut Vec<comment::ActiveModel>,
    envelopes: &mut Vec<runmesh_platform::events::Envelope>,
) -> Result<u64, DbErr> {
    if comments.is_empty() {
        return Ok(0);
    }
    let count = comments.len() as u64;
    comment::Entity::insert_many(std::mem::take(comments))
        .exec_without_returning(txn)
        .await?;
    events::enqueue_many(txn, &std::mem::take(envelopes)).await?;
    Ok(count)
}
