//! Accounts, sign-in, tokens and profile. Not built yet: see the open issues.
