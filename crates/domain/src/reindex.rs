//! What a reindex job covers, and which activities it runs. Pure: the job
//! engine stores a [`ReindexSpec`] as the job's payload, the workflow reads it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ConversationId, CustomerId};
use crate::scoring::TemplateType;

/// Which timestamp a reindex window applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeBase {
    /// Conversations by start time; process scorecards by creation time.
    ConversationStart,
    /// Every mirrored row by its last update, so that a lookback catches
    /// every row changed in the window, whatever changed it.
    UpdatedAt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    /// Inclusive.
    pub start: DateTime<Utc>,
    /// Exclusive.
    pub end: DateTime<Utc>,
    pub base: TimeBase,
}

/// The rows a reindex covers: a customer or all, optionally a window, or
/// explicit conversations (and their scorecards).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReindexScope {
    /// `None`: every customer (admin only).
    pub customer_id: Option<CustomerId>,
    pub window: Option<TimeWindow>,
    /// When non-empty, only these conversations; process scorecards linked
    /// to them for the process activity.
    pub conversation_ids: Vec<ConversationId>,
}

impl ReindexScope {
    /// The window applies to the last update of every row (a lookback), not
    /// to the conversation start: then each table is read by its own
    /// `updated_at`, and every changed row is caught whatever changed it.
    pub fn by_update(&self) -> bool {
        self.window.is_some_and(|w| w.base == TimeBase::UpdatedAt)
    }
}

/// The payload of a `JOB_TYPE_REINDEX_CONVERSATIONS` job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReindexSpec {
    pub scope: ReindexScope,
    /// As given by the client: empty means conversation only (old clients).
    pub scorecard_types: Vec<TemplateType>,
    /// Overrides of the batch-size settings.
    pub conversations_batch_size: Option<u32>,
    pub process_scorecards_batch_size: Option<u32>,
}

/// The rows of one partition of a reindex activity: keys (ids) in
/// `(after, until]`, `until` `None` for no upper bound. Ids are positive,
/// so `after: 0` starts at the first row. The first partition of a split
/// starts at 0 and the last has no bound, so rows inserted after the split
/// are covered too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    pub after: i64,
    pub until: Option<i64>,
}

impl KeyRange {
    /// Every key.
    pub const ALL: KeyRange = KeyRange { after: 0, until: None };

    /// Splits the keys `min..=max` into at most `parts` ranges of about as
    /// many keys each (fewer when there are fewer keys), widened so that
    /// together they cover every key: the first starts at 0, the last has
    /// no bound. Equal widths of key space, not of rows: ids from one
    /// sequence are spread about evenly over a scope, and finding exact
    /// row quantiles would cost a scan of the scope's keys.
    pub fn split(min: i64, max: i64, parts: usize) -> Vec<KeyRange> {
        let span = (i128::from(max) - i128::from(min) + 1).max(1);
        let parts = i128::try_from(parts.max(1)).unwrap_or(i128::MAX).min(span);
        let bound = |i: i128| i64::try_from(i128::from(min) - 1 + span * i / parts).unwrap_or(i64::MAX);
        (1..=parts)
            .map(|i| KeyRange {
                after: if i == 1 { 0 } else { bound(i - 1) },
                until: (i < parts).then(|| bound(i)),
            })
            .collect()
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: i64) -> bool {
        key > self.after && self.until.is_none_or(|until| key <= until)
    }
}

/// One activity of the reindex workflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReindexActivity {
    /// Conversations with their conversation scorecards and scores.
    Conversations,
    /// Process scorecards and their scores.
    ProcessScorecards,
}

impl ReindexActivity {
    /// The name progress is recorded under.
    pub fn name(self) -> &'static str {
        match self {
            ReindexActivity::Conversations => "reindex_conversations",
            ReindexActivity::ProcessScorecards => "reindex_process_scorecards",
        }
    }

    /// The activity recorded under `name`.
    pub fn named(name: &str) -> Option<ReindexActivity> {
        [ReindexActivity::Conversations, ReindexActivity::ProcessScorecards]
            .into_iter()
            .find(|a| a.name() == name)
    }

    /// The kind of scorecard the activity copies.
    pub fn template_type(self) -> TemplateType {
        match self {
            ReindexActivity::Conversations => TemplateType::Conversation,
            ReindexActivity::ProcessScorecards => TemplateType::Process,
        }
    }

    /// The activities a job asking for `types` runs, in order: empty or
    /// CONVERSATION present runs the conversation activity; PROCESS present
    /// runs the process activity; both run conversation first, then process.
    pub fn for_scorecard_types(types: &[TemplateType]) -> Vec<ReindexActivity> {
        let mut activities = Vec::with_capacity(2);
        if types.is_empty() || types.contains(&TemplateType::Conversation) {
            activities.push(ReindexActivity::Conversations);
        }
        if types.contains(&TemplateType::Process) {
            activities.push(ReindexActivity::ProcessScorecards);
        }
        activities
    }
}

