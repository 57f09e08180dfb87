//! Property tests of the pure request checks ([`crate::validate`] and
//! [`crate::convert`]) on generated requests, valid and invalid: no panic;
//! a request is refused exactly when one of its fields breaks a documented
//! limit (docs/operations.md), and the refusal names such a field and
//! becomes INVALID_ARGUMENT; an accepted request keeps every text byte for
//! byte. The checks that live inside the services (duplicates in one
//! upsert, ids or a window, job payloads) are fuzzed through the real
//! server in `crates/tests/tests/fuzz_validation/`.
//!
//! Each property prints how many cases it ran; `PROPTEST_CASES=N` runs N
//! cases of every property instead of its default.

use std::sync::atomic::{AtomicU32, Ordering};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use scorekeeper_domain::limits::{
    MAX_CRITERIA_PER_TEMPLATE, MAX_IDS_PER_BATCH, MAX_MESSAGE_TEXT_BYTES, MAX_MESSAGES_PER_CONVERSATION,
    MAX_NAME_BYTES, MAX_PAGE_SIZE, MAX_PATTERN_BYTES, MAX_SCORES_PER_SCORECARD, MAX_TRANSCRIPT_TEXT_BYTES,
};
use scorekeeper_proto::coaching as pb;
use scorekeeper_proto::v1;
use tonic::Code;

use crate::error::ApiError;
use crate::validate::{self, Checked};

/// Runs `test` on `default_cases` values of `strategy` (or `PROPTEST_CASES`),
/// prints the count, and fails with the shrunk counterexample.
fn check<S: Strategy>(
    name: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default_cases);
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let ran = AtomicU32::new(0);
    let result = TestRunner::new(config).run(&strategy, |value| {
        ran.fetch_add(1, Ordering::Relaxed);
        test(value)
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    eprintln!("property {name}: {} cases", ran.load(Ordering::Relaxed));
}

/// The fields of one request that break a limit: `sure` ones must cause a
/// refusal; `maybe` ones may (a regex that does not compile, a phrase whose
/// compiled form is too big) and are the only others a refusal may name.
#[derive(Debug, Default)]
struct Bad {
    sure: Vec<String>,
    maybe: Vec<String>,
}

impl Bad {
    fn sure(&mut self, field: impl Into<String>) {
        self.sure.push(field.into());
    }

    fn required_text(&mut self, field: &str, value: &str, max_bytes: usize) {
        if value.trim().is_empty() || value.len() > max_bytes || value.contains('\0') {
            self.sure(field);
        }
    }

    fn optional_text(&mut self, field: &str, value: &str, max_bytes: usize) {
        if value.len() > max_bytes || value.contains('\0') {
            self.sure(field);
        }
    }

    fn timestamp(&mut self, field: &str, value: &Option<prost_types::Timestamp>) -> Option<(i64, i32)> {
        match value {
            Some(t) if timestamp_is_valid(t) => Some((t.seconds, t.nanos)),
            _ => {
                self.sure(field);
                None
            }
        }
    }

    /// A time that is mirrored to ClickHouse: also within its `DateTime`
    /// range, 1970-01-01T00:00:00Z to 2106-02-07T06:28:15Z (whole seconds;
    /// nanos below a second past the last one still fit).
    fn mirrored_timestamp(
        &mut self,
        field: &str,
        value: &Option<prost_types::Timestamp>,
    ) -> Option<(i64, i32)> {
        let time = self.timestamp(field, value)?;
        if (0..=4_294_967_295).contains(&time.0) {
            Some(time)
        } else {
            self.sure(field);
            None
        }
    }

    /// The outcome agrees with the oracle, and a refusal is INVALID_ARGUMENT
    /// whose message starts with the field.
    fn judge<T: std::fmt::Debug>(&self, result: &Checked<T>) -> Result<(), TestCaseError> {
        match result {
            Ok(value) => {
                prop_assert!(
                    self.sure.is_empty(),
                    "accepted although {:?} break limits: {value:?}",
                    self.sure
                )
            }
            Err(invalid) => {
                let named = &invalid.field;
                prop_assert!(
                    self.sure.contains(named) || self.maybe.contains(named),
                    "refused naming {named:?} ({invalid}), but the bad fields are {self:?}"
                );
                let status = tonic::Status::from(ApiError::from(invalid.clone()));
                prop_assert_eq!(status.code(), Code::InvalidArgument);
                prop_assert!(status.message().starts_with(&format!("{named}: ")), "{}", status.message());
            }
        }
        Ok(())
    }
}

/// `google.protobuf.Timestamp`'s documented range, years 1 to 9999, with
/// nanos in [0, 1e9).
fn timestamp_is_valid(t: &prost_types::Timestamp) -> bool {
    (-62_135_596_800..=253_402_300_799).contains(&t.seconds) && (0..1_000_000_000).contains(&t.nanos)
}

/// Characters that break naive SQL, logs, terminals or byte counting.
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => any::<char>(),
        1 => prop::sample::select(vec![
            '\0', '\'', '"', '\\', '%', '_', ';', '\t', '\n', '\r', '\u{7f}', '\u{200f}', '\u{202e}',
            '\u{301}', '\u{feff}', '\u{3000}', 'ع', '中', '😀', 'é',
        ]),
    ]
}

