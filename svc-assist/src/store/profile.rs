use sea_orm::entity::prelude::*;

/// What svc-assist knows of a runner, from svc-user's events, and the state of their Slack DM.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "runner_profiles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub display_name: String,
    /// IANA name; empty when unknown.
    pub time_zone: String,
    /// Empty when not linked.
    pub slack_member_id: String,
    /// The `D…` channel `conversations.open` returned; empty until opened.
    pub slack_channel_id: String,
    /// Why Slack refused the member id; empty while it is usable.
    pub slack_invalid: String,
    /// The DM channel is free for the next message from then on (per-channel rate).
    pub slack_next_post_at: Option<ChronoDateTimeUtc>,
    pub pref_race_opening: bool,
    pub pref_registration: bool,
    pub pref_achievement: bool,
    pub pref_crew_activity: bool,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
