//! What a recurring job does about ticks that passed while no scheduler ran
//! (a downtime, a deploy), and the plan of one scheduler pass: which ticks
//! to enqueue and when the job is next due. Decided here, once, in Rust;
//! storages only store the plan.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::cron::CronSchedule;

/// How late a tick may start and still count as on time for
/// [`Misfire::Skip`], as Quartz's default misfire threshold.
pub const MISFIRE_GRACE: Duration = Duration::from_secs(60);

/// The most runs [`Misfire::RunEach`] may ask for.
pub const MAX_CATCH_UP: u32 = 1000;

/// What to do with ticks missed while no scheduler ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Misfire {
    /// One run for all the missed ticks, at once (Hangfire's default,
    /// "relaxed").
    #[default]
    RunOnce,
    /// No run for missed ticks: a tick runs only if it is at most
    /// [`MISFIRE_GRACE`] late (Hangfire's "ignorable").
    Skip,
    /// One run per missed tick, for the latest `max` of them (1 to
    /// [`MAX_CATCH_UP`]); older ones are dropped.
    RunEach {
        /// The most catch-up runs.
        max: u32,
    },
}

impl Misfire {
    /// [`Misfire::RunEach`] with `max` clamped to 1..=[`MAX_CATCH_UP`].
    pub fn run_each(max: u32) -> Self {
        Misfire::RunEach {
            max: max.clamp(1, MAX_CATCH_UP),
        }
    }
}

/// The stored form: `once`, `skip` or `each:N`.
impl fmt::Display for Misfire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misfire::RunOnce => f.write_str("once"),
            Misfire::Skip => f.write_str("skip"),
            Misfire::RunEach { max } => write!(f, "each:{max}"),
        }
    }
}

/// Parses the stored form ([`Display`](fmt::Display)); `each` alone is
/// `each:100`.
impl FromStr for Misfire {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "once" => Ok(Misfire::RunOnce),
            "skip" => Ok(Misfire::Skip),
            "each" => Ok(Misfire::run_each(100)),
            other => other
                .strip_prefix("each:")
                .and_then(|max| max.parse::<u32>().ok())
                .filter(|max| (1..=MAX_CATCH_UP).contains(max))
                .map(|max| Misfire::RunEach { max })
                .ok_or_else(|| {
                    format!(
                        "unknown misfire policy {other:?}: expected \"once\", \"skip\", \"each\" or \"each:N\" (N from 1 to {MAX_CATCH_UP})"
                    )
                }),
        }
    }
}

/// One pass of the scheduler over one due recurring job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TickPlan {
    /// The ticks to enqueue a run for, oldest first (may be empty).
    pub run: Vec<DateTime<Utc>>,
    /// How many due ticks get no run of their own.
    pub missed: u64,
    /// The next tick after `now`; `None` when none ever comes.
    pub next_run_at: Option<DateTime<Utc>>,
}

/// The most ticks walked one by one (a few milliseconds); past that, the
/// walk jumps to the last hour before `now` (an every-second job down for
/// days), and forgets the ticks kept so far.
const MAX_WALK: u64 = 20_000;

