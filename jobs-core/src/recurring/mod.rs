//! Recurring jobs: a job enqueued on every tick of a cron schedule.
//!
//! [`CronSchedule`] parses the cron expression and time zone and says when
//! the next tick is (daylight saving included); [`plan_ticks`] decides
//! what one pass of the scheduler does about the ticks that came due
//! ([`Misfire`]); [`RecurringRegistration`] is what `#[recurring]`
//! submits, so that every server of the binary stores the schedule at
//! start. The storage calls are in
//! [`MaintenanceStorage`](crate::MaintenanceStorage).

mod cron;
mod misfire;
mod registration;
mod runs;

pub use cron::{CronSchedule, DEFAULT_TIME_ZONE, ScheduleError};
pub use misfire::{MAX_CATCH_UP, MISFIRE_GRACE, Misfire, TickPlan, plan_ticks};
pub use registration::RecurringRegistration;
pub use runs::{tick_job, triggered_job};
