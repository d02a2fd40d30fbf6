//! The crew board: posts (pinned first, then newest), comments with one level of replies,
//! reactions (one per runner per kind; counts are counted, so they can't drift), and moderation
//! (reports by distinct runners; at the threshold the content is hidden once, in the report's
//! transaction, by a conditional update that only one transaction can win).

use std::collections::HashMap;

use runmesh_platform::auth::Caller;
use runmesh_platform::db::begin_write;
use runmesh_proto::runmesh::social::v1 as proto;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::core::{Action, CrewView, Social, require_member, require_role};
use crate::crews::{Page, next_token as page_token_after};
use crate::domain::{CrewRole, Moderation, PageSize, PageToken, PostCategory, ReactionKind};
use crate::error::Error;
use crate::events;
use crate::store::{comment, post, reaction, report};
use crate::wire;

/// A post or a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Post(Uuid),
    Comment(Uuid),
}

impl Target {
    pub fn id(self) -> Uuid {
        match self {
            Self::Post(id) | Self::Comment(id) => id,
        }
    }
}

/// A reaction count as a caller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactionTally {
    pub kind: ReactionKind,
    pub count: u32,
    pub mine: bool,
}

#[derive(Debug, Clone)]
pub struct PostView {
    pub post: post::Model,
    pub reactions: Vec<ReactionTally>,
}

#[derive(Debug, Clone)]
pub struct CommentView {
    pub comment: comment::Model,
    pub reactions: Vec<ReactionTally>,
}

/// A post's edits, validated.
#[derive(Debug, Clone, Default)]
pub struct PostChanges {
    pub title: Option<String>,
    pub body: Option<String>,
    pub category: Option<PostCategory>,
}

/// Reported content in the moderation queue.
#[derive(Debug, Clone)]
pub struct Reported {
    pub target: Target,
    pub crew_id: Uuid,
    pub author_id: String,
    pub excerpt: String,
    pub moderation: Moderation,
    pub report_count: i32,
    pub reasons: Vec<String>,
}

/// What a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportOutcome {
    /// Counted; the content stays as it was.
    Recorded,
    /// Counted, and it reached the threshold: this report hid the content.
    Hidden,
    /// The runner had reported it already: nothing changed.
    Repeated,
}

/// A new post's row: what `CreatePost` writes (and [`crate::seed`] in bulk).
pub fn new_post(
    id: Uuid,
    crew_id: Uuid,
    author_id: &str,
    category: PostCategory,
    title: String,
    body: String,
    at: chrono::DateTime<chrono::Utc>,
) -> post::ActiveModel {
    post::ActiveModel {
        id: Set(id),
        crew_id: Set(crew_id),
        author_id: Set(author_id.to_owned()),
        category: Set(category.code().to_owned()),
        title: Set(title),
        body: Set(body),
        pinned: Set(0),
        moderation: Set(Moderation::Visible.code().to_owned()),
        report_count: Set(0),
        comment_count: Set(0),
        created_at: Set(at),
        edited_at: Set(None),
    }
}

/// A new comment's row: what `CreateComment` writes (and [`crate::seed`] in bulk), besides
/// the post's `comment_count + 1` and [`comment_created`].
pub fn new_comment(
    id: Uuid,
    post: &post::Model,
    parent_id: Option<Uuid>,
    author_id: &str,
    body: String,
    at: chrono::DateTime<chrono::Utc>,
) -> comment::ActiveModel {
    comment::ActiveModel {
        id: Set(id),
        post_id: Set(post.id),
        crew_id: Set(post.crew_id),
        parent_id: Set(parent_id),
        author_id: Set(author_id.to_owned()),
        body: Set(body),
        moderation: Set(Moderation::Visible.code().to_owned()),
        report_count: Set(0),
        created_at: Set(at),
    }
}

/// `CommentCreated` for `comment` on `post`.
pub fn comment_created(
    post: &post::Model,
    comment: &comment::Model,
    parent_author_id: Option<String>,
) -> proto::CommentCreated {
    proto::CommentCreated {
        crew_id: post.crew_id.to_string(),
        target_kind: proto::CommentTargetKind::Post.into(),
        target_id: post.id.to_string(),
        comment_id: comment.id.to_string(),
        author_id: comment.author_id.clone(),
        target_owner_id: post.author_id.clone(),
        parent_author_id: parent_author_id.unwrap_or_default(),
        created_at: Some(wire::timestamp(comment.created_at)),
    }
}

