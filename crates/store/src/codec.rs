//! Conversions between stored column values and domain values, with the
//! errors for values no version of the schema writes.

use scorekeeper_domain::autoqa::Rule;
use scorekeeper_domain::transcript::Speaker;
use scorekeeper_domain::{ScorecardSource, TemplateType};

use crate::error::{Result, StoreError};

pub(crate) fn template_type(stored: Option<i16>) -> Result<TemplateType> {
    TemplateType::from_stored(stored).ok_or_else(|| StoreError::Corrupt(format!("template_type {stored:?}")))
}

pub(crate) fn source(stored: i16) -> Result<ScorecardSource> {
    ScorecardSource::from_stored(stored).ok_or_else(|| StoreError::Corrupt(format!("source {stored}")))
}

pub(crate) fn speaker(stored: i16) -> Result<Speaker> {
    Speaker::from_stored(stored).ok_or_else(|| StoreError::Corrupt(format!("speaker {stored}")))
}

pub(crate) fn rule(stored: Option<serde_json::Value>) -> Result<Option<Rule>> {
    stored
        .map(|json| {
            serde_json::from_value(json).map_err(|e| StoreError::Corrupt(format!("autoqa_rule: {e}")))
        })
        .transpose()
}

pub(crate) fn rule_json(rule: &Option<Rule>) -> Option<serde_json::Value> {
    rule.as_ref().map(|r| serde_json::to_value(r).expect("a Rule always serialises"))
}

/// `message_count` is an `integer` the store itself fills from a bounded list.
pub(crate) fn count(stored: i32) -> Result<u32> {
    u32::try_from(stored).map_err(|_| StoreError::Corrupt(format!("message_count {stored}")))
}