/// A string of exactly `bytes` bytes: `fill` repeated, padded with `a`.
fn sized(bytes: usize, fill: char) -> String {
    let mut s = String::with_capacity(bytes);
    while s.len() + fill.len_utf8() <= bytes {
        s.push(fill);
    }
    while s.len() < bytes {
        s.push('a');
    }
    s
}

/// Text for a field limited to `max_bytes`: ordinary, hostile, empty,
/// blank, and within a few bytes of the limit on either side.
fn text(max_bytes: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-zA-Z0-9 ._-]{1,16}",
        3 => vec(hostile_char(), 0..24).prop_map(String::from_iter),
        1 => Just(String::new()),
        1 => "[ \t\n\r\u{3000}]{1,4}",
        1 => (max_bytes - 3..=max_bytes + 3, prop::sample::select(vec!['x', 'é', '中', '😀', '\0']))
            .prop_map(|(n, c)| sized(n, c)),
    ]
}

/// A number for weights and criterion bounds, around their limits.
fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => 0.0..20.0f64,
        1 => prop::sample::select(vec![
            f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, -1.0, 1000.0, 1_000.000_001,
            1e9, -1e9, 1.000_000_1e9, f64::MIN_POSITIVE, f64::MAX,
        ]),
        1 => any::<f64>(),
    ]
}

/// An enum value: mostly known ones, sometimes unspecified or unknown.
fn enum_value(known: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = i32> {
    prop_oneof![6 => known, 1 => Just(0), 1 => any::<i32>()]
}

fn timestamp() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
    let t = |(seconds, nanos)| Some(prost_types::Timestamp { seconds, nanos });
    prop_oneof![
        8 => (1_700_000_000i64..1_800_000_000, 0..1_000_000_000i32).prop_map(t),
        1 => Just(None),
        1 => (
            prop::sample::select(vec![
                i64::MIN, -62_135_596_801, -62_135_596_800, 0, 253_402_300_799, 253_402_300_800, i64::MAX,
            ]),
            prop::sample::select(vec![-1, 0, 999_999_999, 1_000_000_000, i32::MIN, i32::MAX]),
        )
            .prop_map(t),
    ]
}

fn rule() -> impl Strategy<Value = pb::AutoQaRule> {
    let pattern = prop_oneof![
        3 => text(MAX_PATTERN_BYTES),
        1 => prop::sample::select(vec!["(", "a(?=b)", "(a{1000}){1000}", "\\p{Greek}+", "[", "^$", "\\"])
            .prop_map(String::from),
    ];
    (enum_value(1..=2), enum_value(1..=2), pattern, enum_value(0..=2), any::<u32>(), any::<u32>()).prop_map(
        |(kind, pattern_type, pattern, speaker, within_first_messages, within_first_seconds)| {
            pb::AutoQaRule {
                kind,
                pattern_type,
                pattern,
                speaker,
                within_first_messages,
                within_first_seconds,
            }
        },
    )
}

fn criterion() -> impl Strategy<Value = pb::Criterion> {
    (any::<i64>(), text(MAX_NAME_BYTES), number(), number(), number(), prop::option::weighted(0.3, rule()))
        .prop_map(|(id, name, weight, min_value, max_value, autoqa_rule)| pb::Criterion {
            id,
            name,
            weight,
            min_value,
            max_value,
            autoqa_rule,
        })
}

