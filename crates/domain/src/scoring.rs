//! Scorecard kinds and the weighted total score.

/// The kind of a scorecard template, and so of its scorecards. Numbers match
/// `scorekeeper.v1.coaching.ScorecardTemplateType` and the Postgres column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateType {
    /// Scores one conversation.
    Conversation,
    /// Scores a process linked to zero or more conversations.
    Process,
}

impl TemplateType {
    /// The stored and wire number.
    pub fn number(self) -> i16 {
        match self {
            TemplateType::Conversation => 1,
            TemplateType::Process => 2,
        }
    }

    /// Reads the stored column; legacy rows without a type are conversation
    /// templates. `None` for a number no version of the schema writes.
    pub fn from_stored(number: Option<i16>) -> Option<TemplateType> {
        match number {
            None | Some(1) => Some(TemplateType::Conversation),
            Some(2) => Some(TemplateType::Process),
            Some(_) => None,
        }
    }

    pub fn is_process(self) -> bool {
        self == TemplateType::Process
    }
}

/// Who filled a scorecard in. Numbers match `ScorecardSource` and Postgres.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScorecardSource {
    Manual,
    AutoQa,
}

impl ScorecardSource {
    pub fn number(self) -> i16 {
        match self {
            ScorecardSource::Manual => 1,
            ScorecardSource::AutoQa => 2,
        }
    }

    pub fn from_stored(number: i16) -> Option<ScorecardSource> {
        match number {
            1 => Some(ScorecardSource::Manual),
            2 => Some(ScorecardSource::AutoQa),
            _ => None,
        }
    }
}

/// What scoring needs to know of a criterion.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CriterionScale {
    pub weight: f64,
    pub min_value: f64,
    pub max_value: f64,
}

impl CriterionScale {
    /// Whether `value` is a score this criterion accepts.
    pub fn accepts(&self, value: f64) -> bool {
        value.is_finite() && value >= self.min_value && value <= self.max_value
    }
}

/// The weighted total in percent (0..=100): each scored criterion's value is
/// normalised to its range and weighted; criteria without a score do not
/// count. No scores at all gives 0.
pub fn total_score(scored: impl IntoIterator<Item = (CriterionScale, f64)>) -> f64 {
    let (mut weighted, mut weights) = (0.0, 0.0);
    for (scale, value) in scored {
        let normalised = (value - scale.min_value) / (scale.max_value - scale.min_value);
        weighted += scale.weight * normalised;
        weights += scale.weight;
    }
    if weights == 0.0 {
        0.0
    } else {
        // Rounded to 1e-6 so that Postgres and ClickHouse sums compare exactly.
        (weighted / weights * 100.0 * 1e6).round() / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_untyped_templates_are_conversation_templates() {
        assert_eq!(TemplateType::from_stored(None), Some(TemplateType::Conversation));
        assert_eq!(TemplateType::from_stored(Some(2)), Some(TemplateType::Process));
        assert_eq!(TemplateType::from_stored(Some(7)), None);
    }

    #[test]
    fn total_is_weighted_and_normalised() {
        let a = CriterionScale { weight: 1.0, min_value: 0.0, max_value: 10.0 };
        let b = CriterionScale { weight: 3.0, min_value: 1.0, max_value: 5.0 };
        // a: 0.5 * 1, b: 1.0 * 3 => 3.5 / 4 = 87.5 %
        assert_eq!(total_score([(a, 5.0), (b, 5.0)]), 87.5);
        assert_eq!(total_score([]), 0.0);
        assert!(!a.accepts(10.5));
        assert!(!a.accepts(f64::NAN));
        assert!(a.accepts(0.0));
    }
}
