//! Newtype ids, so a scorecard id can never be passed where a conversation id
//! is expected. All are Postgres `bigint` identities.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A tenant. Every mirrored row belongs to exactly one.
    CustomerId
);
id_type!(ConversationId);
id_type!(ScorecardId);
id_type!(TemplateId);
id_type!(CriterionId);
