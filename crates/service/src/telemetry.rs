//! Every metric a `serve` process publishes, gathered from the crates that
//! publish them (each names and describes its own in its `metrics`
//! module): [`describe`] gives them to the recorder, [`metric_names`] lists
//! them for the docs check.

use metrics::{describe_counter, describe_gauge, describe_histogram};
use scorekeeper_analytics::metrics as analytics;
use scorekeeper_api::metrics as api;
use scorekeeper_autoqa::metrics as autoqa;
use scorekeeper_jobs::metrics as jobs;
use scorekeeper_sync::metrics as sync;

/// Describes every metric a `serve` process publishes. Call once at start,
/// after installing the recorder.
pub fn describe() {
    for &(name, unit, help) in
        [analytics::COUNTERS, jobs::COUNTERS, sync::COUNTERS, autoqa::COUNTERS, api::COUNTERS].concat().iter()
    {
        describe_counter!(name, unit, help);
    }
    for &(name, unit, help) in
        [analytics::GAUGES, jobs::GAUGES, sync::GAUGES, autoqa::GAUGES, api::GAUGES].concat().iter()
    {
        describe_gauge!(name, unit, help);
    }
    for &(name, unit, help) in
        [analytics::HISTOGRAMS, jobs::HISTOGRAMS, sync::HISTOGRAMS, autoqa::HISTOGRAMS, api::HISTOGRAMS]
            .concat()
            .iter()
    {
        describe_histogram!(name, unit, help);
    }
}

/// The names of every metric a `serve` process publishes, as [`describe`]
/// describes them.
pub fn metric_names() -> impl Iterator<Item = &'static str> {
    analytics::all().chain(jobs::all()).chain(sync::all()).chain(autoqa::all()).chain(api::all())
}
