//! Leaderboards: the database's `board_totals` are the truth; Redis sorted sets (the in-memory
//! twin in embedded mode) the fast path.
//!
//! One sorted set per period, metric and scope (`lb:<period>:<metric>:<scope>`), scores packed
//! with the tie-break ([`periods::score`]): equal values rank the runner who reached them first
//! ahead; exact ties fall back to the runner id, descending, on both backends. A period's boards
//! are usable only while its marker (`lb:<period>:ready`) exists: a missing marker (Redis lost its
//! data, the keys expired, a new year changed the age groups of the all-time boards) makes the
//! next reader rebuild the period's boards aside from the database and swap them in with one
//! atomic script (RENAME), so no reader sees a half-built board. Writes after each committed
//! change set the runner's absolute scores, and only on boards whose marker exists.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::LazyLock;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use futures::StreamExt as _;
use runmesh_platform::cache::{AtomicScript, CacheError, MemoryState, ScriptValue, SharedCache};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::config::RunConfig;
use crate::domain::periods::{self, AGE_GROUPS, PeriodKind};
use crate::error::Error;
use crate::store::profile;
use crate::store::progress::{board_total, crew_member, preference};

/// What a board ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    Distance,
    MovingTime,
    Runs,
    Elevation,
}

impl Metric {
    pub const ALL: [Metric; 4] = [
        Self::Distance,
        Self::MovingTime,
        Self::Runs,
        Self::Elevation,
    ];

    fn code(self) -> &'static str {
        match self {
            Self::Distance => "d",
            Self::MovingTime => "t",
            Self::Runs => "n",
            Self::Elevation => "e",
        }
    }

    /// The whole-unit value of a total.
    pub fn value(self, total: &board_total::Model) -> u64 {
        match self {
            Self::Distance => periods::whole(total.distance_m),
            Self::MovingTime => periods::whole(total.moving_s),
            Self::Runs => u64::try_from(total.runs.max(0)).unwrap_or(0),
            Self::Elevation => periods::whole(total.elevation_m),
        }
    }
}

/// Who a board ranks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Everyone,
    /// One of [`AGE_GROUPS`].
    AgeGroup(&'static str),
    /// `female`, `male`, `non_binary`.
    Gender(String),
    Crew(String),
}

impl Scope {
    fn code(&self) -> String {
        match self {
            Self::Everyone => "all".to_owned(),
            Self::AgeGroup(group) => format!("age:{group}"),
            Self::Gender(gender) => format!("gender:{gender}"),
            Self::Crew(crew) => format!("crew:{crew}"),
        }
    }
}

/// A board: period kind and the day naming the period (board time zone), metric, scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardId {
    pub period: PeriodKind,
    pub day: NaiveDate,
    pub metric: Metric,
    pub scope: Scope,
}

/// One ranked runner.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// 1-based.
    pub rank: u64,
    pub runner_id: String,
    pub display_name: String,
    pub value: u64,
    pub reached_at: DateTime<Utc>,
}

/// A board page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub entries: Vec<Ranked>,
    pub me: Option<Ranked>,
    pub around: Vec<Ranked>,
    pub total: u64,
    pub time_zone: String,
    pub bounds: Option<(NaiveDate, NaiveDate)>,
}

/// What a runner's board memberships depend on.
#[derive(Debug, Clone, Default)]
pub struct Membership {
    pub birth_year: Option<i32>,
    pub gender: String,
    pub crews: Vec<String>,
    pub opt_out: bool,
}

impl Membership {
    /// The scopes whose boards of a period in `year` hold the runner.
    fn scopes(&self, year: i32) -> Vec<Scope> {
        let mut scopes = vec![Scope::Everyone];
        if let Some(group) = self.birth_year.and_then(|b| periods::age_group(b, year)) {
            scopes.push(Scope::AgeGroup(group));
        }
        if !self.gender.is_empty() {
            scopes.push(Scope::Gender(self.gender.clone()));
        }
        scopes.extend(self.crews.iter().cloned().map(Scope::Crew));
        scopes
    }
}

const GENDERS: [&str; 3] = ["female", "male", "non_binary"];

