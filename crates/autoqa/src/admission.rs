//! The cost model that admits an AutoQA rule: what a rule may cost before
//! it is stored, and again before a stored rule is first used by a process.
//!
//! The `regex` engine is linear in the text, but the constant is the
//! pattern's: a lazy DFA scans a byte in a few nanoseconds, while the NFA
//! engine it falls back to costs time proportional to the states alive at
//! each byte. The fall-back is forced by a Unicode word boundary (`\b`) on
//! non-ASCII text (the lazy DFA cannot evaluate it there) or by a DFA that
//! needs more states than its cache holds, and counted repetitions
//! (`.{1,1000}`) are what keep many NFA states alive. Measured here:
//! `\b.{1,100}\bq` costs about 8.5 ms per 16 KiB of French or Russian text,
//! `\b.{1,1000}\bq` 230 ms, while a phrase costs microseconds.
//!
//! So a rule is admitted only when, in order:
//! 1. it compiles within `MAX_COMPILED_REGEX_BYTES` ([`Rule::compile`]);
//! 2. its counted repetitions, multiplied through nesting, stay within
//!    [`MAX_COUNTED_REPETITION`] (deterministic, free);
//! 3. its measured cost, scanning every match on each probe text (French,
//!    Russian, English words, and a long run of one letter after a
//!    non-ASCII one), is within [`MAX_RULE_CPU_PER_MESSAGE`] per largest
//!    message. The cost is CPU time of the measuring thread, so other load
//!    on the machine does not refuse a rule; a probe over budget is
//!    measured up to three times and the fastest run counts.
//!
//! The model bounds the cost of one rule on one message. What one call may
//! cost in all is bounded at run time by the call's budget and the scoring
//! pool (see the crate's head).

use std::time::Duration;

use cpu_time::ThreadTime;
use regex_syntax::hir::{Hir, HirKind};
use scorekeeper_domain::autoqa::{CompiledRule, PatternType, Rule, RuleError};
use scorekeeper_domain::limits::MAX_MESSAGE_TEXT_BYTES;

/// Largest counted repetition a pattern may hold: the upper bound of each
/// `{n,m}` (or `n` of `{n,}`), multiplied through nesting, so `a{1,50}` and
/// `(?:a{1,10}){1,20}` count 50 and 200. Unbounded `*` and `+` count 1:
/// they do not multiply the automaton.
pub const MAX_COUNTED_REPETITION: u64 = 200;

/// Most CPU time one rule may cost on one message of the largest size
/// ([`MAX_MESSAGE_TEXT_BYTES`]), as measured on the probe texts.
pub const MAX_RULE_CPU_PER_MESSAGE: Duration = Duration::from_millis(10);

/// Bytes of each probe text. Cost is linear in the text, so a quarter of
/// the largest message, timed and scaled by four, keeps admission quick.
const PROBE_BYTES: usize = 4096;

/// A rule the model admitted, compiled, with what it was measured to cost.
#[derive(Debug)]
pub struct Admitted {
    pub compiled: CompiledRule,
    /// Measured CPU time per message of [`MAX_MESSAGE_TEXT_BYTES`].
    pub cpu_per_message: Duration,
}

/// Why a rule is refused. The text is for the customer who wrote it.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(
        "AutoQA pattern repeats up to {found} times (counted repetitions multiplied through nesting); \
         the limit is {MAX_COUNTED_REPETITION}"
    )]
    Repetition { found: u64 },
    #[error(
        "AutoQA pattern costs about {} ms of CPU per {} KiB message on non-ASCII text; the budget is {} ms \
         (large counted repetitions next to \\b are the usual cause)",
        cost.as_millis(), MAX_MESSAGE_TEXT_BYTES / 1024, MAX_RULE_CPU_PER_MESSAGE.as_millis()
    )]
    TooCostly { cost: Duration },
}

/// Compiles `rule` and admits it by the model of the module's head.
/// Blocking for as long as the measurement takes (microseconds for an
/// ordinary rule, a few hundred milliseconds at worst): call it off the
/// async runtime.
pub fn admit(rule: &Rule) -> Result<Admitted, Refusal> {
    let compiled = rule.compile()?;
    if rule.pattern_type == PatternType::Regex {
        // The pattern compiled, so it parses with the same (default) syntax.
        if let Ok(hir) = regex_syntax::Parser::new().parse(&rule.pattern) {
            let found = counted_repetition(&hir);
            if found > MAX_COUNTED_REPETITION {
                return Err(Refusal::Repetition { found });
            }
        }
    }
    let cpu_per_message = measured_cost(&compiled);
    if cpu_per_message > MAX_RULE_CPU_PER_MESSAGE {
        return Err(Refusal::TooCostly { cost: cpu_per_message });
    }
    Ok(Admitted { compiled, cpu_per_message })
}

/// The largest product of counted repetition bounds along any path from the
/// root of `hir` to a leaf.
fn counted_repetition(hir: &Hir) -> u64 {
    match hir.kind() {
        HirKind::Repetition(repetition) => {
            let times = u64::from(repetition.max.unwrap_or(repetition.min).max(1));
            times.saturating_mul(counted_repetition(&repetition.sub))
        }
        HirKind::Capture(capture) => counted_repetition(&capture.sub),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => {
            subs.iter().map(counted_repetition).max().unwrap_or(1)
        }
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_) => 1,
    }
}

