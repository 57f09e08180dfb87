//! Compiled templates, kept per template and bounded by bytes, so a call
//! compiles and measures a template's rules only the first time this
//! process scores with it (the cost was every call: 100 criteria near the
//! size limit took RSS from 147 to 320 MB per call).
//!
//! Templates are immutable (there is no update of a template), so the
//! template's id, with its customer's, names one version for good; should
//! templates ever change in place, the key must take their version.

use std::sync::Arc;

use quick_cache::Weighter;
use scorekeeper_domain::autoqa::{CompiledRule, RuleCriterion};
use scorekeeper_domain::scorecard::Template;
use scorekeeper_domain::scorecard_write::autoqa_template;
use scorekeeper_domain::scoring::CriterionScale;
use scorekeeper_domain::{CriterionId, CustomerId, Invalid, TemplateId};

use crate::admission;

/// A template's rule criteria, compiled and admitted, in template order.
#[derive(Debug)]
pub struct CompiledTemplate {
    rules: Vec<(CriterionId, CriterionScale, CompiledRule)>,
    heap_bytes: usize,
}

impl CompiledTemplate {
    /// Checks `template` as AutoQA must (a known conversation template with
    /// at least one rule) and compiles each rule through the admission cost
    /// model: a stored rule from before the model existed is refused here,
    /// naming its criterion, rather than run. Blocking: call it on the
    /// scoring pool.
    pub fn compile(template: Option<&Template>, template_id: TemplateId) -> Result<Self, Invalid> {
        let checked = autoqa_template(template, template_id, admission::admit)?;
        let rules: Vec<_> = checked
            .rules
            .into_iter()
            .map(|(criterion, admitted)| (criterion.id, criterion.scale, admitted.compiled))
            .collect();
        let heap_bytes = rules.iter().map(|(_, _, rule)| rule.heap_bytes()).sum::<usize>() + 64 * rules.len();
        Ok(CompiledTemplate { rules, heap_bytes })
    }

    /// The criteria to score, borrowing the compiled rules.
    pub fn criteria(&self) -> Vec<RuleCriterion<'_>> {
        self.rules
            .iter()
            .map(|(criterion_id, scale, rule)| RuleCriterion {
                criterion_id: *criterion_id,
                scale: *scale,
                rule,
            })
            .collect()
    }

    /// Heap bytes of the compiled rules (their search caches aside).
    pub fn heap_bytes(&self) -> usize {
        self.heap_bytes
    }
}

type Key = (CustomerId, TemplateId);

#[derive(Clone, Debug)]
struct ByBytes;

impl Weighter<Key, Arc<CompiledTemplate>> for ByBytes {
    fn weight(&self, _key: &Key, template: &Arc<CompiledTemplate>) -> u64 {
        u64::try_from(template.heap_bytes).unwrap_or(u64::MAX).max(1)
    }
}

/// Compiled templates by (customer, template), at most `capacity_bytes`
/// of them; the least recently used leave first. A template larger than
/// the whole capacity is compiled for its call and not kept.
#[derive(Clone)]
pub struct TemplateCache {
    templates: Arc<quick_cache::sync::Cache<Key, Arc<CompiledTemplate>, ByBytes>>,
}

impl std::fmt::Debug for TemplateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateCache").field("bytes", &self.templates.weight()).finish()
    }
}

impl TemplateCache {
    pub fn new(capacity_bytes: u64) -> TemplateCache {
        // The item estimate only sizes the table: ~64 KiB per template.
        let items = usize::try_from(capacity_bytes / 65_536).unwrap_or(usize::MAX).clamp(16, 100_000);
        TemplateCache {
            templates: Arc::new(quick_cache::sync::Cache::with_weighter(
                items,
                capacity_bytes.max(1),
                ByBytes,
            )),
        }
    }

    /// The template's compiled rules, from the cache or from `compile`
    /// (called on a miss only; then kept). Calls that miss the same template
    /// at once compile it once: the others wait for the first (and compile
    /// themselves only if it failed), so a burst of calls holds one copy,
    /// not one per call.
    pub async fn get_or_compile<E, F: Future<Output = Result<CompiledTemplate, E>>>(
        &self,
        customer_id: CustomerId,
        template_id: TemplateId,
        compile: impl FnOnce() -> F,
    ) -> Result<Arc<CompiledTemplate>, E> {
        match self.templates.get_value_or_guard_async(&(customer_id, template_id)).await {
            Ok(compiled) => Ok(compiled),
            Err(guard) => {
                let compiled = Arc::new(compile().await?);
                // Err only if the entry was removed meanwhile: still ours to use.
                let _ = guard.insert(compiled.clone());
                Ok(compiled)
            }
        }
    }

    /// Bytes the cache holds now.
    pub fn bytes(&self) -> u64 {
        self.templates.weight()
    }
}
