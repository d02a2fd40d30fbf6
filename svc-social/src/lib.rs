//! Crews, boards, comments and meetups. Not built yet: see the open issues.
