//! The words for the wire's job states and types, as people read and type
//! them (`scorekeeper jobs`, the console's pages and filters): one spelling
//! for every client of the contract.

use crate::v1::{JobState, JobType};

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

const TYPES: [(JobType, &str); 2] = [(JobType::ReindexConversations, "reindex"), (JobType::Audit, "audit")];

/// The word for a job type on the wire (`unknown` for a value this version
/// does not know).
pub fn job_type(job_type: i32) -> &'static str {
    TYPES.iter().find(|(t, _)| *t as i32 == job_type).map_or("unknown", |(_, word)| word)
}

/// The type a word names; `None` for any other word.
pub fn job_type_of(word: &str) -> Option<JobType> {
    TYPES.iter().find(|(_, w)| *w == word).map(|(job_type, _)| *job_type)
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

    #[test]
    fn every_type_has_one_word_both_ways() {
        for (wire, word) in TYPES {
            assert_eq!(job_type(wire as i32), word);
            assert_eq!(job_type_of(word), Some(wire));
        }
        assert_eq!(job_type(JobType::Unspecified as i32), "unknown");
        assert_eq!(job_type_of("reindex_conversations"), None);
    }
}
