//! AutoQA rules: deterministic checks of a transcript that score a criterion.
//!
//! A rule is stored as JSON in `criteria.autoqa_rule`; the serde shape below is
//! that stored format, so changing it needs a migration.

use regex_automata::meta::{self, BuildError};

use crate::transcript::{Message, Speaker};

/// Whether the pattern must occur or must not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Present,
    Absent,
}

/// How `pattern` is matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternType {
    /// Case-insensitive phrase on word boundaries; runs of whitespace in the
    /// phrase match any run of whitespace in the text.
    Phrase,
    /// A Rust `regex` expression, matched as written.
    Regex,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rule {
    pub kind: RuleKind,
    pub pattern_type: PatternType,
    pub pattern: String,
    /// Only this speaker's messages; `None` for any speaker.
    pub speaker: Option<Speaker>,
    /// Only the first N messages of the transcript (counted over all
    /// speakers, before the speaker filter); 0 for all.
    pub within_first_messages: u32,
    /// Only messages with `offset_ms < N * 1000`; 0 for no limit.
    pub within_first_seconds: u32,
}

/// Upper bound on the compiled size of a rule's regex, in bytes (passed to
/// the engine's NFA size limit). Patterns whose compiled program would
/// be larger are refused with [`RuleError::PatternTooComplex`], so a hostile
/// or careless pattern costs a fast error, never slow matching or large
/// memory. Unicode classes are big: `\w{3,20}` fits, `\w{3,30}` does not
/// (`[a-z]` or `(?-u:\w)` are far smaller).
pub const MAX_COMPILED_REGEX_BYTES: usize = 1 << 20;

/// Capacity of each lazy DFA cache of a compiled rule, in bytes. The
/// engine keeps one cache per thread that searches with the rule at once
/// (forward and reverse), so scoring memory grows with rules × scoring
/// threads × this; `regex`'s default is 2 MiB. Smaller caches make a rule
/// whose DFA needs more states fall back to the slower NFA engine sooner,
/// which the AutoQA cost model measures with this same setting.
pub const LAZY_DFA_CACHE_BYTES: usize = 256 * 1024;

/// Why a [`Rule`] cannot be compiled.
///
/// The `Display` text is a short description; for regex errors the parser's
/// detailed message (position, caret diagram) is available as
/// [`std::error::Error::source`], not repeated in `Display`.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The pattern is empty or, for a phrase, only whitespace. An empty
    /// pattern would match every message, which is never what a rule means.
    #[error("AutoQA pattern is empty")]
    EmptyPattern,
    /// The pattern as written is longer than `max_bytes` bytes of UTF-8
    /// ([`crate::limits::MAX_PATTERN_BYTES`]).
    #[error("AutoQA pattern is longer than {max_bytes} bytes")]
    PatternTooLong { max_bytes: usize },
    /// The pattern is not valid Rust `regex` syntax (for example unbalanced
    /// parentheses or look-around, which `regex` does not support).
    #[error("AutoQA pattern is not a valid regular expression")]
    InvalidRegex(#[source] Box<BuildError>),
    /// The pattern is valid but compiles to more than `size_limit_bytes`
    /// ([`MAX_COMPILED_REGEX_BYTES`]), e.g. `(a{1000}){1000}` or large
    /// repetitions of Unicode classes.
    #[error("AutoQA pattern is too complex (compiled size over {size_limit_bytes} bytes)")]
    PatternTooComplex {
        size_limit_bytes: usize,
        #[source]
        source: Box<BuildError>,
    },
}

/// `Result` with [`RuleError`] as the default error.
pub type Result<T, E = RuleError> = std::result::Result<T, E>;