/// CPU time of a full scan of a message of the largest size, the worst over
/// the probe texts.
fn measured_cost(compiled: &CompiledRule) -> Duration {
    let scale = u32::try_from(MAX_MESSAGE_TEXT_BYTES / PROBE_BYTES).expect("small");
    let budget_per_probe = MAX_RULE_CPU_PER_MESSAGE / scale;
    let mut worst = Duration::ZERO;
    for probe in probes() {
        let mut fastest = Duration::MAX;
        for _ in 0..3 {
            let started = ThreadTime::now();
            std::hint::black_box(compiled.count_matches(probe));
            fastest = fastest.min(started.elapsed());
            if fastest <= budget_per_probe {
                break;
            }
        }
        worst = worst.max(fastest);
        if worst > budget_per_probe {
            break;
        }
    }
    worst * scale
}

/// The probe texts, each [`PROBE_BYTES`] long (cut on a character boundary).
fn probes() -> &'static [String; 4] {
    static PROBES: std::sync::LazyLock<[String; 4]> = std::sync::LazyLock::new(|| {
        let cut = |text: String| {
            let end =
                (0..=PROBE_BYTES.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            text[..end].to_owned()
        };
        [
            // Every printable ASCII character appears, so a pattern cannot
            // dodge the probe by requiring one it lacks.
            cut("Héllo, je voudrais un remboursement pour ma commande numéro 4521 (quelle excuse?) \
                 – Zoë, j'y crois: 30 % d'affaires & 7 jours! {[<#$*+/;=>@\\^_`|~]} merci beaucoup. "
                .repeat(32)),
            cut("Здравствуйте, я хотел бы вернуть заказ номер 4521, спасибо большое. ".repeat(64)),
            cut("Hello, I would like a refund for my order number 4521, thank you so much. ".repeat(64)),
            cut(format!("é{}", "a".repeat(PROBE_BYTES))),
        ]
    });
    &PROBES
}

#[cfg(test)]
mod tests {
    use scorekeeper_domain::autoqa::RuleKind;

    use super::*;

    fn regex_rule(pattern: &str) -> Rule {
        Rule {
            kind: RuleKind::Present,
            pattern_type: PatternType::Regex,
            pattern: pattern.to_owned(),
            speaker: None,
            within_first_messages: 0,
            within_first_seconds: 0,
        }
    }

    #[test]
    fn probes_are_the_size_the_scale_assumes() {
        for probe in probes() {
            assert!(probe.len() <= PROBE_BYTES && probe.len() > PROBE_BYTES - 4, "{}", probe.len());
        }
    }

    #[test]
    fn ordinary_rules_are_admitted_well_below_the_budget() {
        let phrase = Rule { pattern_type: PatternType::Phrase, ..regex_rule("thank you for calling") };
        for rule in [
            phrase,
            regex_rule(r"(?i)\b(?:refund|money back|chargeback)\b"),
            regex_rule(r"\border\s+#?\d{6}\b"),
            regex_rule(r"\b\w+\b\s+\b\w+\b"),
            regex_rule(r"(?i)[a-z]{1,200}"),
        ] {
            let admitted = admit(&rule).unwrap_or_else(|e| panic!("{}: {e}", rule.pattern));
            // Measured here: at most 1.3 ms (two words between Unicode
            // boundaries); half the budget leaves room for slower machines.
            let cost = admitted.cpu_per_message;
            assert!(cost < MAX_RULE_CPU_PER_MESSAGE / 2, "{}: {cost:?}", rule.pattern);
        }
    }

    #[test]
    fn counted_repetitions_multiply_through_nesting() {
        let count = |pattern: &str| counted_repetition(&regex_syntax::Parser::new().parse(pattern).unwrap());
        assert_eq!(count("abc"), 1);
        assert_eq!(count("a+b*"), 1);
        assert_eq!(count("a{1,50}"), 50);
        assert_eq!(count("a{7,}"), 7);
        assert_eq!(count("(?:a{1,10}){1,20}x{3}"), 200);
        assert_eq!(count("(x{2}|(y{1,5}){4})"), 20);
        assert!(matches!(admit(&regex_rule("(?:a{1,10}){1,21}")), Err(Refusal::Repetition { found: 210 })));
        assert!(admit(&regex_rule("(?:a{1,10}){1,20}")).is_ok());
    }

    #[test]
    fn a_costly_rule_within_the_repetition_bound_is_refused_by_its_measured_cost() {
        // Five branches of 100 counted repetitions (within the bound: the
        // branches do not nest), each keeping NFA states alive on text the
        // lazy DFA cannot scan (Unicode \b on non-ASCII): about 55 ms per
        // 16 KiB here, five times the 10 ms budget.
        let costly = r"(?:\b.{1,100}a|\b.{1,100}b|\b.{1,100}c|\b.{1,100}d|\b.{1,100}e)\bq";
        let error = admit(&regex_rule(costly)).unwrap_err();
        assert!(matches!(error, Refusal::TooCostly { .. }), "{error}");
        assert!(error.to_string().contains("budget is 10 ms"), "{error}");
    }

    #[test]
    fn compile_errors_come_first() {
        assert!(matches!(admit(&regex_rule("(")), Err(Refusal::Rule(RuleError::InvalidRegex(_)))));
        assert!(matches!(
            admit(&regex_rule(r"\w{50000}")),
            Err(Refusal::Rule(RuleError::PatternTooComplex { .. }))
        ));
    }
}