fn template_request() -> impl Strategy<Value = pb::CreateScorecardTemplateRequest> {
    let criteria = prop_oneof![
        8 => vec(criterion(), 0..5),
        1 => (MAX_CRITERIA_PER_TEMPLATE..=MAX_CRITERIA_PER_TEMPLATE + 1).prop_map(|n| {
            (0..n)
                .map(|i| pb::Criterion {
                    name: format!("c{i}"),
                    weight: 1.0,
                    max_value: 1.0,
                    ..Default::default()
                })
                .collect()
        }),
    ];
    (text(MAX_NAME_BYTES), enum_value(1..=2), criteria).prop_map(|(name, template_type, criteria)| {
        pb::CreateScorecardTemplateRequest { name, template_type, criteria }
    })
}

fn criterion_oracle(bad: &mut Bad, field: &str, c: &pb::Criterion) {
    bad.required_text(&format!("{field}.name"), &c.name, MAX_NAME_BYTES);
    if !(c.weight.is_finite() && c.weight > 0.0 && c.weight <= 1000.0) {
        bad.sure(format!("{field}.weight"));
    }
    let bounded = |v: f64| v.is_finite() && v.abs() <= 1e9;
    for (name, v) in [("min_value", c.min_value), ("max_value", c.max_value)] {
        if !bounded(v) {
            bad.sure(format!("{field}.{name}"));
        }
    }
    if bounded(c.min_value) && bounded(c.max_value) && c.min_value >= c.max_value {
        bad.sure(format!("{field}.max_value"));
    }
    if let Some(r) = &c.autoqa_rule {
        let f = format!("{field}.autoqa_rule");
        for (name, value, known) in
            [("kind", r.kind, 1..=2), ("pattern_type", r.pattern_type, 1..=2), ("speaker", r.speaker, 0..=2)]
        {
            if !known.contains(&value) {
                bad.sure(format!("{f}.{name}"));
            }
        }
        let pattern = format!("{f}.pattern");
        let blank = if r.pattern_type == 1 { r.pattern.trim().is_empty() } else { r.pattern.is_empty() };
        if blank || r.pattern.len() > MAX_PATTERN_BYTES || r.pattern.contains('\0') {
            bad.sure(pattern);
        } else {
            // Whether it compiles (within the size limit) is the regex
            // crate's to say.
            bad.maybe.push(pattern);
        }
    }
}

#[test]
fn create_template_requests() {
    check("CreateScorecardTemplate", 2000, template_request(), |request| {
        let mut bad = Bad::default();
        bad.required_text("name", &request.name, MAX_NAME_BYTES);
        if !(1..=2).contains(&request.template_type) {
            bad.sure("template_type");
        }
        if request.criteria.is_empty() || request.criteria.len() > MAX_CRITERIA_PER_TEMPLATE {
            bad.sure("criteria");
        }
        for (i, c) in request.criteria.iter().enumerate() {
            criterion_oracle(&mut bad, &format!("criteria[{i}]"), c);
        }
        if request.template_type == 2 && request.criteria.iter().any(|c| c.autoqa_rule.is_some()) {
            bad.sure("criteria");
        }
        let result = super::new_template(&request);
        bad.judge(&result)?;
        if let Ok(new) = result {
            prop_assert_eq!(&new.name, &request.name);
            prop_assert_eq!(new.criteria.len(), request.criteria.len());
            for (stored, sent) in new.criteria.iter().zip(&request.criteria) {
                prop_assert_eq!(&stored.name, &sent.name);
                prop_assert_eq!(stored.scale.weight, sent.weight);
                prop_assert_eq!(
                    stored.rule.as_ref().map(|r| &r.pattern),
                    sent.autoqa_rule.as_ref().map(|r| &r.pattern)
                );
            }
        }
        Ok(())
    });
}

fn message() -> impl Strategy<Value = v1::Message> {
    let offset = prop_oneof![8 => 0..3_600_000i64, 1 => Just(-1i64), 1 => any::<i64>()];
    (enum_value(1..=2), text(MAX_MESSAGE_TEXT_BYTES), offset)
        .prop_map(|(speaker, text, offset_ms)| v1::Message { speaker, text, offset_ms })
}