pub struct Boards {
    db: DatabaseConnection,
    cache: SharedCache,
    tz: Tz,
    grace: Duration,
    /// Display names of ranked runners: the top of a board is read on every call, and a renamed
    /// runner's new name may take a minute to show.
    names: moka::future::Cache<String, String>,
}

/// The year the age groups of a period's boards are computed in.
fn board_year(kind: PeriodKind, day: NaiveDate, today: NaiveDate) -> i32 {
    match kind {
        PeriodKind::AllTime => today.year(),
        _ => periods::period_of(kind, day)
            .1
            .map_or(day.year(), |(from, _)| from.year()),
    }
}

fn key(period: &str, metric: Metric, scope: &Scope) -> String {
    format!("lb:{period}:{}:{}", metric.code(), scope.code())
}

fn marker(period: &str) -> String {
    format!("lb:{period}:ready")
}

impl Boards {
    pub fn new(db: DatabaseConnection, cache: SharedCache, config: &RunConfig) -> Self {
        Self {
            db,
            cache,
            tz: config.board_tz(),
            grace: Duration::days(i64::from(config.board_grace_days)),
            names: moka::future::Cache::builder()
                .max_capacity(200_000)
                .time_to_live(StdDuration::from_secs(60))
                .build(),
        }
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    pub fn today(&self) -> NaiveDate {
        Utc::now().with_timezone(&self.tz).date_naive()
    }

    /// The period's key, its bounds and its start instant.
    fn period(&self, kind: PeriodKind, day: NaiveDate) -> (String, Option<(NaiveDate, NaiveDate)>) {
        periods::period_of(kind, day)
    }

    fn start(&self, bounds: Option<(NaiveDate, NaiveDate)>) -> Option<DateTime<Utc>> {
        bounds.map(|(from, _)| crate::runs::local_midnight(self.tz, from))
    }

    /// How long a period's keys live from now: until its end plus the grace (`None`: forever);
    /// zero when already past.
    fn ttl(&self, bounds: Option<(NaiveDate, NaiveDate)>) -> Option<StdDuration> {
        let (_, to) = bounds?;
        let expires = crate::runs::local_midnight(self.tz, to) + self.grace;
        Some((expires - Utc::now()).to_std().unwrap_or(StdDuration::ZERO))
    }

    /// The board periods (keys with bounds) a run starting at `start` counts in.
    pub fn periods_of(&self, start: DateTime<Utc>) -> Vec<(PeriodKind, NaiveDate)> {
        let day = start.with_timezone(&self.tz).date_naive();
        PeriodKind::ALL.iter().map(|kind| (*kind, day)).collect()
    }

    /// Sets `owner`'s scores on every board of the given periods whose marker exists, from the
    /// database; removes them from boards they no longer belong to (`removed_scopes`) and from
    /// all when they opted out or have no runs there.
    pub async fn apply(
        &self,
        owner: &str,
        touched: &[(PeriodKind, NaiveDate)],
        removed_scopes: &[Scope],
    ) -> Result<(), Error> {
        self.apply_in(&self.db, owner, touched, removed_scopes)
            .await
    }

    /// [`Boards::apply`] reading through `conn`: an event handler's transaction, whose changes
    /// (a new profile, a crew left, an erased runner) the scores must already reflect.
    pub async fn apply_in(
        &self,
        conn: &impl ConnectionTrait,
        owner: &str,
        touched: &[(PeriodKind, NaiveDate)],
        removed_scopes: &[Scope],
    ) -> Result<(), Error> {
        if touched.is_empty() {
            return Ok(());
        }
        let member = membership(conn, owner).await?;
        let today = self.today();
        let mut seen = HashSet::new();
        for (kind, day) in touched {
            let (period, bounds) = self.period(*kind, *day);
            if !seen.insert(period.clone()) {
                continue;
            }
            let ttl = self.ttl(bounds);
            if ttl == Some(StdDuration::ZERO) {
                continue;
            }
            let total = board_total::Entity::find_by_id((period.clone(), owner.to_owned()))
                .one(conn)
                .await?;
            let start = self.start(bounds);
            let scopes = member.scopes(board_year(*kind, *day, today));
            let mut keys = vec![marker(&period)];
            let mut args = vec![
                owner.to_owned(),
                ttl.map_or(0, |t| t.as_millis().max(1)).to_string(),
            ];
            for metric in Metric::ALL {
                for scope in &scopes {
                    keys.push(key(&period, metric, scope));
                    args.push(match &total {
                        Some(t) if t.runs > 0 && !member.opt_out => {
                            let score =
                                periods::score(metric.value(t), periods::tick(t.reached_at, start));
                            format!("{score}")
                        }
                        _ => String::new(),
                    });
                }
                for scope in removed_scopes {
                    if !scopes.contains(scope) {
                        keys.push(key(&period, metric, scope));
                        args.push(String::new());
                    }
                }
            }
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            if let Err(err) = self.cache.run_script(&UPSERT, &keys, &args).await {
                tracing::warn!(owner, period, error = %err, "a board update did not reach the cache; forgetting the period so it is rebuilt");
                self.cache.delete(&marker(&period)).await.ok();
            }
        }
        Ok(())
    }

    /// The current periods (the ones whose boards live in the cache) for `apply` after a
    /// membership change.
    pub fn live_periods(&self) -> Vec<(PeriodKind, NaiveDate)> {
        let today = self.today();
        let mut touched: Vec<(PeriodKind, NaiveDate)> =
            PeriodKind::ALL.iter().map(|k| (*k, today)).collect();
        // The previous week, month and year while their grace lasts.
        for (kind, previous) in [
            (PeriodKind::Week, today - Duration::days(7)),
            (
                PeriodKind::Month,
                today.with_day(1).unwrap_or(today) - Duration::days(1),
            ),
            (
                PeriodKind::Year,
                NaiveDate::from_ymd_opt(today.year() - 1, 12, 31).unwrap_or(today),
            ),
        ] {
            if self.ttl(self.period(kind, previous).1) != Some(StdDuration::ZERO) {
                touched.push((kind, previous));
            }
        }
        touched
    }

    /// Every scope a runner could have been in, for removals after a profile change.
    pub fn all_profile_scopes() -> Vec<Scope> {
        AGE_GROUPS
            .iter()
            .map(|g| Scope::AgeGroup(g))
            .chain(GENDERS.iter().map(|g| Scope::Gender((*g).to_owned())))
            .collect()
    }

    /// A page of a board: `count` from `offset`, the caller and `around` runners on each side.
    pub async fn page(
        &self,
        board: &BoardId,
        viewer: &str,
        offset: usize,
        count: usize,
        around: usize,
    ) -> Result<Page, Error> {
        let (period, bounds) = self.period(board.period, board.day);
        let start = self.start(bounds);
        let ttl = self.ttl(bounds);
        let board_key = key(&period, board.metric, &board.scope);
        let year = board_year(board.period, board.day, self.today());
        let live = ttl != Some(StdDuration::ZERO);
        let mut raw = None;
        if live {
            raw = self
                .read_cache(&period, &board_key, year, viewer, offset, count, around)
                .await;
            if raw.is_none() && self.rebuild_period(board.period, board.day).await? {
                raw = self
                    .read_cache(&period, &board_key, year, viewer, offset, count, around)
                    .await;
            }
        }
        let raw = match raw {
            Some(raw) => raw,
            None => {
                self.read_database(&period, board, start, year, viewer, offset, count, around)
                    .await?
            }
        };
        let mut ids: BTreeSet<String> = raw.top.iter().map(|(m, _)| m.clone()).collect();
        ids.extend(raw.around.iter().map(|(m, _)| m.clone()));
        let names = self.display_names(ids).await?;
        let entry = |rank: u64, member: &str, score: f64| {
            let (value, tick) = periods::unpack(score);
            Ranked {
                rank,
                runner_id: member.to_owned(),
                display_name: names.get(member).cloned().unwrap_or_default(),
                value,
                reached_at: periods::tick_time(tick, start),
            }
        };
        let entries = raw
            .top
            .iter()
            .enumerate()
            .map(|(i, (m, s))| entry((offset + i + 1) as u64, m, *s))
            .collect();
        let me = raw.me.map(|(rank, score)| entry(rank + 1, viewer, score));
        let around = match &me {
            Some(me) => {
                let first = me.rank.saturating_sub(1).saturating_sub(around as u64);
                raw.around
                    .iter()
                    .enumerate()
                    .map(|(i, (m, s))| entry(first + i as u64 + 1, m, *s))
                    .collect()
            }
            None => Vec::new(),
        };
        Ok(Page {
            entries,
            me,
            around,
            total: raw.total,
            time_zone: self.tz.name().to_owned(),
            bounds,
        })
    }

    async fn display_names(&self, ids: BTreeSet<String>) -> Result<HashMap<String, String>, Error> {
        let mut names = HashMap::new();
        let mut missing = Vec::new();
        for id in ids {
            match self.names.get(&id).await {
                Some(name) => {
                    names.insert(id, name);
                }
                None => missing.push(id),
            }
        }
        if !missing.is_empty() {
            let found = display_names(&self.db, missing.iter().cloned()).await?;
            for id in missing {
                let name = found.get(&id).cloned().unwrap_or_default();
                self.names.insert(id.clone(), name.clone()).await;
                names.insert(id, name);
            }
        }
        Ok(names)
    }

    #[allow(clippy::too_many_arguments)]
    async fn read_cache(
        &self,
        period: &str,
        board_key: &str,
        year: i32,
        viewer: &str,
        offset: usize,
        count: usize,
        around: usize,
    ) -> Option<RawPage> {
        let args = [
            offset.to_string(),
            count.to_string(),
            viewer.to_owned(),
            around.to_string(),
            year.to_string(),
        ];
        let marker = marker(period);
        match self
            .cache
            .run_script(&READ, &[board_key, &marker], &args)
            .await
        {
            Ok(value) => RawPage::decode(&value),
            Err(err) => {
                tracing::warn!(error = %err, "reading a board from the cache failed; answering from the database");
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn read_database(
        &self,
        period: &str,
        board: &BoardId,
        start: Option<DateTime<Utc>>,
        year: i32,
        viewer: &str,
        offset: usize,
        count: usize,
        around: usize,
    ) -> Result<RawPage, Error> {
        let built = self.build(period, start, year).await?;
        let ordered = built
            .boards
            .get(&(board.metric, board.scope.clone()))
            .cloned()
            .unwrap_or_default();
        let top = ordered.iter().skip(offset).take(count).cloned().collect();
        let me = ordered
            .iter()
            .position(|(m, _)| m == viewer)
            .map(|rank| (rank as u64, ordered[rank].1));
        let around_page = match me {
            Some((rank, _)) => {
                let rank = usize::try_from(rank).unwrap_or(0);
                let first = rank.saturating_sub(around);
                ordered
                    .iter()
                    .skip(first)
                    .take(rank + around + 1 - first)
                    .cloned()
                    .collect()
            }
            None => Vec::new(),
        };
        Ok(RawPage {
            total: ordered.len() as u64,
            me,
            top,
            around: if around == 0 { Vec::new() } else { around_page },
        })
    }

    /// Every board of a period from the database, each ordered as the cache orders it.
    async fn build(
        &self,
        period: &str,
        start: Option<DateTime<Utc>>,
        year: i32,
    ) -> Result<Built, Error> {
        let totals: Vec<board_total::Model> = board_total::Entity::find()
            .filter(board_total::Column::Period.eq(period))
            .filter(board_total::Column::Runs.gt(0))
            .all(&self.db)
            .await?;
        let profiles: HashMap<String, (Option<i32>, String)> = profile::Entity::find()
            .select_only()
            .columns([
                profile::Column::UserId,
                profile::Column::BirthYear,
                profile::Column::Gender,
            ])
            .into_tuple::<(String, Option<i32>, String)>()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|(id, birth, gender)| (id, (birth, gender)))
            .collect();
        let mut crews: HashMap<String, Vec<String>> = HashMap::new();
        for (crew, user) in crew_member::Entity::find()
            .select_only()
            .columns([crew_member::Column::CrewId, crew_member::Column::UserId])
            .into_tuple::<(String, String)>()
            .all(&self.db)
            .await?
        {
            crews.entry(user).or_default().push(crew);
        }
        let opted_out: HashSet<String> = preference::Entity::find()
            .select_only()
            .column(preference::Column::UserId)
            .filter(preference::Column::OptOut.eq(true))
            .into_tuple::<String>()
            .all(&self.db)
            .await?
            .into_iter()
            .collect();
        let mut boards: BTreeMap<(Metric, Scope), Vec<(String, f64)>> = BTreeMap::new();
        for total in &totals {
            if opted_out.contains(&total.owner_id) {
                continue;
            }
            let (birth_year, gender) = profiles
                .get(&total.owner_id)
                .cloned()
                .unwrap_or((None, String::new()));
            let membership = Membership {
                birth_year,
                gender,
                crews: crews.remove(&total.owner_id).unwrap_or_default(),
                opt_out: false,
            };
            let tick = periods::tick(total.reached_at, start);
            for metric in Metric::ALL {
                let score = periods::score(metric.value(total), tick);
                for scope in membership.scopes(year) {
                    boards
                        .entry((metric, scope))
                        .or_default()
                        .push((total.owner_id.clone(), score));
                }
            }
        }
        for members in boards.values_mut() {
            members.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        }
        Ok(Built { boards })
    }

    /// Rebuilds every board of a period from the database aside and swaps them in atomically.
    /// `false` when another rebuild of the period is under way (or the period is past its
    /// grace, answered from the database).
    pub async fn rebuild_period(&self, kind: PeriodKind, day: NaiveDate) -> Result<bool, Error> {
        let (period, bounds) = self.period(kind, day);
        let ttl = self.ttl(bounds);
        if ttl == Some(StdDuration::ZERO) {
            return Ok(false);
        }
        let lock = format!("lb:{period}:lock");
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        if !self
            .cache
            .set_if_absent(&lock, nonce.as_bytes(), Some(StdDuration::from_secs(600)))
            .await
            .map_err(cache_error)?
        {
            return Ok(false);
        }
        let result = self
            .rebuild_locked(kind, day, &period, bounds, ttl, &nonce)
            .await;
        self.cache.delete(&lock).await.ok();
        result.map(|()| true)
    }

    async fn rebuild_locked(
        &self,
        kind: PeriodKind,
        day: NaiveDate,
        period: &str,
        bounds: Option<(NaiveDate, NaiveDate)>,
        ttl: Option<StdDuration>,
        nonce: &str,
    ) -> Result<(), Error> {
        let started = crate::wire::now();
        let year = board_year(kind, day, self.today());
        let built = self.build(period, self.start(bounds), year).await?;
        let mut pairs = Vec::new();
        for ((metric, scope), members) in &built.boards {
            let final_key = key(period, *metric, scope);
            let temp = format!("{final_key}:build:{nonce}");
            let batches: Vec<Vec<String>> = members
                .chunks(1_000)
                .map(|chunk| {
                    chunk
                        .iter()
                        .flat_map(|(m, s)| [format!("{s}"), m.clone()])
                        .collect()
                })
                .collect();
            {
                let cache = &self.cache;
                let temp_ref = temp.as_str();
                let mut writes =
                    futures::stream::iter(batches.into_iter().map(|args| async move {
                        cache.run_script(&ZADD_MANY, &[temp_ref], &args).await
                    }))
                    .buffer_unordered(8);
                while let Some(written) = writes.next().await {
                    written.map_err(cache_error)?;
                }
            }
            pairs.push((temp, final_key));
        }
        let marker_key = marker(period);
        let list_key = format!("lb:{period}:keys");
        let mut keys = vec![marker_key.as_str(), list_key.as_str()];
        for (temp, final_key) in &pairs {
            keys.push(temp);
            keys.push(final_key);
        }
        let args = [
            ttl.map_or(0, |t| t.as_millis().max(1)).to_string(),
            year.to_string(),
        ];
        self.cache
            .run_script(&SWAP, &keys, &args)
            .await
            .map_err(cache_error)?;
        // Changes committed while the snapshot was read are applied again on the new boards.
        let changed: Vec<String> = board_total::Entity::find()
            .select_only()
            .column(board_total::Column::OwnerId)
            .filter(board_total::Column::Period.eq(period))
            .filter(board_total::Column::UpdatedAt.gte(started - Duration::seconds(1)))
            .into_tuple()
            .all(&self.db)
            .await?;
        for owner in changed {
            self.apply(&owner, &[(kind, day)], &[]).await?;
        }
        tracing::info!(period, boards = pairs.len(), "rebuilt a period's boards");
        Ok(())
    }

    /// Rebuilds the boards of every live period (the command an operator runs after Redis was
    /// replaced; readers do it by themselves for a period whose marker is gone).
    pub async fn rebuild_all(&self) -> Result<usize, Error> {
        let mut rebuilt = 0;
        for (kind, day) in self.live_periods() {
            if self.rebuild_period(kind, day).await? {
                rebuilt += 1;
            }
        }
        Ok(rebuilt)
    }
}

fn cache_error(err: CacheError) -> Error {
    Error::Cache(err.to_string())
}

struct Built {
    boards: BTreeMap<(Metric, Scope), Vec<(String, f64)>>,
}

#[derive(Debug)]
struct RawPage {
    total: u64,
    /// 0-based rank and score.
    me: Option<(u64, f64)>,
    top: Vec<(String, f64)>,
    around: Vec<(String, f64)>,
}

impl RawPage {
    fn decode(value: &ScriptValue) -> Option<Self> {
        let items = value.as_array()?;
        if items.first()?.as_int()? != 1 {
            return None;
        }
        let total = u64::try_from(items.get(1)?.as_int()?).ok()?;
        let rank = items.get(2)?.as_int()?;
        let score = text(items.get(3)?).and_then(|s| s.parse::<f64>().ok());
        let me = match (u64::try_from(rank), score) {
            (Ok(rank), Some(score)) => Some((rank, score)),
            _ => None,
        };
        Some(Self {
            total,
            me,
            top: pairs(items.get(4)?),
            around: pairs(items.get(5)?),
        })
    }
}

fn text(value: &ScriptValue) -> Option<String> {
    match value {
        ScriptValue::Text(text) => Some(text.clone()),
        ScriptValue::Int(int) => Some(int.to_string()),
        _ => None,
    }
}

fn pairs(value: &ScriptValue) -> Vec<(String, f64)> {
    value
        .as_array()
        .unwrap_or_default()
        .chunks(2)
        .filter_map(|pair| match pair {
            [member, score] => Some((text(member)?, text(score)?.parse().ok()?)),
            _ => None,
        })
        .collect()
}

/// What decides a runner's boards: profile, crews, preference.
pub async fn membership(conn: &impl ConnectionTrait, owner: &str) -> Result<Membership, Error> {
    let profile = profile::Entity::find_by_id(owner.to_owned())
        .one(conn)
        .await?;
    let crews = crew_member::Entity::find()
        .select_only()
        .column(crew_member::Column::CrewId)
        .filter(crew_member::Column::UserId.eq(owner))
        .order_by_asc(crew_member::Column::CrewId)
        .into_tuple()
        .all(conn)
        .await?;
    let opt_out = preference::Entity::find_by_id(owner.to_owned())
        .one(conn)
        .await?
        .is_some_and(|p| p.opt_out);
    Ok(Membership {
        birth_year: profile.as_ref().and_then(|p| p.birth_year),
        gender: profile.map(|p| p.gender).unwrap_or_default(),
        crews,
        opt_out,
    })
}

/// Display names of `ids` (empty when svc-run has no profile).
pub async fn display_names(
    conn: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = String>,
) -> Result<HashMap<String, String>, Error> {
    let ids: Vec<String> = ids.into_iter().collect();
    let mut names = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, String)> = profile::Entity::find()
            .select_only()
            .columns([profile::Column::UserId, profile::Column::DisplayName])
            .filter(profile::Column::UserId.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(conn)
            .await?;
        names.extend(rows);
    }
    Ok(names)
}

fn key_at(keys: &[String], index: usize) -> Result<&str, String> {
    keys.get(index)
        .map(String::as_str)
        .ok_or_else(|| format!("missing key {}", index + 1))
}

fn arg_at(args: &[String], index: usize) -> Result<&str, String> {
    args.get(index)
        .map(String::as_str)
        .ok_or_else(|| format!("missing argument {}", index + 1))
}

fn format_score(score: f64) -> String {
    format!("{score}")
}

/// KEYS[1] the period marker, KEYS[2..] boards; ARGV[1] member, ARGV[2] ttl ms (0: none),
/// ARGV[3..] the member's score on each board, empty to remove it. Nothing when the marker is
/// gone (the next reader rebuilds). Returns 1 when written.
static UPSERT: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "board_upsert",
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local ttl = tonumber(ARGV[2])
for i = 2, #KEYS do
  local score = ARGV[i + 1]
  if score == '' then
    redis.call('ZREM', KEYS[i], ARGV[1])
  else
    redis.call('ZADD', KEYS[i], score, ARGV[1])
    if ttl > 0 then redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
return 1
"#,
        |state, keys, args| {
            if !state.exists(key_at(keys, 0)?) {
                return Ok(ScriptValue::Int(0));
            }
            let member = arg_at(args, 0)?;
            let ttl: i64 = arg_at(args, 1)?.parse().map_err(|_| "bad ttl".to_owned())?;
            for (i, board) in keys.iter().enumerate().skip(1) {
                let score = arg_at(args, i + 1)?;
                if score.is_empty() {
                    state.zrem(board, member)?;
                } else {
                    let score: f64 = score.parse().map_err(|_| "bad score".to_owned())?;
                    state.zadd(board, member, score)?;
                    if ttl > 0 {
                        state.pexpire(board, ttl);
                    }
                }
            }
            Ok(ScriptValue::Int(1))
        },
    )
});

