//! `RecapReady` notices: last week's recap from Monday 08:00 in the runner's time zone, the
//! year's from December 15 08:00, for runners who ran in the period, published once per runner
//! and period across replicas and restarts.
//!
//! Every round (`RUNMESH_RUN_RECAP_NOTICE_INTERVAL`) works out, for each time zone the profile
//! projection holds (and the default one of runners without a usable zone), which week and which
//! year are due at this instant, and reads the runners of that zone with a running activity in
//! the period (the same local-midnight bounds as `GetRecap`) and no notice yet for it or a later
//! period of the kind, at most `RUNMESH_RUN_RECAP_NOTICE_BATCH` per round. Each one gets the
//! recap's totals ([`Recaps::period_totals`], `GetRecap`'s computation) and, in one transaction, a
//! `recap_notices` row (primary key owner, period kind, first day) and the event in the outbox:
//! with any number of replicas the insert lets exactly one through.
//!
//! Only the most recent due period is ever sent: a week is due from its next Monday 08:00 until
//! the Sunday after (then the following week replaces it), a year from December 15 08:00 to
//! December 31, so a runner who joins, or a service started, late gets no backlog. A notice is
//! keyed by the period's first day, which does not depend on the time zone (ISO weeks start on
//! Mondays, years on January 1): a runner who moves to another zone is not told twice about a
//! period, nor about one older than a period they were already told about.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use runmesh_platform::db::begin_write;
use runmesh_platform::events::EventBus;
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use tokio_util::sync::CancellationToken;

use crate::config::RunConfig;
use crate::domain::periods::PeriodKind;
use crate::domain::recap::{RecapPeriod, Totals};
use crate::error::Error;
use crate::events;
use crate::recap::Recaps;
use crate::runs::local_midnight;
use crate::store::{profile, recap_notice, run};
use crate::wire;

/// The local hour from which a due period's notice goes out.
pub const NOTICE_HOUR: u32 = 8;
/// The day of December from which the year's notice goes out.
pub const YEAR_NOTICE_DAY: u32 = 15;
/// The pause after a round that filled its batch (more runners are probably waiting).
const FULL_ROUND_PAUSE: Duration = Duration::from_secs(1);

/// The kinds of period notified.
const KINDS: [PeriodKind; 2] = [PeriodKind::Week, PeriodKind::Year];

/// The period of `kind` whose notice is due at `now` in `tz`, if any: last ISO week from Monday
/// 08:00 local time (until the next Monday 08:00), the current year from December 15 08:00
/// until the year ends.
pub fn due_period(kind: PeriodKind, tz: Tz, now: DateTime<Utc>) -> Option<RecapPeriod> {
    let local = now.with_timezone(&tz).naive_local();
    let today = local.date();
    match kind {
        PeriodKind::Week => {
            let monday =
                today - chrono::Duration::days(i64::from(today.weekday().num_days_from_monday()));
            if local < at_notice_hour(monday)? {
                return None;
            }
            RecapPeriod::of(PeriodKind::Week, monday - chrono::Duration::days(1))
        }
        PeriodKind::Year => {
            let from = NaiveDate::from_ymd_opt(today.year(), 12, YEAR_NOTICE_DAY)?;
            if local < at_notice_hour(from)? {
                return None;
            }
            RecapPeriod::of(PeriodKind::Year, today)
        }
        PeriodKind::Month | PeriodKind::AllTime => None,
    }
}

fn at_notice_hour(day: NaiveDate) -> Option<NaiveDateTime> {
    day.and_hms_opt(NOTICE_HOUR, 0, 0)
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Runners looked at (at most the batch).
    pub considered: usize,
    /// `RecapReady` events this round wrote.
    pub published: usize,
    /// Runners whose notice failed (logged; tried again next round).
    pub failed: usize,
}

/// Time zones whose due period has the same bounds, read with one query.
struct Group {
    period: RecapPeriod,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// Profile `time_zone` values in the group.
    names: Vec<String>,
    /// Whether runners without a profile (the default zone) are in it.
    unprofiled: bool,
}

pub struct RecapNotices {
    db: DatabaseConnection,
    bus: Option<EventBus>,
    recaps: Arc<Recaps>,
    interval: Duration,
    batch: u64,
}

impl RecapNotices {
    pub fn new(
        db: DatabaseConnection,
        bus: Option<EventBus>,
        recaps: Arc<Recaps>,
        config: &RunConfig,
    ) -> Self {
        Self {
            db,
            bus,
            recaps,
            interval: config.recap_notice_interval,
            batch: config.recap_notice_batch.max(1),
        }
    }

