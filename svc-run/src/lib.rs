//! Run records, file import, stats, rankings, achievements and recaps. Not built yet: see the open issues.

pub mod domain;