/// Whether the caller sees content in `moderation` written by `author_id`.
fn sees(view: &CrewView, caller: &Caller, moderation: &str, author_id: &str) -> bool {
    match Moderation::from_code(moderation) {
        Some(moderation) if moderation.shown() => true,
        Some(Moderation::Hidden) => view.standing.manages() || author_id == caller.user_id,
        _ => false,
    }
}

impl Social {
    pub async fn create_post(
        &self,
        caller: &Caller,
        crew_id: Uuid,
        category: PostCategory,
        title: String,
        body: String,
    ) -> Result<PostView, Error> {
        let view = self.member_crew(&self.db, caller, crew_id).await?;
        if category == PostCategory::Notice {
            require_role(&view, CrewRole::Admin)?;
        }
        self.rate_limit(caller, Action::Post).await?;
        let post = new_post(
            Uuid::now_v7(),
            crew_id,
            &caller.user_id,
            category,
            title,
            body,
            wire::now(),
        )
        .insert(&self.db)
        .await?;
        Ok(PostView {
            post,
            reactions: Vec::new(),
        })
    }

    /// The post and the crew as the caller sees them; `POST_NOT_FOUND` when either is hidden
    /// from the caller.
    async fn readable_post(
        &self,
        conn: &impl ConnectionTrait,
        caller: &Caller,
        post_id: Uuid,
    ) -> Result<(post::Model, CrewView), Error> {
        let not_found = || Error::PostNotFound(post_id.to_string());
        let post = post::Entity::find_by_id(post_id)
            .one(conn)
            .await?
            .ok_or_else(not_found)?;
        let view = self
            .readable_crew(conn, caller, post.crew_id)
            .await
            .map_err(|err| match err {
                Error::CrewNotFound(_) => not_found(),
                other => other,
            })?;
        if !sees(&view, caller, &post.moderation, &post.author_id) {
            return Err(not_found());
        }
        Ok((post, view))
    }

    pub async fn get_post(&self, caller: &Caller, post_id: Uuid) -> Result<PostView, Error> {
        let (post, _) = self.readable_post(&self.db, caller, post_id).await?;
        let mut views = self.post_views(caller, vec![post]).await?;
        views
            .pop()
            .ok_or_else(|| Error::PostNotFound(post_id.to_string()))
    }

    pub async fn update_post(
        &self,
        caller: &Caller,
        post_id: Uuid,
        changes: PostChanges,
    ) -> Result<PostView, Error> {
        let (post, view) = self.readable_post(&self.db, caller, post_id).await?;
        let role = require_member(&view)?;
        if post.author_id != caller.user_id && !role.manages() {
            return Err(Error::CrewRoleRequired(CrewRole::Admin));
        }
        if changes.category == Some(PostCategory::Notice) {
            require_role(&view, CrewRole::Admin)?;
        }
        let mut active: post::ActiveModel = post.into();
        if let Some(title) = changes.title {
            active.title = Set(title);
        }
        if let Some(body) = changes.body {
            active.body = Set(body);
        }
        if let Some(category) = changes.category {
            active.category = Set(category.code().to_owned());
        }
        active.edited_at = Set(Some(wire::now()));
        let post = active.update(&self.db).await?;
        let mut views = self.post_views(caller, vec![post]).await?;
        views
            .pop()
            .ok_or_else(|| Error::PostNotFound(post_id.to_string()))
    }