    /// Publishes due notices every interval (a second after a full round) until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = match self.publish_due(Utc::now()).await {
                Ok(round) if round.considered as u64 >= self.batch => FULL_ROUND_PAUSE,
                Ok(_) => self.interval,
                Err(error) => {
                    tracing::warn!(%error, "publishing recap notices failed; retrying next round");
                    self.interval
                }
            };
        }
    }

    /// One round at `now`: every runner due a notice (at most the batch) gets it, unless another
    /// replica was first.
    pub async fn publish_due(&self, now: DateTime<Utc>) -> Result<Round, Error> {
        let groups = self.groups(now).await?;
        let mut round = Round::default();
        let mut remaining = self.batch;
        for group in groups.values() {
            if remaining == 0 {
                break;
            }
            let owners = self.candidates(group, remaining).await?;
            remaining = remaining.saturating_sub(owners.len() as u64);
            round.considered += owners.len();
            let zones = self.zones_of(&owners).await?;
            for owner in owners {
                let tz = self
                    .recaps
                    .time_zone_of(zones.get(&owner).map(String::as_str));
                match self.notify(&owner, group.period.kind, tz, now).await {
                    Ok(true) => round.published += 1,
                    Ok(false) => {}
                    Err(error) => {
                        round.failed += 1;
                        tracing::warn!(
                            %error,
                            owner_id = %owner,
                            period = group.period.kind.as_str(),
                            "a recap notice failed; retrying next round"
                        );
                    }
                }
            }
        }
        if round.published > 0 {
            if let Some(bus) = &self.bus {
                bus.wake_relays();
            }
            tracing::info!(
                published = round.published,
                considered = round.considered,
                "recap notices published"
            );
        }
        Ok(round)
    }

    /// The due periods at `now` of every time zone in use, grouped by identical bounds.
    async fn groups(
        &self,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<(&'static str, NaiveDate, DateTime<Utc>, DateTime<Utc>), Group>, Error>
    {
        let stored: Vec<String> = profile::Entity::find()
            .select_only()
            .column(profile::Column::TimeZone)
            .distinct()
            .into_tuple()
            .all(&self.db)
            .await?;
        let default = self.recaps.time_zone_of(None);
        let zones = stored
            .into_iter()
            .map(|name| (self.recaps.time_zone_of(Some(&name)), Some(name)))
            .chain(std::iter::once((default, None)));
        let mut groups = BTreeMap::new();
        for (tz, name) in zones {
            for kind in KINDS {
                let Some(period) = due_period(kind, tz, now) else {
                    continue;
                };
                let from = local_midnight(tz, period.from);
                let to = local_midnight(tz, period.to);
                let group = groups
                    .entry((kind.as_str(), period.from, from, to))
                    .or_insert_with(|| Group {
                        period,
                        from,
                        to,
                        names: Vec::new(),
                        unprofiled: false,
                    });
                match &name {
                    Some(name) => group.names.push(name.clone()),
                    None => group.unprofiled = true,
                }
            }
        }
        Ok(groups)
    }

    /// Runners of `group`'s zones who ran in its period and were not told about it (or a later
    /// period of its kind) yet, at most `limit`.
    async fn candidates(&self, group: &Group, limit: u64) -> Result<Vec<String>, Error> {
        let mut zones = Condition::any();
        if !group.names.is_empty() {
            zones = zones.add(
                run::Column::OwnerId.in_subquery(
                    Query::select()
                        .column(profile::Column::UserId)
                        .from(profile::Entity)
                        .and_where(profile::Column::TimeZone.is_in(group.names.iter().cloned()))
                        .to_owned(),
                ),
            );
        }
        if group.unprofiled {
            zones = zones.add(
                run::Column::OwnerId.not_in_subquery(
                    Query::select()
                        .column(profile::Column::UserId)
                        .from(profile::Entity)
                        .to_owned(),
                ),
            );
        }
        let told = Query::select()
            .column(recap_notice::Column::OwnerId)
            .from(recap_notice::Entity)
            .and_where(recap_notice::Column::Period.eq(group.period.kind.as_str()))
            .and_where(recap_notice::Column::StartDate.gte(day_key(group.period.from)))
            .to_owned();
        let owners: Vec<String> = run::Entity::find()
            .select_only()
            .column(run::Column::OwnerId)
            .distinct()
            .filter(run::Column::Sport.is_in(wire::RUNNING_SPORTS))
            .filter(run::Column::StartTime.gte(group.from))
            .filter(run::Column::StartTime.lt(group.to))
            .filter(zones)
            .filter(run::Column::OwnerId.not_in_subquery(told))
            .order_by_asc(run::Column::OwnerId)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(owners)
    }

    /// The stored time zones of `owners` who have a profile.
    async fn zones_of(&self, owners: &[String]) -> Result<BTreeMap<String, String>, Error> {
        if owners.is_empty() {
            return Ok(BTreeMap::new());
        }
        let rows: Vec<(String, String)> = profile::Entity::find()
            .select_only()
            .columns([profile::Column::UserId, profile::Column::TimeZone])
            .filter(profile::Column::UserId.is_in(owners.iter().cloned()))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// Publishes `owner`'s notice of the `kind` period due at `now` in `tz`; `false` when there is
    /// none to send (not due, no runs) or it (or a later one) was already sent.
    async fn notify(
        &self,
        owner: &str,
        kind: PeriodKind,
        tz: Tz,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        // The zone is read again per runner: it may have changed since the group was formed.
        let Some(period) = due_period(kind, tz, now) else {
            return Ok(false);
        };
        let totals = self.recaps.period_totals(owner, &period, tz).await?;
        if totals.runs == 0 {
            return Ok(false);
        }
        self.claim(owner, &period, tz, &totals).await
    }

    /// The notice row and the event in one transaction; `false` when the row (or a later
    /// period's) is there already.
    async fn claim(
        &self,
        owner: &str,
        period: &RecapPeriod,
        tz: Tz,
        totals: &Totals,
    ) -> Result<bool, Error> {
        let kind = period.kind.as_str();
        let start = day_key(period.from);
        let txn = begin_write(&self.db).await?;
        let later = recap_notice::Entity::find()
            .filter(recap_notice::Column::OwnerId.eq(owner))
            .filter(recap_notice::Column::Period.eq(kind))
            .filter(recap_notice::Column::StartDate.gt(start.as_str()))
            .count(&txn)
            .await?;
        if later > 0 {
            return Ok(false);
        }
        let inserted = recap_notice::Entity::insert(recap_notice::ActiveModel {
            owner_id: Set(owner.to_owned()),
            period: Set(kind.to_owned()),
            start_date: Set(start),
            time_zone: Set(tz.name().to_owned()),
            sent_at: Set(wire::now()),
        })
        .on_conflict(
            OnConflict::columns([
                recap_notice::Column::OwnerId,
                recap_notice::Column::Period,
                recap_notice::Column::StartDate,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if inserted == 0 {
            return Ok(false);
        }
        let event = wire::recap::recap_ready(owner, period, tz, totals);
        events::enqueue(&txn, owner, &event).await?;
        txn.commit().await?;
        tracing::debug!(owner_id = %owner, period = kind, date = %event.date, "recap ready");
        Ok(true)
    }
}

fn day_key(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::TimeZone as _;

    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn last_week_is_due_from_monday_eight_local() {
        let seoul = chrono_tz::Asia::Seoul;
        // Monday 2026-12-14 07:59 and 08:00 in Seoul (UTC+9).
        assert_eq!(
            due_period(PeriodKind::Week, seoul, utc(2026, 12, 13, 22, 59)),
            None
        );
        let due = due_period(PeriodKind::Week, seoul, utc(2026, 12, 13, 23, 0)).unwrap();
        assert_eq!((due.from, due.to), (day(2026, 12, 7), day(2026, 12, 14)));
        // Still that week on Sunday night, the next one from the next Monday 08:00.
        let due = due_period(PeriodKind::Week, seoul, utc(2026, 12, 20, 14, 0)).unwrap();
        assert_eq!(due.from, day(2026, 12, 7));
        assert_eq!(
            due_period(PeriodKind::Week, seoul, utc(2026, 12, 20, 23, 0))
                .unwrap()
                .from,
            day(2026, 12, 14)
        );
        // The same instant is still Sunday in New York: the week before.
        let ny = chrono_tz::America::New_York;
        assert_eq!(
            due_period(PeriodKind::Week, ny, utc(2026, 12, 13, 23, 0))
                .unwrap()
                .from,
            day(2026, 11, 30)
        );
        // Across New Year: the ISO week of Monday 2026-12-28.
        let due = due_period(PeriodKind::Week, seoul, utc(2027, 1, 3, 23, 0)).unwrap();
        assert_eq!((due.from, due.to), (day(2026, 12, 28), day(2027, 1, 4)));
    }

    #[test]
    fn the_year_is_due_from_december_fifteen_eight_local_to_its_end() {
        let seoul = chrono_tz::Asia::Seoul;
        assert_eq!(
            due_period(PeriodKind::Year, seoul, utc(2026, 12, 14, 22, 59)),
            None
        );
        let due = due_period(PeriodKind::Year, seoul, utc(2026, 12, 14, 23, 0)).unwrap();
        assert_eq!((due.from, due.to), (day(2026, 1, 1), day(2027, 1, 1)));
        assert!(due_period(PeriodKind::Year, seoul, utc(2026, 12, 31, 14, 59)).is_some());
        assert_eq!(
            due_period(PeriodKind::Year, seoul, utc(2026, 12, 31, 15, 0)),
            None
        );
        assert_eq!(
            due_period(PeriodKind::Year, seoul, utc(2026, 6, 1, 0, 0)),
            None
        );
        assert_eq!(
            due_period(PeriodKind::Month, seoul, utc(2026, 12, 20, 0, 0)),
            None
        );
    }
}