/// KEYS[1] a board under construction; ARGV score, member pairs.
static ZADD_MANY: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "board_zadd_many",
        r#"
for i = 1, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
end
return #ARGV / 2
"#,
        |state, keys, args| {
            let board = key_at(keys, 0)?;
            for pair in args.chunks(2) {
                if let [score, member] = pair {
                    let score: f64 = score.parse().map_err(|_| "bad score".to_owned())?;
                    state.zadd(board, member, score)?;
                }
            }
            Ok(ScriptValue::Int(i64::try_from(args.len() / 2).unwrap_or(0)))
        },
    )
});

/// KEYS[1] marker, KEYS[2] the period's list of boards, then (built, final) pairs; ARGV[1] ttl
/// ms (0: none), ARGV[2] the year of the age groups. Renames every built board over its final
/// name, deletes boards of the previous list that no longer exist, records the list and sets
/// the marker: one atomic step.
static SWAP: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "board_swap",
        r#"
local ttl = tonumber(ARGV[1])
local fresh = {}
for i = 3, #KEYS, 2 do fresh[KEYS[i + 1]] = true end
local previous = redis.call('GET', KEYS[2])
if previous then
  for name in string.gmatch(previous, '[^\n]+') do
    if not fresh[name] then redis.call('DEL', name) end
  end