    /// Deletes the post with its comments, reactions and reports.
    pub async fn delete_post(&self, caller: &Caller, post_id: Uuid) -> Result<(), Error> {
        let txn = begin_write(&self.db).await?;
        let (post, view) = self.readable_post(&txn, caller, post_id).await?;
        let role = require_member(&view)?;
        if post.author_id != caller.user_id && !role.manages() {
            return Err(Error::CrewRoleRequired(CrewRole::Admin));
        }
        let comment_ids: Vec<Uuid> = comment::Entity::find()
            .select_only()
            .column(comment::Column::Id)
            .filter(comment::Column::PostId.eq(post_id))
            .into_tuple()
            .all(&txn)
            .await?;
        let mut targets = comment_ids;
        targets.push(post_id);
        for chunk in targets.chunks(500) {
            reaction::Entity::delete_many()
                .filter(reaction::Column::TargetId.is_in(chunk.iter().copied()))
                .exec(&txn)
                .await?;
            report::Entity::delete_many()
                .filter(report::Column::TargetId.is_in(chunk.iter().copied()))
                .exec(&txn)
                .await?;
        }
        comment::Entity::delete_many()
            .filter(comment::Column::PostId.eq(post_id))
            .exec(&txn)
            .await?;
        post::Entity::delete_by_id(post_id).exec(&txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The board: pinned first, then newest first.
    pub async fn list_posts(
        &self,
        caller: &Caller,
        crew_id: Uuid,
        category: Option<PostCategory>,
        size: PageSize,
        after: Option<PageToken>,
    ) -> Result<Page<PostView>, Error> {
        let view = self.readable_crew(&self.db, caller, crew_id).await?;
        let mut query = post::Entity::find().filter(post::Column::CrewId.eq(crew_id));
        let shown = [Moderation::Visible.code(), Moderation::Restored.code()];
        query = if view.standing.manages() {
            query.filter(post::Column::Moderation.ne(Moderation::Removed.code()))
        } else {
            query.filter(
                Condition::any()
                    .add(post::Column::Moderation.is_in(shown))
                    .add(
                        Condition::all()
                            .add(post::Column::Moderation.eq(Moderation::Hidden.code()))
                            .add(post::Column::AuthorId.eq(&caller.user_id)),
                    ),
            )
        };
        if let Some(category) = category {
            query = query.filter(post::Column::Category.eq(category.code()));
        }
        if let Some(after) = after {
            let id = Uuid::parse_str(&after.id).unwrap_or_default();
            query = query.filter(
                Expr::tuple([Expr::col(post::Column::Pinned), Expr::col(post::Column::Id)]).lt(
                    Expr::tuple([
                        Expr::val(i32::try_from(after.sort_key).unwrap_or(0)),
                        Expr::val(id),
                    ]),
                ),
            );
        }
        let posts = query
            .order_by_desc(post::Column::Pinned)
            .order_by_desc(post::Column::Id)
            .limit(size.0)
            .all(&self.db)
            .await?;
        let next = page_token_after(&posts, size.0, |post| {
            PageToken::after(i64::from(post.pinned), post.id.to_string())
        });
        Ok((self.post_views(caller, posts).await?, next))
    }

    async fn post_views(
        &self,
        caller: &Caller,
        posts: Vec<post::Model>,
    ) -> Result<Vec<PostView>, Error> {
        let mut tallies = self
            .tallies(caller, posts.iter().map(|post| post.id).collect())
            .await?;
        Ok(posts
            .into_iter()
            .map(|post| PostView {
                reactions: tallies.remove(&post.id).unwrap_or_default(),
                post,
            })
            .collect())
    }

    /// Reaction counts of `targets` (and whether the caller gave each).
    async fn tallies(
        &self,
        caller: &Caller,
        targets: Vec<Uuid>,
    ) -> Result<HashMap<Uuid, Vec<ReactionTally>>, Error> {
        if targets.is_empty() {
            return Ok(HashMap::new());
        }
        let counts: Vec<(Uuid, String, i64)> = reaction::Entity::find()
            .select_only()
            .column(reaction::Column::TargetId)
            .column(reaction::Column::Kind)
            .column_as(reaction::Column::UserId.count(), "count")
            .filter(reaction::Column::TargetId.is_in(targets.clone()))
            .group_by(reaction::Column::TargetId)
            .group_by(reaction::Column::Kind)
            .into_tuple()
            .all(&self.db)
            .await?;
        if counts.is_empty() {
            return Ok(HashMap::new());
        }
        let mine: Vec<(Uuid, String)> = reaction::Entity::find()
            .select_only()
            .column(reaction::Column::TargetId)
            .column(reaction::Column::Kind)
            .filter(reaction::Column::TargetId.is_in(targets))
            .filter(reaction::Column::UserId.eq(&caller.user_id))
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut tallies: HashMap<Uuid, Vec<ReactionTally>> = HashMap::new();
        for (target, kind, count) in counts {
            let Some(kind_value) = ReactionKind::from_code(&kind) else {
                continue;
            };
            let entry = tallies.entry(target).or_default();
            entry.push(ReactionTally {
                kind: kind_value,
                count: u32::try_from(count).unwrap_or(0),
                mine: mine.iter().any(|(t, k)| *t == target && *k == kind),
            });
            entry.sort_by_key(|tally| tally.kind);
        }
        Ok(tallies)
    }

    pub async fn pin_post(
        &self,
        caller: &Caller,
        post_id: Uuid,
        pinned: bool,
    ) -> Result<PostView, Error> {
        let (post, view) = self.readable_post(&self.db, caller, post_id).await?;
        require_role(&view, CrewRole::Admin)?;
        let mut active: post::ActiveModel = post.into();
        active.pinned = Set(i32::from(pinned));
        let post = active.update(&self.db).await?;
        let mut views = self.post_views(caller, vec![post]).await?;
        views
            .pop()
            .ok_or_else(|| Error::PostNotFound(post_id.to_string()))
    }

    pub async fn create_comment(
        &self,
        caller: &Caller,
        post_id: Uuid,
        parent_id: Option<Uuid>,
        body: String,
    ) -> Result<CommentView, Error> {
        self.rate_limit(caller, Action::Comment).await?;
        let txn = begin_write(&self.db).await?;
        let (post, view) = self.readable_post(&txn, caller, post_id).await?;
        require_member(&view)?;
        let parent = match parent_id {
            Some(parent_id) => {
                let parent = comment::Entity::find_by_id(parent_id)
                    .one(&txn)
                    .await?
                    .filter(|parent| parent.post_id == post_id)
                    .ok_or_else(|| Error::CommentNotFound(parent_id.to_string()))?;
                if parent.parent_id.is_some() {
                    return Err(Error::invalid(
                        "parent_comment_id",
                        "replies are one level deep: reply to a top-level comment",
                    ));
                }
                Some(parent)
            }
            None => None,
        };
        let now = wire::now();
        let comment = new_comment(Uuid::now_v7(), &post, parent_id, &caller.user_id, body, now)
            .insert(&txn)
            .await?;
        post::Entity::update_many()
            .col_expr(
                post::Column::CommentCount,
                Expr::col(post::Column::CommentCount).add(1),
            )
            .filter(post::Column::Id.eq(post_id))
            .exec(&txn)
            .await?;
        events::enqueue(
            &txn,
            post.crew_id,
            &comment_created(&post, &comment, parent.map(|parent| parent.author_id)),
        )
        .await?;
        txn.commit().await?;
        self.wake();
        Ok(CommentView {
            comment,
            reactions: Vec::new(),
        })
    }

    /// A post's comments, oldest first.
    pub async fn list_comments(
        &self,
        caller: &Caller,
        post_id: Uuid,
        size: PageSize,
        after: Option<PageToken>,
    ) -> Result<Page<CommentView>, Error> {
        let (_, view) = self.readable_post(&self.db, caller, post_id).await?;
        let mut query = comment::Entity::find().filter(comment::Column::PostId.eq(post_id));
        if let Some(after) = after {
            let id = Uuid::parse_str(&after.id).unwrap_or_default();
            query = query.filter(comment::Column::Id.gt(id));
        }
        let rows = query
            .order_by_asc(comment::Column::Id)
            .limit(size.0)
            .all(&self.db)
            .await?;
        let next = page_token_after(&rows, size.0, |row| PageToken::after(0, row.id.to_string()));
        let rows: Vec<comment::Model> = rows
            .into_iter()
            .filter(|row| sees(&view, caller, &row.moderation, &row.author_id))
            .collect();
        let mut tallies = self
            .tallies(caller, rows.iter().map(|row| row.id).collect())
            .await?;
        let comments = rows
            .into_iter()
            .map(|comment| CommentView {
                reactions: tallies.remove(&comment.id).unwrap_or_default(),
                comment,
            })
            .collect();
        Ok((comments, next))
    }

    /// The crew of a target the caller may see, and its author.
    async fn readable_target(
        &self,
        conn: &impl ConnectionTrait,
        caller: &Caller,
        target: Target,
    ) -> Result<(CrewView, String, String), Error> {
        match target {
            Target::Post(post_id) => {
                let (post, view) = self.readable_post(conn, caller, post_id).await?;
                Ok((view, post.author_id, post.title))
            }
            Target::Comment(comment_id) => {
                let not_found = || Error::CommentNotFound(comment_id.to_string());
                let comment = comment::Entity::find_by_id(comment_id)
                    .one(conn)
                    .await?
                    .ok_or_else(not_found)?;
                let (_, view) = self
                    .readable_post(conn, caller, comment.post_id)
                    .await
                    .map_err(|err| match err {
                        Error::PostNotFound(_) => not_found(),
                        other => other,
                    })?;
                if !sees(&view, caller, &comment.moderation, &comment.author_id) {
                    return Err(not_found());
                }
                Ok((view, comment.author_id, comment.body))
            }
        }
    }

    /// Adds or takes back a reaction; answers the target's counts.
    pub async fn react(
        &self,
        caller: &Caller,
        target: Target,
        kind: ReactionKind,
        remove: bool,
    ) -> Result<Vec<ReactionTally>, Error> {
        let (view, _, _) = self.readable_target(&self.db, caller, target).await?;
        require_member(&view)?;
        if remove {
            reaction::Entity::delete_by_id((
                target.id(),
                caller.user_id.clone(),
                kind.code().to_owned(),
            ))
            .exec(&self.db)
            .await?;
        } else {
            reaction::Entity::insert(reaction::ActiveModel {
                target_id: Set(target.id()),
                user_id: Set(caller.user_id.clone()),
                kind: Set(kind.code().to_owned()),
                created_at: Set(wire::now()),
            })
            .on_conflict(
                OnConflict::columns([
                    reaction::Column::TargetId,
                    reaction::Column::UserId,
                    reaction::Column::Kind,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        }
        let mut tallies = self.tallies(caller, vec![target.id()]).await?;
        Ok(tallies.remove(&target.id()).unwrap_or_default())
    }

    /// Reports a target, once per runner; at the threshold of distinct reporters the target is
    /// hidden (exactly once: the conditional update only matches visible content) and
    /// `ContentHidden` is written in the same transaction.
    pub async fn report(
        &self,
        caller: &Caller,
        target: Target,
        reason: String,
    ) -> Result<ReportOutcome, Error> {
        self.rate_limit(caller, Action::Report).await?;
        let txn = begin_write(&self.db).await?;
        let (view, author_id, _) = self.readable_target(&txn, caller, target).await?;
        let crew_id = view.crew.id;
        let (kind, content_kind) = match target {
            Target::Post(_) => ("post", proto::ContentKind::Post),
            Target::Comment(_) => ("comment", proto::ContentKind::Comment),
        };
        let inserted = report::Entity::insert(report::ActiveModel {
            target_id: Set(target.id()),
            reporter_id: Set(caller.user_id.clone()),
            crew_id: Set(crew_id),
            kind: Set(kind.to_owned()),
            reason: Set(reason),
            created_at: Set(wire::now()),
        })
        .on_conflict(
            OnConflict::columns([report::Column::TargetId, report::Column::ReporterId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if inserted == 0 {
            // Already reported by this runner: counted once.
            return Ok(ReportOutcome::Repeated);
        }
        let threshold = i32::try_from(self.config.report_threshold).unwrap_or(i32::MAX);
        // The rule of `domain::auto_hide_due`, as one conditional update per target.
        let hidden = match target {
            Target::Post(id) => {
                post::Entity::update_many()
                    .col_expr(
                        post::Column::ReportCount,
                        Expr::col(post::Column::ReportCount).add(1),
                    )
                    .filter(post::Column::Id.eq(id))
                    .exec(&txn)
                    .await?;
                post::Entity::update_many()
                    .col_expr(
                        post::Column::Moderation,
                        Expr::value(Moderation::Hidden.code()),
                    )
                    .filter(post::Column::Id.eq(id))
                    .filter(post::Column::Moderation.eq(Moderation::Visible.code()))
                    .filter(post::Column::ReportCount.gte(threshold))
                    .exec(&txn)
                    .await?
                    .rows_affected
            }
            Target::Comment(id) => {
                comment::Entity::update_many()
                    .col_expr(
                        comment::Column::ReportCount,
                        Expr::col(comment::Column::ReportCount).add(1),
                    )
                    .filter(comment::Column::Id.eq(id))
                    .exec(&txn)
                    .await?;
                comment::Entity::update_many()
                    .col_expr(
                        comment::Column::Moderation,
                        Expr::value(Moderation::Hidden.code()),
                    )
                    .filter(comment::Column::Id.eq(id))
                    .filter(comment::Column::Moderation.eq(Moderation::Visible.code()))
                    .filter(comment::Column::ReportCount.gte(threshold))
                    .exec(&txn)
                    .await?
                    .rows_affected
            }
        };
        if hidden == 1 {
            let report_count = report::Entity::find()
                .filter(report::Column::TargetId.eq(target.id()))
                .count(&txn)
                .await?;
            events::enqueue(
                &txn,
                crew_id,
                &proto::ContentHidden {
                    crew_id: crew_id.to_string(),
                    kind: content_kind.into(),
                    content_id: target.id().to_string(),
                    author_id,
                    report_count: u32::try_from(report_count).unwrap_or(u32::MAX),
                    hidden_at: Some(wire::timestamp(wire::now())),
                },
            )
            .await?;
        }
        txn.commit().await?;
        if hidden == 1 {
            self.wake();
            Ok(ReportOutcome::Hidden)
        } else {
            Ok(ReportOutcome::Recorded)
        }
    }

    /// The moderation queue: reported content not yet reviewed, hidden first (at most 100 of
    /// each kind per call: reviewing empties it).
    pub async fn list_reports(
        &self,
        caller: &Caller,
        crew_id: Uuid,
    ) -> Result<Vec<Reported>, Error> {
        self.managed_crew(&self.db, caller, crew_id).await?;
        let open = [Moderation::Hidden.code(), Moderation::Visible.code()];
        let posts = post::Entity::find()
            .filter(post::Column::CrewId.eq(crew_id))
            .filter(post::Column::ReportCount.gt(0))
            .filter(post::Column::Moderation.is_in(open))
            .order_by_desc(post::Column::ReportCount)
            .limit(100)
            .all(&self.db)
            .await?;
        let comments = comment::Entity::find()
            .filter(comment::Column::CrewId.eq(crew_id))
            .filter(comment::Column::ReportCount.gt(0))
            .filter(comment::Column::Moderation.is_in(open))
            .order_by_desc(comment::Column::ReportCount)
            .limit(100)
            .all(&self.db)
            .await?;
        let mut items: Vec<Reported> = posts
            .into_iter()
            .map(|post| Reported {
                target: Target::Post(post.id),
                crew_id,
                author_id: post.author_id,
                excerpt: post.title,
                moderation: Moderation::from_code(&post.moderation).unwrap_or(Moderation::Visible),
                report_count: post.report_count,
                reasons: Vec::new(),
            })
            .chain(comments.into_iter().map(|comment| Reported {
                target: Target::Comment(comment.id),
                crew_id,
                author_id: comment.author_id,
                excerpt: comment.body.chars().take(200).collect(),
                moderation:
                    Moderation::from_code(&comment.moderation).unwrap_or(Moderation::Visible),
                report_count: comment.report_count,
                reasons: Vec::new(),
            }))
            .collect();
        items.sort_by_key(|item| (item.moderation != Moderation::Hidden, -item.report_count));
        for item in &mut items {
            item.reasons = report::Entity::find()
                .select_only()
                .column(report::Column::Reason)
                .filter(report::Column::TargetId.eq(item.target.id()))
                .filter(report::Column::Reason.ne(""))
                .order_by_desc(report::Column::CreatedAt)
                .limit(10)
                .into_tuple()
                .all(&self.db)
                .await?;
        }
        Ok(items)
    }

    /// Restores or removes reported content; its author is told (`ContentReviewed`).
    pub async fn decide_report(
        &self,
        caller: &Caller,
        crew_id: Uuid,
        target: Target,
        remove: bool,
    ) -> Result<Moderation, Error> {
        let txn = begin_write(&self.db).await?;
        self.managed_crew(&txn, caller, crew_id).await?;
        let moderation = if remove {
            Moderation::Removed
        } else {
            Moderation::Restored
        };
        let (author_id, kind) = match target {
            Target::Post(id) => {
                let post = post::Entity::find_by_id(id)
                    .one(&txn)
                    .await?
                    .filter(|post| post.crew_id == crew_id)
                    .ok_or_else(|| Error::PostNotFound(id.to_string()))?;
                post::Entity::update_many()
                    .col_expr(post::Column::Moderation, Expr::value(moderation.code()))
                    .filter(post::Column::Id.eq(id))
                    .exec(&txn)
                    .await?;
                (post.author_id, proto::ContentKind::Post)
            }
            Target::Comment(id) => {
                let comment = comment::Entity::find_by_id(id)
                    .one(&txn)
                    .await?
                    .filter(|comment| comment.crew_id == crew_id)
                    .ok_or_else(|| Error::CommentNotFound(id.to_string()))?;
                comment::Entity::update_many()
                    .col_expr(comment::Column::Moderation, Expr::value(moderation.code()))
                    .filter(comment::Column::Id.eq(id))
                    .exec(&txn)
                    .await?;
                (comment.author_id, proto::ContentKind::Comment)
            }
        };
        events::enqueue(
            &txn,
            crew_id,
            &proto::ContentReviewed {
                crew_id: crew_id.to_string(),
                kind: kind.into(),
                content_id: target.id().to_string(),
                author_id,
                removed: remove,
                reviewed_by: caller.user_id.clone(),
                reviewed_at: Some(wire::timestamp(wire::now())),
            },
        )
        .await?;
        txn.commit().await?;
        self.wake();
        Ok(moderation)
    }
}
