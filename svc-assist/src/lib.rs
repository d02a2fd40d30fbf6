//! Assistant and notifications. Not built yet: see the open issues.