impl ReindexSpec {
    /// The activities this job runs, in order (see
    /// [`ReindexActivity::for_scorecard_types`]).
    pub fn activities(&self) -> Vec<ReindexActivity> {
        ReindexActivity::for_scorecard_types(&self.scorecard_types)
    }
}

/// `REINDEX_MODE` of the scheduled reindex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReindexMode {
    Conversation,
    Process,
    All,
}

impl std::str::FromStr for ReindexMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "conversation" => Ok(ReindexMode::Conversation),
            "process" => Ok(ReindexMode::Process),
            "all" => Ok(ReindexMode::All),
            other => Err(format!("{other:?} is not one of conversation, process, all")),
        }
    }
}

impl ReindexMode {
    /// The scorecard types a scheduled reindex of this mode asks for.
    pub fn scorecard_types(self) -> Vec<TemplateType> {
        match self {
            ReindexMode::Conversation => vec![TemplateType::Conversation],
            ReindexMode::Process => vec![TemplateType::Process],
            ReindexMode::All => vec![TemplateType::Conversation, TemplateType::Process],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReindexActivity::*;
    use TemplateType::*;

    #[test]
    fn activities_branch_on_the_scorecard_types() {
        let for_types = ReindexActivity::for_scorecard_types;
        assert_eq!(for_types(&[]), vec![Conversations], "old clients: conversation only");
        assert_eq!(for_types(&[Conversation]), vec![Conversations]);
        assert_eq!(for_types(&[Process]), vec![ProcessScorecards]);
        assert_eq!(for_types(&[Process, Conversation]), vec![Conversations, ProcessScorecards]);
        assert_eq!(for_types(&[Process, Process]), vec![ProcessScorecards]);
        let spec = ReindexSpec { scorecard_types: vec![Process], ..ReindexSpec::default() };
        assert_eq!(spec.activities(), vec![ProcessScorecards]);
    }

    #[test]
    fn each_activity_copies_one_template_type() {
        assert_eq!(Conversations.template_type(), Conversation);
        assert_eq!(ProcessScorecards.template_type(), Process);
    }

    #[test]
    fn only_a_window_on_the_last_update_reads_by_update() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let window = |base| Some(TimeWindow { start: at, end: at, base });
        assert!(!ReindexScope::default().by_update());
        assert!(
            !ReindexScope { window: window(TimeBase::ConversationStart), ..ReindexScope::default() }
                .by_update()
        );
        assert!(ReindexScope { window: window(TimeBase::UpdatedAt), ..ReindexScope::default() }.by_update());
    }

    #[test]
    fn a_split_covers_every_key_once_in_ranges_of_about_equal_width() {
        let ranges = KeyRange::split(101, 1000, 3);
        assert_eq!(
            ranges,
            [
                KeyRange { after: 0, until: Some(400) },
                KeyRange { after: 400, until: Some(700) },
                KeyRange { after: 700, until: None },
            ]
        );
        for key in [1, 101, 400, 401, 700, 701, 1000, 5000] {
            assert_eq!(ranges.iter().filter(|r| r.contains(key)).count(), 1, "key {key}");
        }
        assert_eq!(KeyRange::split(5, 7, 10).len(), 3, "never more ranges than keys");
        assert_eq!(KeyRange::split(5, 5, 1), [KeyRange::ALL]);
        assert_eq!(KeyRange::split(1, i64::MAX, 2)[1].after, i64::MAX / 2);
    }

    #[test]
    fn activities_are_found_by_name() {
        for activity in [Conversations, ProcessScorecards] {
            assert_eq!(ReindexActivity::named(activity.name()), Some(activity));
        }
        assert_eq!(ReindexActivity::named("audit"), None);
    }

    #[test]
    fn modes_map_to_types() {
        let types = |mode: &str| mode.parse::<ReindexMode>().unwrap().scorecard_types();
        assert_eq!(types("all"), vec![Conversation, Process]);
        assert_eq!(types("process"), vec![Process]);
        assert_eq!(types("conversation"), vec![Conversation]);
        assert!("both".parse::<ReindexMode>().is_err());
    }
}