impl Rule {
    /// Validates the rule and compiles its pattern once, for use on any
    /// number of transcripts.
    ///
    /// Checks, in order: the pattern is at most
    /// [`crate::limits::MAX_PATTERN_BYTES`] bytes as written
    /// ([`RuleError::PatternTooLong`]); it is not empty, and a phrase is not
    /// only whitespace ([`RuleError::EmptyPattern`]); it compiles
    /// ([`RuleError::InvalidRegex`]) within [`MAX_COMPILED_REGEX_BYTES`]
    /// ([`RuleError::PatternTooComplex`]).
    ///
    /// A [`PatternType::Phrase`] is matched literally (regex metacharacters
    /// have no special meaning), case-insensitively (Unicode simple case
    /// folding), with each run of whitespace in the phrase matching any
    /// non-empty run of whitespace in the text; leading and trailing
    /// whitespace of the phrase is ignored. The phrase must sit on word
    /// boundaries where it starts or ends with a word character (`\w`): so
    /// `refund` does not match `refunded`, while `how can I help?` may be
    /// followed by anything. A [`PatternType::Regex`] is compiled exactly as
    /// written (case-sensitive unless it says `(?i)`).
    ///
    /// Pure and deterministic: the same rule always gives the same result.
    pub fn compile(&self) -> Result<CompiledRule> {
        if self.pattern.len() > crate::limits::MAX_PATTERN_BYTES {
            return Err(RuleError::PatternTooLong { max_bytes: crate::limits::MAX_PATTERN_BYTES });
        }
        let source = match self.pattern_type {
            PatternType::Phrase => phrase_regex(&self.pattern)?,
            PatternType::Regex if self.pattern.is_empty() => return Err(RuleError::EmptyPattern),
            PatternType::Regex => self.pattern.clone(),
        };
        // Configured as `regex::RegexBuilder` configures the same engine
        // (leftmost-first, UTF-8 text), with our size limits.
        let config = meta::Config::new()
            .match_kind(regex_automata::MatchKind::LeftmostFirst)
            .utf8_empty(true)
            .nfa_size_limit(Some(MAX_COMPILED_REGEX_BYTES))
            .hybrid_cache_capacity(LAZY_DFA_CACHE_BYTES);
        let regex = meta::Regex::builder()
            .configure(config)
            .syntax(regex_automata::util::syntax::Config::new().utf8(true))
            .build(&source)
            .map_err(|error| match error.size_limit() {
                Some(_) => RuleError::PatternTooComplex {
                    size_limit_bytes: MAX_COMPILED_REGEX_BYTES,
                    source: Box::new(error),
                },
                None => RuleError::InvalidRegex(Box::new(error)),
            })?;
        Ok(CompiledRule { rule: self.clone(), regex })
    }

    /// Checks that [`Rule::compile`] would succeed; the same errors, and
    /// nothing is kept. Use before storing a rule.
    pub fn validate(&self) -> Result<()> {
        self.compile().map(drop)
    }
}

/// The regex source for a phrase: words escaped, joined by `\s+`,
/// case-insensitive, with `\b` at an end only where that end is a word
/// character (`\b` next to punctuation would demand a word character on the
/// other side instead).
fn phrase_regex(phrase: &str) -> Result<String> {
    let phrase = phrase.trim();
    let (Some(first), Some(last)) = (phrase.chars().next(), phrase.chars().next_back()) else {
        return Err(RuleError::EmptyPattern);
    };
    let words: Vec<String> = phrase.split_whitespace().map(regex::escape).collect();
    let start = if is_word_char(first) { r"\b" } else { "" };
    let end = if is_word_char(last) { r"\b" } else { "" };
    Ok(format!("(?i){start}{}{end}", words.join(r"\s+")))
}

/// Whether `c` is a word character in the sense of the `regex` crate's `\w`
/// and `\b`, asked of `regex` itself so the two can never disagree.
fn is_word_char(c: char) -> bool {
    static WORD_CHAR: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\A\w\z").expect("constant regex"));
    WORD_CHAR.is_match(c.encode_utf8(&mut [0; 4]))
}

/// A [`Rule`] whose pattern has been validated and compiled, ready to be
/// evaluated on transcripts. Built by [`Rule::compile`]; cheap to share by
/// reference across threads.
#[derive(Clone, Debug)]
pub struct CompiledRule {
    rule: Rule,
    regex: meta::Regex,
}

