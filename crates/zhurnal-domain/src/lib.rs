//! Zhurnal's pure domain: the rules of the Russian school journal (классный журнал) with no I/O.
//!
//! Nothing here talks to a database, the network or the clock: time comes in as arguments, so
//! every rule is tested in microseconds and the same rule runs in the web app, the CLI and jobs.
//! CI proves this crate depends on no `sqlx`, `axum` or `tokio` (`cargo xtask ci`).

pub mod announce;
pub mod attendance;
pub mod grants;
pub mod ids;
pub mod journal;
pub mod mark;
pub mod period;
pub mod policy;
pub mod role;
pub mod rollover;
pub mod snils;

pub use announce::{AnnouncementError, AnnouncementRules, AnnouncementStatus};
pub use attendance::AttendanceKind;
pub use ids::*;
pub use mark::{
    AverageExplanation, Grading, MarkError, MarkValue, PeriodMarkValue, RoundingRule, WeightedMark,
    weighted_average,
};
pub use period::{Period, PeriodError, PeriodScheme};
pub use policy::{Action, Actor, Denied, Resource, authorize};
pub use role::{Role, RoleScope};
pub use snils::{Snils, SnilsError};