fn conversation() -> impl Strategy<Value = v1::Conversation> {
    let messages = prop_oneof![
        10 => vec(message(), 0..6),
        1 => (MAX_MESSAGES_PER_CONVERSATION..=MAX_MESSAGES_PER_CONVERSATION + 1).prop_map(|n| {
            vec![v1::Message { speaker: 1, text: "hi".into(), offset_ms: 0 }; n]
        }),
    ];
    (text(MAX_NAME_BYTES), text(MAX_NAME_BYTES), timestamp(), timestamp(), messages, any::<i64>()).prop_map(
        |(external_id, agent_id, started_at, ended_at, messages, id)| v1::Conversation {
            id,
            external_id,
            agent_id,
            started_at,
            ended_at,
            messages,
            ..Default::default()
        },
    )
}

#[test]
fn conversations_of_upserts() {
    check("UpsertConversations.conversations[i]", 2000, conversation(), |c| {
        let field = "conversations[7]";
        let mut bad = Bad::default();
        bad.required_text(&format!("{field}.external_id"), &c.external_id, MAX_NAME_BYTES);
        bad.required_text(&format!("{field}.agent_id"), &c.agent_id, MAX_NAME_BYTES);
        let started = bad.mirrored_timestamp(&format!("{field}.started_at"), &c.started_at);
        let ended = bad.mirrored_timestamp(&format!("{field}.ended_at"), &c.ended_at);
        if let (Some(started), Some(ended)) = (started, ended)
            && ended < started
        {
            bad.sure(format!("{field}.ended_at"));
        }
        if c.messages.len() > MAX_MESSAGES_PER_CONVERSATION
            || c.messages.iter().map(|m| m.text.len()).sum::<usize>() > MAX_TRANSCRIPT_TEXT_BYTES
        {
            bad.sure(format!("{field}.messages"));
        }
        for (i, m) in c.messages.iter().enumerate() {
            let f = format!("{field}.messages[{i}]");
            if !(1..=2).contains(&m.speaker) {
                bad.sure(format!("{f}.speaker"));
            }
            bad.optional_text(&format!("{f}.text"), &m.text, MAX_MESSAGE_TEXT_BYTES);
            if m.offset_ms < 0 {
                bad.sure(format!("{f}.offset_ms"));
            }
        }
        let result = super::new_conversation(field, &c);
        bad.judge(&result)?;
        if let Ok(new) = result {
            prop_assert_eq!(&new.external_id, &c.external_id);
            prop_assert_eq!(&new.agent_id, &c.agent_id);
            prop_assert_eq!(Some(scorekeeper_proto::time::to_timestamp(new.started_at)), c.started_at);
            prop_assert_eq!(Some(scorekeeper_proto::time::to_timestamp(new.ended_at)), c.ended_at);
            let texts: Vec<&str> = new.messages.iter().map(|m| m.text.as_str()).collect();
            let sent: Vec<&str> = c.messages.iter().map(|m| m.text.as_str()).collect();
            prop_assert_eq!(texts, sent);
        }
        Ok(())
    });
}

fn id_value() -> impl Strategy<Value = i64> {
    prop_oneof![8 => 1..1_000_000i64, 1 => Just(0i64), 1 => any::<i64>()]
}

fn score() -> impl Strategy<Value = pb::Score> {
    (id_value(), number()).prop_map(|(criterion_id, value)| pb::Score { criterion_id, value })
}

