//! Race catalog and flash-crowd registration. Not built yet: see the open issues.
