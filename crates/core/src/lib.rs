//! Platekeeper's domain and policy: plates, patterns, reads, places and
//! purposes, as values and pure functions.
//!
//! Architecture invariant: this crate does no I/O. It never reads a clock
//! either — every rule that depends on "now" takes the time as an argument,
//! so tests (and auditors) can replay a rule at any moment.

pub mod account;
pub mod audit_report;
pub mod checkpoint;
pub mod geo;
pub mod hotlist;
pub mod legal_hold;
pub mod password;
pub mod pattern;
pub mod plate;
pub mod policy;
pub mod policy_change;
pub mod purpose;
pub mod read;
pub mod region;
pub mod retention;
pub mod role;
pub mod sharing;

pub use geo::{Area, GeoError, GeoPoint};
pub use pattern::{PatternError, PlatePattern};
pub use plate::{Plate, PlateError};
pub use purpose::{Purpose, PurposeError, PurposePolicy};
pub use read::{ImageKind, NewRead, RawRead, ReadError, ReadId};
pub use region::Region;
pub use role::{Right, Role};