end
local names = {}
for i = 3, #KEYS, 2 do
  redis.call('RENAME', KEYS[i], KEYS[i + 1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[i + 1], ttl) end
  table.insert(names, KEYS[i + 1])
end
redis.call('SET', KEYS[2], table.concat(names, '\n'))
redis.call('SET', KEYS[1], ARGV[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
"#,
        |state, keys, args| {
            let ttl: i64 = arg_at(args, 0)?.parse().map_err(|_| "bad ttl".to_owned())?;
            let year = arg_at(args, 1)?;
            let marker = key_at(keys, 0)?.to_owned();
            let list = key_at(keys, 1)?.to_owned();
            let pairs: Vec<(String, String)> = keys[2..]
                .chunks(2)
                .filter_map(|p| match p {
                    [built, final_key] => Some((built.clone(), final_key.clone())),
                    _ => None,
                })
                .collect();
            let fresh: HashSet<&str> = pairs.iter().map(|(_, f)| f.as_str()).collect();
            if let Some(previous) = state.get(&list)? {
                for name in String::from_utf8_lossy(&previous).split('\n') {
                    if !name.is_empty() && !fresh.contains(name) {
                        state.del(name);
                    }
                }
            }
            for (built, final_key) in &pairs {
                rename_sorted(state, built, final_key)?;
                if ttl > 0 {
                    state.pexpire(final_key, ttl);
                }
            }
            let names: Vec<&str> = pairs.iter().map(|(_, f)| f.as_str()).collect();
            state.set(&list, names.join("\n").as_bytes(), None);
            state.set(&marker, year.as_bytes(), None);
            if ttl > 0 {
                state.pexpire(&list, ttl);
                state.pexpire(&marker, ttl);
            }
            Ok(ScriptValue::Int(1))
        },
    )
});