impl CompiledRule {
    /// The rule this was compiled from.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// Heap bytes the compiled pattern holds, not counting the lazy DFA
    /// caches of the threads searching with it (at most
    /// [`LAZY_DFA_CACHE_BYTES`] each, per direction).
    pub fn heap_bytes(&self) -> usize {
        self.regex.memory_usage() + self.rule.pattern.len()
    }

    /// Non-overlapping matches of the pattern in `text`, every one of them:
    /// a search that reads the whole text whatever it finds, which is what
    /// the AutoQA cost model times.
    pub fn count_matches(&self, text: &str) -> usize {
        self.regex.find_iter(text).count()
    }

    /// Whether `messages` satisfy the rule.
    ///
    /// The messages searched are, in the order given (not re-sorted):
    /// 1. the first `within_first_messages` messages (0 = all), counted over
    ///    all speakers, before the speaker filter;
    /// 2. of those, the ones with `offset_ms < within_first_seconds * 1000`
    ///    when `within_first_seconds > 0` (an offset of exactly
    ///    `within_first_seconds * 1000` is excluded);
    /// 3. of those, the ones by `speaker` when it is `Some`.
    ///
    /// The pattern is *found* when it matches anywhere in the text of at
    /// least one searched message (matches never span two messages).
    /// [`RuleKind::Present`] passes iff found; [`RuleKind::Absent`] passes
    /// iff not found, so an empty transcript fails `Present` and passes
    /// `Absent`.
    ///
    /// Pure and deterministic: no clock, no randomness, no I/O; time is
    /// linear in the total text length.
    pub fn passes(&self, messages: &[Message]) -> bool {
        self.passes_unless_stopped(messages, || false).expect("never stopped")
    }

    /// [`CompiledRule::passes`], asking `stop` before each message is
    /// searched; `None` as soon as it says yes. One message's search is the
    /// unit of work that cannot be interrupted, so a caller with a deadline
    /// waits at most one message's cost past it.
    pub fn passes_unless_stopped(
        &self,
        messages: &[Message],
        mut stop: impl FnMut() -> bool,
    ) -> Option<bool> {
        let rule = &self.rule;
        let first_n = match rule.within_first_messages {
            0 => messages.len(),
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let before_ms = i64::from(rule.within_first_seconds) * 1000;
        let found = messages
            .iter()
            .take(first_n)
            .filter(|m| rule.within_first_seconds == 0 || m.offset_ms < before_ms)
            .filter(|m| rule.speaker.is_none_or(|speaker| m.speaker == speaker))
            .map(|m| if stop() { None } else { Some(self.regex.is_match(&m.text)) })
            .find(|found| *found != Some(false))
            .unwrap_or(Some(false))?;
        Some(match rule.kind {
            RuleKind::Present => found,
            RuleKind::Absent => !found,
        })
    }
}

/// A criterion scored by an AutoQA rule: [`CriterionScale::max_value`] when
/// the rule passes, [`CriterionScale::min_value`] when it fails.
///
/// [`CriterionScale::max_value`]: crate::scoring::CriterionScale::max_value
/// [`CriterionScale::min_value`]: crate::scoring::CriterionScale::min_value
#[derive(Clone, Copy, Debug)]
pub struct RuleCriterion<'a> {
    pub criterion_id: crate::CriterionId,
    pub scale: crate::scoring::CriterionScale,
    pub rule: &'a CompiledRule,
}

