//! The words for the wire's job states, as people read and type them
//! (`scorekeeper jobs`, the console's pages and filters): one spelling for
//! every client of the contract.

use crate::v1::JobState;

const STATES: [(JobState, &str); 5] = [
    (JobState::Queued, "queued"),
    (JobState::Running, "running"),
    (JobState::Succeeded, "succeeded"),
    (JobState::Failed, "failed"),
    (JobState::Cancelled, "cancelled"),
];

/// The word for a job state on the wire (`unknown` for a value this
/// version does not know).
pub fn job_state(state: i32) -> &'static str {
    STATES.iter().find(|(s, _)| *s as i32 == state).map_or("unknown", |(_, word)| word)
}

/// The state a word names; `None` for any other word.
pub fn job_state_of(word: &str) -> Option<JobState> {
    STATES.iter().find(|(_, w)| *w == word).map(|(state, _)| *state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_one_word_both_ways() {
        for (state, word) in STATES {
            assert_eq!(job_state(state as i32), word);
            assert_eq!(job_state_of(word), Some(state));
        }
        assert_eq!(job_state(JobState::Unspecified as i32), "unknown");
        assert_eq!(job_state(99), "unknown");
        assert_eq!(job_state_of("Queued"), None);
    }
}
