//! Following a job until it ends, with a progress bar per activity.

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use scorekeeper_proto::v1::job_service_client::JobServiceClient;
use scorekeeper_proto::v1::{GetJobRequest, Job, JobState};

use crate::bearer::Authed;
use crate::error::{ClientError, Result};

/// How often the job is read again.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Polls the job `id` until it has ended (succeeded, failed or cancelled)
/// and returns it as it ended. Draws a bar per activity on standard error
/// (rows, partitions done of all, pages, rows/s across every worker, and
/// an ETA once the activity has counted its rows) and a line per failed attempt; `quiet` draws nothing (e.g. for
/// JSON output).
/// A job that fails and is retried is followed through its retries.
pub async fn follow(jobs: &mut JobServiceClient<Authed>, id: &str, quiet: bool) -> Result<Job> {
    let bars = MultiProgress::new();
    if quiet {
        bars.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style_known =
        ProgressStyle::with_template("{prefix:28} [{bar:30}] {human_pos}/{human_len} rows  {msg}  eta {eta}")
            .expect("a valid template")
            .progress_chars("=> ");
    let style_unknown = ProgressStyle::with_template("{prefix:28} {spinner} {human_pos} rows  {msg}")
        .expect("a valid template");
    let mut shown: Vec<ProgressBar> = Vec::new();
    loop {
        let job = jobs
            .get_job(GetJobRequest { id: id.to_owned() })
            .await
            .map_err(|s| ClientError::call("reading the job", s))?
            .into_inner()
            .job
            .ok_or(ClientError::Missing("job"))?;
        for (i, activity) in job.progress.iter().enumerate() {
            if shown.len() <= i {
                let bar = bars.add(ProgressBar::new_spinner().with_prefix(activity.activity.clone()));
                bar.set_style(style_unknown.clone());
                shown.push(bar);
            }
            let bar = &shown[i];
            if activity.rows_estimated > 0 && bar.length() != Some(activity.rows_estimated as u64) {
                bar.set_style(style_known.clone());
                bar.set_length(activity.rows_estimated as u64);
            }
            bar.set_position(activity.rows_done as u64);
            let partitions = match activity.partitions_total {
                0 => String::new(),
                total => format!("{}/{total} partitions  ", activity.partitions_done),
            };
            let rate =
                format!("{partitions}{} pages  {:.0} rows/s", activity.pages_done, activity.rows_per_second);
            bar.set_message(rate.clone());
            if activity.finished && !bar.is_finished() {
                bar.finish_with_message(format!("done, {rate}"));
            } else if !activity.finished {
                bar.tick();
            }
        }
        let state = JobState::try_from(job.state).unwrap_or(JobState::Unspecified);
        if matches!(state, JobState::Succeeded | JobState::Failed | JobState::Cancelled) {
            for bar in &shown {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
            return Ok(job);
        }
        if let Some(error) = &job.error
            && !quiet
        {
            bars.println(format!(
                "attempt {} failed ({}), retrying: {}",
                job.attempts, error.code, error.message
            ))
            .map_err(ClientError::Terminal)?;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