/// RENAME for the in-memory twin (its store has no rename): move every member.
fn rename_sorted(state: &mut MemoryState, from: &str, to: &str) -> Result<(), String> {
    let members = state.zrevrange(from, 0, usize::MAX)?;
    state.del(to);
    for (member, score) in members {
        state.zadd(to, &member, score)?;
    }
    state.del(from);
    Ok(())
}

/// KEYS[1] board, KEYS[2] marker; ARGV offset, count, member, around, year. Returns
/// {ready, total, rank or -1, score or '', {top member, score…}, {around member, score…}};
/// ready is 0 when the marker is gone or was built for another year.
static READ: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "board_read",
        r#"
local built = redis.call('GET', KEYS[2])
if not built or built ~= ARGV[5] then return {0} end
local offset = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local around = tonumber(ARGV[4])
local total = redis.call('ZCARD', KEYS[1])
local top = {}
if count > 0 then
  top = redis.call('ZREVRANGE', KEYS[1], offset, offset + count - 1, 'WITHSCORES')
end
local rank = redis.call('ZREVRANK', KEYS[1], ARGV[3])
local score = ''
local near = {}
if rank then
  score = redis.call('ZSCORE', KEYS[1], ARGV[3])
  if around > 0 then
    local first = rank - around
    if first < 0 then first = 0 end
    near = redis.call('ZREVRANGE', KEYS[1], first, rank + around, 'WITHSCORES')
  end
