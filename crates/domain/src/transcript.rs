//! A transcript as AutoQA sees it.

/// Who said a message. Numbers match `scorekeeper.v1.Speaker` and Postgres.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Agent,
    Customer,
}

impl Speaker {
    pub fn number(self) -> i16 {
        match self {
            Speaker::Agent => 1,
            Speaker::Customer => 2,
        }
    }

    pub fn from_stored(number: i16) -> Option<Speaker> {
        match number {
            1 => Some(Speaker::Agent),
            2 => Some(Speaker::Customer),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub speaker: Speaker,
    pub text: String,
    /// Milliseconds since the conversation started.
    pub offset_ms: i64,
}
