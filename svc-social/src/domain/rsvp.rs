//! The RSVP rule: never more GOING than capacity, the waitlist in arrival order, one answer per
//! runner. The store applies it under the meetup's row lock.

/// A runner's answer as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RsvpStatus {
    Going,
    Waitlisted,
    NotGoing,
}

impl RsvpStatus {
    pub const fn code(self) -> &'static str {
        match self {
            Self::Going => "going",
            Self::Waitlisted => "waitlisted",
            Self::NotGoing => "not_going",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "going" => Some(Self::Going),
            "waitlisted" => Some(Self::Waitlisted),
            "not_going" => Some(Self::NotGoing),
            _ => None,
        }
    }
}

/// What one answer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RsvpOutcome {
    /// The runner's status afterwards.
    pub status: RsvpStatus,
    /// A place was freed: the first on the waitlist is promoted.
    pub frees_place: bool,
    /// Nothing changes (the same answer again).
    pub unchanged: bool,
}

/// The outcome of a runner with `current` answering `going` when `going_count` of `capacity`
/// places are taken. A waitlisted runner answering going again keeps their place in line.
pub fn decide_rsvp(
    current: Option<RsvpStatus>,
    going: bool,
    going_count: u32,
    capacity: u32,
) -> RsvpOutcome {
    let status = match (current, going) {
        (Some(RsvpStatus::Going), true) => RsvpStatus::Going,
        (Some(RsvpStatus::Waitlisted), true) => RsvpStatus::Waitlisted,
        (_, true) if going_count < capacity => RsvpStatus::Going,
        (_, true) => RsvpStatus::Waitlisted,
        (_, false) => RsvpStatus::NotGoing,
    };
    RsvpOutcome {
        status,
        frees_place: current == Some(RsvpStatus::Going) && status != RsvpStatus::Going,
        unchanged: current == Some(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn going_until_full_then_waitlisted() {
        assert_eq!(decide_rsvp(None, true, 39, 40).status, RsvpStatus::Going);
        assert_eq!(
            decide_rsvp(None, true, 40, 40).status,
            RsvpStatus::Waitlisted
        );
        assert_eq!(
            decide_rsvp(Some(RsvpStatus::NotGoing), true, 40, 40).status,
            RsvpStatus::Waitlisted
        );
    }

    #[test]
    fn dropping_out_frees_a_place_once() {
        let out = decide_rsvp(Some(RsvpStatus::Going), false, 40, 40);
        assert_eq!(out.status, RsvpStatus::NotGoing);
        assert!(out.frees_place);
        let again = decide_rsvp(Some(RsvpStatus::NotGoing), false, 39, 40);
        assert!(again.unchanged && !again.frees_place);
        let waiting = decide_rsvp(Some(RsvpStatus::Waitlisted), false, 40, 40);
        assert!(!waiting.frees_place);
    }

    #[test]
    fn repeating_an_answer_changes_nothing() {
        assert!(decide_rsvp(Some(RsvpStatus::Going), true, 40, 40).unchanged);
        let waiting = decide_rsvp(Some(RsvpStatus::Waitlisted), true, 39, 40);
        assert!(waiting.unchanged);
        assert_eq!(waiting.status, RsvpStatus::Waitlisted);
    }
}
