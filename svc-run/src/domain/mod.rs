//! Run analysis as pure functions: parsing run files, distances, times, elevation, splits,
//! best efforts, streams and manual-entry rules. No I/O here.

mod analysis;
mod best_efforts;
mod manual;
pub mod parse;
mod series;
mod streams;
mod track;

pub use analysis::{
    Analysis, AnalysisConfig, MILE_M, MovingSpeeds, Source, Split, Summary, analyse,
    analyse_activity, hysteresis,
};
pub use best_efforts::{
    BestEffort, BestEffortConfig, EFFORT_DISTANCES, EffortDistance, best_efforts,
    world_record_speed_mps,
};
pub use manual::{ManualRun, ManualRunInput, Violation, validate_manual_run};
pub use parse::{Limits, ParseError, detect_format, parse};
pub use series::haversine_m;
pub use streams::RunStreams;
pub use track::{Activity, DeviceTotals, FileFormat, Lap, LatLng, Session, Sport, TrackPoint};