/// Plans a pass at `now` (the storage's clock) over a job due at `due`
/// (its stored next run, not after `now`).
///
/// `previous_running` is whether the job's previous run has not finished
/// and the job skips ticks while it runs: then no tick runs.
pub fn plan_ticks(
    schedule: &CronSchedule,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
    misfire: Misfire,
    previous_running: bool,
) -> TickPlan {
    let keep = match misfire {
        Misfire::RunEach { max } => max.clamp(1, MAX_CATCH_UP) as usize,
        Misfire::RunOnce | Misfire::Skip => 1,
    };
    let mut due_ticks = std::collections::VecDeque::with_capacity(keep);
    let mut count: u64 = 0;
    let mut tick = Some(due);
    while let Some(at) = tick.filter(|at| *at <= now) {
        count += 1;
        if due_ticks.len() == keep {
            due_ticks.pop_front();
        }
        due_ticks.push_back(at);
        tick = if count == MAX_WALK {
            // The ticks jumped over are not counted one by one: `missed`
            // is then a lower bound. Runs are for the last hour only.
            let resume = (now - chrono::Duration::hours(1)).max(at);
            if resume > at {
                due_ticks.clear();
            }
            schedule.next_after(resume)
        } else {
            schedule.next_after(at)
        };
    }
    let mut run: Vec<_> = due_ticks.into_iter().collect();
    if previous_running {
        run.clear();
    } else if misfire == Misfire::Skip {
        run.retain(|at| {
            now.signed_duration_since(*at).to_std().unwrap_or_default() <= MISFIRE_GRACE
        });
    }
    TickPlan {
        missed: count - run.len() as u64,
        run,
        next_run_at: tick,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn every_minute() -> CronSchedule {
        CronSchedule::parse("* * * * *", "UTC").unwrap()
    }

    #[test]
    fn an_on_time_tick_runs_once_under_every_policy() {
        for misfire in [Misfire::RunOnce, Misfire::Skip, Misfire::run_each(10)] {
            let plan = plan_ticks(
                &every_minute(),
                utc("2026-01-01T10:00:00Z"),
                utc("2026-01-01T10:00:00.040Z"),
                misfire,
                false,
            );
            assert_eq!(plan.run, [utc("2026-01-01T10:00:00Z")], "{misfire}");
            assert_eq!(plan.missed, 0);
            assert_eq!(plan.next_run_at, Some(utc("2026-01-01T10:01:00Z")));
        }
    }

    #[test]
    fn after_a_downtime_each_policy_does_its_own_thing() {
        let due = utc("2026-01-01T10:00:00Z");
        let now = utc("2026-01-01T10:05:30Z"); // ticks 10:00 ..= 10:05 passed
        let once = plan_ticks(&every_minute(), due, now, Misfire::RunOnce, false);
        assert_eq!(once.run, [utc("2026-01-01T10:05:00Z")]);
        assert_eq!(once.missed, 5);
        let skip = plan_ticks(&every_minute(), due, now, Misfire::Skip, false);
        assert_eq!(
            skip.run,
            [utc("2026-01-01T10:05:00Z")],
            "30 s late is on time"
        );
        let hourly = CronSchedule::parse("0 * * * *", "UTC").unwrap();
        let now = utc("2026-01-01T11:01:15Z"); // the last tick, 11:00, is 75 s late
        let skip = plan_ticks(&hourly, due, now, Misfire::Skip, false);
        assert!(skip.run.is_empty(), "75 s late is missed: {skip:?}");
        assert_eq!(skip.missed, 2);
        assert_eq!(skip.next_run_at, Some(utc("2026-01-01T12:00:00Z")));
        let now = utc("2026-01-01T10:05:30Z");
        let each = plan_ticks(&every_minute(), due, now, Misfire::run_each(4), false);
        assert_eq!(
            each.run,
            ["10:02", "10:03", "10:04", "10:05"].map(|t| utc(&format!("2026-01-01T{t}:00Z")))
        );
        assert_eq!(each.missed, 2);
        for plan in [once, each] {
            assert_eq!(plan.next_run_at, Some(utc("2026-01-01T10:06:00Z")));
        }
    }

    #[test]
    fn a_running_previous_run_skips_the_tick() {
        let plan = plan_ticks(
            &every_minute(),
            utc("2026-01-01T10:00:00Z"),
            utc("2026-01-01T10:00:01Z"),
            Misfire::RunOnce,
            true,
        );
        assert!(plan.run.is_empty());
        assert_eq!(plan.missed, 1);
        assert_eq!(plan.next_run_at, Some(utc("2026-01-01T10:01:00Z")));
    }

    #[test]
    fn a_long_downtime_of_an_every_second_job_is_bounded() {
        let schedule = CronSchedule::parse("* * * * * *", "UTC").unwrap();
        let started = std::time::Instant::now();
        let plan = plan_ticks(
            &schedule,
            utc("2025-01-01T00:00:00Z"),
            utc("2026-01-01T00:00:00Z"),
            Misfire::run_each(3),
            false,
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(plan.run.len(), 3);
        assert_eq!(plan.run[2], utc("2026-01-01T00:00:00Z"));
        assert_eq!(plan.next_run_at, Some(utc("2026-01-01T00:00:01Z")));
        // A sparser schedule keeps no tick from before the jump.
        let every_five = CronSchedule::parse("*/5 * * * * *", "UTC").unwrap();
        let now = utc("2026-01-07T00:00:00Z");
        let plan = plan_ticks(
            &every_five,
            now - chrono::Duration::days(6),
            now,
            Misfire::run_each(1000),
            false,
        );
        assert_eq!(plan.run.len(), 720, "the last hour's ticks");
        assert!(plan.run[0] > now - chrono::Duration::hours(1));
        assert_eq!(plan.next_run_at, Some(utc("2026-01-07T00:00:05Z")));
    }

    #[test]
    fn the_jump_of_a_long_walk_never_goes_back() {
        // Just over MAX_WALK ticks due: the walk reaches the last hour
        // before it would jump; no tick may come twice.
        let schedule = CronSchedule::parse("* * * * * *", "UTC").unwrap();
        let now = utc("2026-01-02T12:00:00Z");
        let due = now - chrono::Duration::seconds(MAX_WALK as i64 + 10);
        let plan = plan_ticks(&schedule, due, now, Misfire::run_each(MAX_CATCH_UP), false);
        assert_eq!(plan.run.len(), MAX_CATCH_UP as usize);
        assert!(
            plan.run.windows(2).all(|pair| pair[0] < pair[1]),
            "ticks in order, none twice"
        );
        assert_eq!(*plan.run.last().unwrap(), now);
        assert_eq!(plan.missed, MAX_WALK + 11 - u64::from(MAX_CATCH_UP));
    }

    #[test]
    fn catching_up_across_daylight_saving_runs_each_day_once() {
        // Europe/Berlin, 2026: 02:30 is skipped on 29 March and comes twice
        // on 25 October. A daily 02:30 job caught up over each change has
        // one run a day: at 03:00 on the day of the jump, and once on the
        // day of the repeated hour.
        let daily = CronSchedule::parse("0 30 2 * * *", "Europe/Berlin").unwrap();
        let each = Misfire::run_each(10);
        let spring = plan_ticks(
            &daily,
            utc("2026-03-28T01:30:00Z"),
            utc("2026-03-30T06:00:00Z"),
            each,
            false,
        );
        assert_eq!(
            spring.run,
            [
                "2026-03-28T01:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:30:00Z"
            ]
            .map(utc)
        );
        let autumn = plan_ticks(
            &daily,
            utc("2026-10-24T00:30:00Z"),
            utc("2026-10-26T06:00:00Z"),
            each,
            false,
        );
        assert_eq!(
            autumn.run,
            [
                "2026-10-24T00:30:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-26T01:30:00Z"
            ]
            .map(utc)
        );
        assert_eq!(autumn.next_run_at, Some(utc("2026-10-27T01:30:00Z")));
    }

    #[test]
    fn stored_form_round_trips() {
        for misfire in [Misfire::RunOnce, Misfire::Skip, Misfire::run_each(7)] {
            assert_eq!(misfire.to_string().parse::<Misfire>(), Ok(misfire));
        }
        assert_eq!("each".parse::<Misfire>(), Ok(Misfire::RunEach { max: 100 }));
        assert!("each:0".parse::<Misfire>().is_err());
        assert!(
            "sometimes"
                .parse::<Misfire>()
                .unwrap_err()
                .contains("expected")
        );
    }
}