#[test]
fn scores_of_scorecards() {
    let scores = prop_oneof![
        8 => vec(score(), 0..6),
        1 => (MAX_SCORES_PER_SCORECARD..=MAX_SCORES_PER_SCORECARD + 1)
            .prop_map(|n| vec![pb::Score { criterion_id: 1, value: 1.0 }; n]),
    ];
    check("CreateScorecard/UpdateScorecard.scores", 3000, scores, |scores| {
        let mut bad = Bad::default();
        if scores.len() > MAX_SCORES_PER_SCORECARD {
            bad.sure("scores");
        }
        for (i, s) in scores.iter().enumerate() {
            if s.criterion_id <= 0 {
                bad.sure(format!("scores[{i}].criterion_id"));
            }
            if !s.value.is_finite() {
                bad.sure(format!("scores[{i}].value"));
            }
        }
        let result = super::scores_from_wire("scores", &scores);
        bad.judge(&result)?;
        if let Ok(stored) = result {
            let kept: Vec<(i64, u64)> =
                stored.iter().map(|s| (s.criterion_id.0, s.value.to_bits())).collect();
            let sent: Vec<(i64, u64)> = scores.iter().map(|s| (s.criterion_id, s.value.to_bits())).collect();
            prop_assert_eq!(kept, sent);
        }
        Ok(())
    });
}

#[test]
fn agent_ids_and_ids_of_scorecard_requests() {
    let ids = prop_oneof![
        8 => vec(id_value(), 0..6),
        1 => (MAX_IDS_PER_BATCH..=MAX_IDS_PER_BATCH + 1).prop_map(|n| vec![1i64; n]),
    ];
    check("agent_id, ids and id lists", 3000, (text(MAX_NAME_BYTES), id_value(), ids), |(agent, id, ids)| {
        let mut bad = Bad::default();
        if !agent.is_empty() {
            bad.required_text("agent_id", &agent, MAX_NAME_BYTES);
        }
        bad.judge(&validate::optional_name("agent_id", &agent, MAX_NAME_BYTES))?;

        let mut bad = Bad::default();
        if id <= 0 {
            bad.sure("id");
        }
        bad.judge(&validate::id("id", id))?;

        let mut bad = Bad::default();
        if ids.len() > MAX_IDS_PER_BATCH {
            bad.sure("conversation_ids");
        }
        for (i, id) in ids.iter().enumerate() {
            if *id <= 0 {
                bad.sure(format!("conversation_ids[{i}]"));
            }
        }
        let result = validate::conversation_ids("conversation_ids", &ids, MAX_IDS_PER_BATCH);
        bad.judge(&result)?;
        if let Ok(kept) = result {
            prop_assert_eq!(kept.iter().map(|c| c.0).collect::<Vec<_>>(), ids);
        }
        Ok(())
    });
}

#[test]
fn pages_of_list_requests() {
    let size = prop_oneof![4 => 0..=MAX_PAGE_SIZE as i32 + 1, 1 => any::<i32>()];
    let token = prop_oneof![
        2 => Just(String::new()),
        4 => any::<i64>().prop_map(|n| n.to_string()),
        1 => "[0-9]{19,21}",
        1 => "[+-]?[0-9 a-f:]{0,8}",
        2 => vec(hostile_char(), 1..12).prop_map(String::from_iter),
    ];
    check("List*.page_size/page_token", 5000, (size, token), |(size, token)| {
        let mut bad = Bad::default();
        if !(0..=MAX_PAGE_SIZE as i32).contains(&size) {
            bad.sure("page_size");
        }
        if !token.is_empty() && token.parse::<i64>().is_err() {
            bad.sure("page_token");
        }
        let result = validate::page(size, &token);
        bad.judge(&result)?;
        if let Ok((n, after)) = result {
            prop_assert!((1..=MAX_PAGE_SIZE).contains(&n));
            prop_assert_eq!(after, (!token.is_empty()).then(|| token.parse::<i64>().ok()).flatten());
        }
        Ok(())
    });
}

#[test]
fn timestamps_and_enums() {
    let strategy = (timestamp(), any::<i32>(), any::<bool>());
    check("timestamps and enum values", 5000, strategy, |(t, value, allow_unspecified)| {
        let mut bad = Bad::default();
        bad.timestamp("start_time", &t);
        let result = validate::required_timestamp("start_time", &t);
        bad.judge(&result)?;
        if let Ok(time) = result {
            // What the API answers is what it was sent.
            prop_assert_eq!(Some(scorekeeper_proto::time::to_timestamp(time)), t);
        }

        let mut bad = Bad::default();
        if !(0..=3).contains(&value) || (value == 0 && !allow_unspecified) {
            bad.sure("group_by");
        }
        bad.judge(&validate::known_enum::<v1::StatsGroupBy>("group_by", value, allow_unspecified))?;
        Ok(())
    });
}