else
  rank = -1
end
return {1, total, rank, score, top, near}
"#,
        |state, keys, args| {
            let board = key_at(keys, 0)?;
            let built = state.get(key_at(keys, 1)?)?;
            if built.as_deref() != Some(arg_at(args, 4)?.as_bytes()) {
                return Ok(ScriptValue::Array(vec![ScriptValue::Int(0)]));
            }
            let number = |i: usize| -> Result<usize, String> {
                arg_at(args, i)?
                    .parse()
                    .map_err(|_| "bad number".to_owned())
            };
            let (offset, count, around) = (number(0)?, number(1)?, number(3)?);
            let member = arg_at(args, 2)?;
            let flat = |items: Vec<(String, f64)>| {
                ScriptValue::Array(
                    items
                        .into_iter()
                        .flat_map(|(m, s)| {
                            [ScriptValue::Text(m), ScriptValue::Text(format_score(s))]
                        })
                        .collect(),
                )
            };
            let total = state.zcard(board)?;
            let top = state.zrevrange(board, offset, count)?;
            let rank = state.zrevrank(board, member)?;
            let (rank_value, score, near) = match rank {
                Some(rank) => {
                    let rank = usize::try_from(rank).unwrap_or(0);
                    let score = state
                        .zscore(board, member)?
                        .map(format_score)
                        .unwrap_or_default();
                    let near = if around > 0 {
                        let first = rank.saturating_sub(around);
                        state.zrevrange(board, first, rank + around + 1 - first)?
                    } else {
                        Vec::new()
                    };
                    (i64::try_from(rank).unwrap_or(-1), score, near)
                }
                None => (-1, String::new(), Vec::new()),
            };
            Ok(ScriptValue::Array(vec![
                ScriptValue::Int(1),
                ScriptValue::Int(i64::try_from(total).unwrap_or(0)),
                ScriptValue::Int(rank_value),
                ScriptValue::Text(score),
                flat(top),
                flat(near),
            ]))
        },
    )
});