/// Scores `messages` against each criterion's rule, in the order of
/// `criteria` (one entry per criterion, duplicates kept): `scale.max_value`
/// when [`CompiledRule::passes`], otherwise `scale.min_value`.
///
/// Pure and deterministic. The weighted total is left to the caller, via
/// [`crate::scoring::total_score`] with each criterion's scale.
pub fn score_transcript(
    criteria: &[RuleCriterion<'_>],
    messages: &[Message],
) -> Vec<(crate::CriterionId, f64)> {
    score_transcript_unless_stopped(criteria, messages, || false).expect("never stopped")
}

/// [`score_transcript`], asking `stop` before each message searched
/// ([`CompiledRule::passes_unless_stopped`]); `None` once it says yes.
pub fn score_transcript_unless_stopped(
    criteria: &[RuleCriterion<'_>],
    messages: &[Message],
    mut stop: impl FnMut() -> bool,
) -> Option<Vec<(crate::CriterionId, f64)>> {
    criteria
        .iter()
        .map(|criterion| {
            let passes = criterion.rule.passes_unless_stopped(messages, &mut stop)?;
            let value = if passes { criterion.scale.max_value } else { criterion.scale.min_value };
            Some((criterion.criterion_id, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CriterionId;
    use crate::limits::MAX_PATTERN_BYTES;
    use crate::scoring::{CriterionScale, total_score};
    use std::error::Error as _;

    fn rule(kind: RuleKind, pattern_type: PatternType, pattern: &str) -> Rule {
        Rule {
            kind,
            pattern_type,
            pattern: pattern.to_owned(),
            speaker: None,
            within_first_messages: 0,
            within_first_seconds: 0,
        }
    }

    fn phrase(pattern: &str) -> Rule {
        rule(RuleKind::Present, PatternType::Phrase, pattern)
    }

    fn regex_rule(pattern: &str) -> Rule {
        rule(RuleKind::Present, PatternType::Regex, pattern)
    }

    fn msg(speaker: Speaker, offset_ms: i64, text: &str) -> Message {
        Message { speaker, text: text.to_owned(), offset_ms }
    }

    fn agent(offset_ms: i64, text: &str) -> Message {
        msg(Speaker::Agent, offset_ms, text)
    }

    fn customer(offset_ms: i64, text: &str) -> Message {
        msg(Speaker::Customer, offset_ms, text)
    }

    /// Whether the compiled rule passes on a single agent message `text`.
    fn passes_on(rule: &Rule, text: &str) -> bool {
        rule.compile().unwrap().passes(&[agent(0, text)])
    }

    #[test]
    fn phrase_is_case_insensitive_and_whitespace_flexible() {
        let r = phrase("thank you");
        assert!(passes_on(&r, "thank you"));
        assert!(passes_on(&r, "THANK   you!"));
        assert!(passes_on(&r, "Well, Thank\tYou\nso much"));
        assert!(passes_on(&r, "ok.thank you."));
        assert!(!passes_on(&r, "thankyou"));
        assert!(!passes_on(&r, "thank, you"));
        assert!(!passes_on(&r, "thanks you"));
        // Leading, trailing and repeated whitespace in the phrase is ignored.
        let padded = phrase("  thank \t  you \n");
        assert!(passes_on(&padded, "THANK   you!"));
        assert!(!passes_on(&padded, "thankyou"));
    }

    #[test]
    fn phrase_matches_on_word_boundaries_only() {
        let r = phrase("refund");
        assert!(passes_on(&r, "I want a refund."));
        assert!(passes_on(&r, "Refund, please"));
        assert!(passes_on(&r, "(refund)"));
        assert!(passes_on(&r, "refund"));
        assert!(!passes_on(&r, "it was refunded"));
        assert!(!passes_on(&r, "prerefund"));
        assert!(!passes_on(&r, "refund_id"));
        // Boundaries are Unicode-aware, as is case folding.
        let cafe = phrase("café");
        assert!(passes_on(&cafe, "Le CAFÉ est chaud"));
        assert!(!passes_on(&cafe, "cafés"));
    }

    #[test]
    fn phrase_with_punctuation_at_the_ends() {
        let help = phrase("how can I help?");
        assert!(passes_on(&help, "Hi! How can I help?"));
        assert!(passes_on(&help, "how   CAN i help?!"));
        // `?` is literal, not "optional p".
        assert!(!passes_on(&help, "how can I hel"));
        assert!(!passes_on(&help, "how can I help today?"));
        // Still a boundary at the word-character start.
        assert!(!passes_on(&help, "somehow can I help?"));

        // A phrase starting with punctuation gets no leading `\b`, which would
        // otherwise demand a word character before the `$`.
        let dollars = phrase("$5 off");
        assert!(passes_on(&dollars, "you get $5 off today"));
        assert!(passes_on(&dollars, "$5 OFF"));
        assert!(!passes_on(&dollars, "$5 offer"));
        assert!(!passes_on(&dollars, "$50 off"));
    }

    #[test]
    fn phrase_metacharacters_are_literal() {
        let r = phrase("a.b (c)*");
        assert!(passes_on(&r, "see a.b (c)* here"));
        assert!(!passes_on(&r, "see axb (c)* here"));
        assert!(!passes_on(&r, "see a.b c here"));
        let pipe = phrase("yes|no");
        assert!(passes_on(&pipe, "answer yes|no"));
        assert!(!passes_on(&pipe, "yes"));
        assert!(!passes_on(&pipe, "no"));
    }

    #[test]
    fn regex_rules_match_as_written() {
        let r = regex_rule(r"\border\s+#?\d{6}\b");
        assert!(passes_on(&r, "your order #123456 shipped"));
        assert!(passes_on(&r, "order 654321"));
        assert!(!passes_on(&r, "order #12345"));
        // Case-sensitive unless the pattern says otherwise.
        assert!(!passes_on(&r, "ORDER 123456"));
        let insensitive = regex_rule(r"(?i)\border\s+#?\d{6}\b");
        assert!(passes_on(&insensitive, "ORDER 123456"));
        // Unanchored: a match anywhere in the text counts.
        assert!(passes_on(&regex_rule("fund"), "refunded"));
        // Anchors apply to each message's text.
        let anchored = regex_rule(r"^hello");
        assert!(passes_on(&anchored, "hello there"));
        assert!(!passes_on(&anchored, "well, hello"));
    }

    #[test]
    fn matches_never_span_two_messages() {
        let r = phrase("thank you").compile().unwrap();
        assert!(!r.passes(&[agent(0, "thank"), agent(1, "you")]));
    }

    #[test]
    fn a_stopped_evaluation_searches_no_further() {
        let r = phrase("thank you").compile().unwrap();
        let messages = [agent(0, "hello"), agent(1, "thank you"), agent(2, "bye")];
        let mut asked = 0;
        assert_eq!(
            r.passes_unless_stopped(&messages, || {
                asked += 1;
                false
            }),
            Some(true)
        );
        assert_eq!(asked, 2, "the search ends at the first match");
        let mut asked = 0;
        let stop_at_second = || {
            asked += 1;
            asked == 2
        };
        assert_eq!(r.passes_unless_stopped(&messages, stop_at_second), None);
        assert_eq!(r.passes_unless_stopped(&[], || true), Some(false), "nothing to search: not stopped");
    }

    #[test]
    fn absent_passes_iff_not_found() {
        let r = rule(RuleKind::Absent, PatternType::Phrase, "stupid").compile().unwrap();
        assert!(r.passes(&[agent(0, "hello"), customer(1, "hi")]));
        assert!(!r.passes(&[agent(0, "hello"), agent(1, "that is STUPID")]));
        assert!(r.passes(&[agent(0, "stupidity is not the word")]));
    }

    #[test]
    fn empty_transcript_fails_present_and_passes_absent() {
        assert!(!phrase("hello").compile().unwrap().passes(&[]));
        let absent = rule(RuleKind::Absent, PatternType::Phrase, "hello");
        assert!(absent.compile().unwrap().passes(&[]));
    }

    #[test]
    fn speaker_filter() {
        let messages = [customer(0, "thank you"), agent(1000, "you're welcome")];
        let mut r = phrase("thank you");
        assert!(r.compile().unwrap().passes(&messages));
        r.speaker = Some(Speaker::Agent);
        assert!(!r.compile().unwrap().passes(&messages));
        r.speaker = Some(Speaker::Customer);
        assert!(r.compile().unwrap().passes(&messages));

        // Absent with a speaker filter ignores the other speaker.
        let mut absent = rule(RuleKind::Absent, PatternType::Phrase, "thank you");
        absent.speaker = Some(Speaker::Agent);
        assert!(absent.compile().unwrap().passes(&messages));
        absent.speaker = Some(Speaker::Customer);
        assert!(!absent.compile().unwrap().passes(&messages));
    }

    #[test]
    fn within_first_messages_counts_all_speakers_before_the_speaker_filter() {
        let messages = [
            customer(0, "hello?"),
            customer(1000, "anyone there?"),
            agent(2000, "Hi, thank you for waiting"),
            agent(3000, "thank you"),
        ];
        let mut r = phrase("thank you");
        r.speaker = Some(Speaker::Agent);
        r.within_first_messages = 2;
        // The first two messages are both the customer's: nothing to search.
        assert!(!r.compile().unwrap().passes(&messages));
        r.within_first_messages = 3;
        assert!(r.compile().unwrap().passes(&messages));
        r.within_first_messages = 0;
        assert!(r.compile().unwrap().passes(&messages));
        // More than there are is all of them.
        r.within_first_messages = 100;
        assert!(r.compile().unwrap().passes(&messages));

        // Messages are taken in the order given, not sorted by offset.
        let reordered = [agent(5000, "thank you"), customer(0, "hi")];
        r.within_first_messages = 1;
        assert!(r.compile().unwrap().passes(&reordered));
    }

    #[test]
    fn within_first_seconds_excludes_the_boundary() {
        let mut r = phrase("my name is");
        r.within_first_seconds = 5;
        let c = r.compile().unwrap();
        assert!(c.passes(&[agent(4_999, "my name is Sam")]));
        assert!(!c.passes(&[agent(5_000, "my name is Sam")]));
        assert!(!c.passes(&[agent(60_000, "my name is Sam")]));
        assert!(c.passes(&[agent(0, "my name is Sam")]));
        // A later message does not hide an earlier match, and vice versa.
        assert!(c.passes(&[agent(6_000, "bye"), agent(1_000, "my name is Sam")]));
        // 0 means no limit.
        r.within_first_seconds = 0;
        assert!(r.compile().unwrap().passes(&[agent(i64::MAX, "my name is Sam")]));

        // The largest limit does not overflow.
        r.within_first_seconds = u32::MAX;
        let c = r.compile().unwrap();
        let limit = i64::from(u32::MAX) * 1000;
        assert!(c.passes(&[agent(limit - 1, "my name is Sam")]));
        assert!(!c.passes(&[agent(limit, "my name is Sam")]));
    }

    #[test]
    fn absent_within_first_seconds_ignores_later_messages() {
        let mut r = rule(RuleKind::Absent, PatternType::Phrase, "hold on");
        r.within_first_seconds = 10;
        let c = r.compile().unwrap();
        assert!(c.passes(&[agent(0, "hello"), agent(10_000, "hold on")]));
        assert!(!c.passes(&[agent(0, "hello"), agent(9_999, "hold on")]));
    }

    #[test]
    fn limits_combine() {
        let messages =
            [customer(0, "hi"), agent(1_000, "hello"), agent(2_000, "thank you"), agent(3_000, "thank you")];
        let mut r = phrase("thank you");
        r.speaker = Some(Speaker::Agent);
        r.within_first_messages = 3;
        r.within_first_seconds = 2; // 2_000 ms excluded
        assert!(!r.compile().unwrap().passes(&messages));
        r.within_first_seconds = 3;
        assert!(r.compile().unwrap().passes(&messages));
        r.within_first_messages = 2;
        assert!(!r.compile().unwrap().passes(&messages));
    }

    #[test]
    fn empty_pattern_is_refused() {
        for r in [phrase(""), phrase("   \t\n "), regex_rule("")] {
            assert!(matches!(r.compile(), Err(RuleError::EmptyPattern)), "{r:?}");
            assert!(matches!(r.validate(), Err(RuleError::EmptyPattern)), "{r:?}");
        }
        // A regex that is only whitespace is a literal match, not empty.
        assert!(regex_rule(" ").validate().is_ok());
    }

    #[test]
    fn overlong_pattern_is_refused() {
        let at_limit = "a".repeat(MAX_PATTERN_BYTES);
        assert!(phrase(&at_limit).validate().is_ok());
        assert!(regex_rule(&at_limit).validate().is_ok());

        let over = "a".repeat(MAX_PATTERN_BYTES + 1);
        for r in [phrase(&over), regex_rule(&over)] {
            assert!(matches!(r.compile(), Err(RuleError::PatternTooLong { max_bytes: MAX_PATTERN_BYTES })));
        }
        // Bytes, not characters: 513 two-byte characters are 1026 bytes.
        let multibyte = "é".repeat(MAX_PATTERN_BYTES / 2 + 1);
        assert!(matches!(phrase(&multibyte).validate(), Err(RuleError::PatternTooLong { .. })));
        // Whitespace counts too: the limit is on the pattern as stored.
        let padded = format!("{}hi", " ".repeat(MAX_PATTERN_BYTES));
        assert!(matches!(phrase(&padded).validate(), Err(RuleError::PatternTooLong { .. })));
    }

    #[test]
    fn invalid_regex_is_refused_with_the_regex_error_as_source() {
        for pattern in ["(unclosed", "[z-a]", r"foo(?=bar)", r"\p{NotAClass}"] {
            let err = regex_rule(pattern).compile().unwrap_err();
            assert!(matches!(err, RuleError::InvalidRegex(_)), "{pattern}: {err:?}");
            let source = err.source().expect("regex error kept as source");
            let build_error =
                source.downcast_ref::<Box<BuildError>>().expect("source is the engine's BuildError");
            assert!(build_error.syntax_error().is_some());
            assert_eq!(err.to_string(), "AutoQA pattern is not a valid regular expression");
        }
        // The same text is fine as a phrase: it is matched literally.
        assert!(passes_on(&phrase("(unclosed"), "an (unclosed bracket"));
    }

    #[test]
    fn huge_regex_is_refused_by_the_size_limit() {
        for pattern in [r"(a{1000}){1000}", r"\w{50000}", r"\w{3,30}"] {
            let err = regex_rule(pattern).compile().unwrap_err();
            match &err {
                RuleError::PatternTooComplex { size_limit_bytes, source } => {
                    assert_eq!(*size_limit_bytes, MAX_COMPILED_REGEX_BYTES);
                    assert_eq!(source.size_limit(), Some(MAX_COMPILED_REGEX_BYTES));
                }
                other => panic!("{pattern}: expected PatternTooComplex, got {other:?}"),
            }
            assert!(err.source().unwrap().is::<Box<BuildError>>());
        }
        // Ordinary patterns, including modest Unicode classes, fit.
        for pattern in [r"\w+", r"\w{3,20}", r"(?i)[a-z]{1,200}", r"\d{1,100}"] {
            assert!(regex_rule(pattern).validate().is_ok(), "{pattern}");
        }
    }

    #[test]
    fn longest_phrases_compile() {
        // Words and separators at the byte limit stay under the size limit.
        let words = "Word ".repeat(MAX_PATTERN_BYTES / 5);
        assert!(words.len() <= MAX_PATTERN_BYTES);
        let c = phrase(&words).compile().unwrap();
        assert!(c.passes(&[agent(0, &words.to_uppercase())]));
        let punct = "?".repeat(MAX_PATTERN_BYTES);
        assert!(phrase(&punct).validate().is_ok());
    }

    #[test]
    fn validate_agrees_with_compile() {
        for r in [phrase("hello"), phrase(""), regex_rule("(x"), regex_rule("x+"), regex_rule(r"\w{50000}")] {
            assert_eq!(r.validate().is_ok(), r.compile().is_ok(), "{r:?}");
        }
    }

    #[test]
    fn compiled_rule_keeps_its_rule() {
        let mut r = phrase("hi");
        r.speaker = Some(Speaker::Customer);
        r.within_first_seconds = 7;
        assert_eq!(r.compile().unwrap().rule(), &r);
    }

    #[test]
    fn evaluation_is_deterministic() {
        let messages = [
            customer(0, "I was charged twice"),
            agent(1_500, "Sorry about that, I'll issue a REFUND now"),
            agent(9_000, "Thank you for calling"),
        ];
        let rules = [
            phrase("refund"),
            regex_rule(r"(?i)thank(s| you)"),
            rule(RuleKind::Absent, PatternType::Phrase, "calm down"),
        ];
        let first: Vec<bool> = rules.iter().map(|r| r.compile().unwrap().passes(&messages)).collect();
        let second: Vec<bool> = rules.iter().map(|r| r.compile().unwrap().passes(&messages)).collect();
        assert_eq!(first, vec![true, true, true]);
        assert_eq!(first, second);

        let compiled: Vec<CompiledRule> = rules.iter().map(|r| r.compile().unwrap()).collect();
        let scale = CriterionScale { weight: 1.0, min_value: 0.0, max_value: 1.0 };
        let criteria: Vec<RuleCriterion<'_>> = compiled
            .iter()
            .enumerate()
            .map(|(i, rule)| RuleCriterion { criterion_id: CriterionId(i as i64), scale, rule })
            .collect();
        assert_eq!(score_transcript(&criteria, &messages), score_transcript(&criteria, &messages));
    }

    #[test]
    fn score_transcript_gives_max_on_pass_and_min_on_fail() {
        let messages = [
            agent(0, "Hello, my name is Sam. How can I help?"),
            customer(2_000, "My order never arrived"),
            agent(4_000, "I'm sorry to hear that"),
        ];
        let greeting = phrase("how can I help?").compile().unwrap();
        let mut refund_rule = phrase("refund");
        refund_rule.speaker = Some(Speaker::Agent);
        let refund = refund_rule.compile().unwrap();
        let no_blame = rule(RuleKind::Absent, PatternType::Regex, r"(?i)\byour fault\b").compile().unwrap();

        let greeting_scale = CriterionScale { weight: 1.0, min_value: 0.0, max_value: 10.0 };
        let refund_scale = CriterionScale { weight: 2.0, min_value: 1.0, max_value: 5.0 };
        let blame_scale = CriterionScale { weight: 1.0, min_value: -1.0, max_value: 1.0 };
        let criteria = [
            RuleCriterion { criterion_id: CriterionId(30), scale: greeting_scale, rule: &greeting },
            RuleCriterion { criterion_id: CriterionId(10), scale: refund_scale, rule: &refund },
            RuleCriterion { criterion_id: CriterionId(20), scale: blame_scale, rule: &no_blame },
        ];
        let scores = score_transcript(&criteria, &messages);
        // In the order of `criteria`, not sorted by id.
        assert_eq!(scores, vec![(CriterionId(30), 10.0), (CriterionId(10), 1.0), (CriterionId(20), 1.0),]);
        // Full marks on two criteria of weight 1, none on the one of weight 2.
        let total = total_score(criteria.iter().zip(&scores).map(|(c, (_, v))| (c.scale, *v)));
        assert_eq!(total, 50.0);

        assert!(score_transcript(&[], &messages).is_empty());
        // On an empty transcript, Present rules fail and Absent rules pass.
        assert_eq!(
            score_transcript(&criteria, &[]),
            vec![(CriterionId(30), 0.0), (CriterionId(10), 1.0), (CriterionId(20), 1.0),]
        );
    }

    #[test]
    fn rule_json_round_trip_is_the_stored_format() {
        let mut r = phrase("thank you");
        r.speaker = Some(Speaker::Agent);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"present","pattern_type":"phrase","pattern":"thank you","speaker":"agent","within_first_messages":0,"within_first_seconds":0}"#
        );
        assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), r);

        let absent = Rule {
            kind: RuleKind::Absent,
            pattern_type: PatternType::Regex,
            pattern: r"\bcalm\s+down\b".to_owned(),
            speaker: None,
            within_first_messages: 3,
            within_first_seconds: 60,
        };
        let json = serde_json::to_string(&absent).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"absent","pattern_type":"regex","pattern":"\\bcalm\\s+down\\b","speaker":null,"within_first_messages":3,"within_first_seconds":60}"#
        );
        assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), absent);

        let customer = r#"{"kind":"present","pattern_type":"phrase","pattern":"hi","speaker":"customer","within_first_messages":1,"within_first_seconds":2}"#;
        let parsed: Rule = serde_json::from_str(customer).unwrap();
        assert_eq!(parsed.speaker, Some(Speaker::Customer));
        assert_eq!(serde_json::to_string(&parsed).unwrap(), customer);
    }
}
