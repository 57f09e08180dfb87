//! The write load: tasks issuing CreateScorecard and UpdateScorecard over
//! gRPC, each request to a live API process at random, and a ledger of what
//! was acknowledged. A request counts as acknowledged only when it returned
//! OK with the scorecard; one that failed (an error, a dropped connection, a
//! timeout) may or may not have committed, and the checks allow both.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use scorekeeper_client::BearerToken;
use scorekeeper_domain::TemplateId;
use scorekeeper_proto::coaching::scorecard_service_client::ScorecardServiceClient;
use scorekeeper_proto::coaching::{CreateScorecardRequest, Score, Scorecard, UpdateScorecardRequest};
use scorekeeper_tests::env::BulkData;

use crate::fleet::ApiTargets;
use crate::world::World;

/// A call slower than this counts as failed (DEADLINE_EXCEEDED).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
struct TemplateCriteria {
    id: i64,
    criteria: Vec<i64>,
}

/// What the load writes against: the bulk import's templates and
/// conversations, and the scorecards it may update.
#[derive(Clone)]
pub struct Workload {
    conversation: TemplateCriteria,
    process: TemplateCriteria,
    conversations: Arc<Vec<i64>>,
    /// Scorecards to update: (id, is a process scorecard).
    known: Arc<Mutex<Vec<(i64, bool)>>>,
    /// Updates, in per cent of the requests (when there is something to update).
    pub update_percent: u32,
}

impl Workload {
    /// The load over `bulk` (a bulk import of `world.customer`): creates of
    /// both kinds, and updates of bulk-imported and newly created scorecards.
    pub async fn prepare(world: &World, bulk: &BulkData) -> anyhow::Result<Workload> {
        let criteria = |id: TemplateId| async move {
            let template = world.store.get_template(world.customer, id).await?.context("a bulk template")?;
            anyhow::Ok(TemplateCriteria {
                id: id.0,
                criteria: template.criteria.iter().map(|c| c.id.0).collect(),
            })
        };
        let conversation = criteria(bulk.conversation_template).await?;
        let process = criteria(bulk.process_template).await?;
        let client = world.store.pool().get().await?;
        let conversations: Vec<i64> = client
            .query(
                "SELECT id FROM conversations WHERE customer_id = $1 ORDER BY id LIMIT 500",
                &[&world.customer.0],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let known: Vec<(i64, bool)> = client
            .query(
                "SELECT id, template_type = 2 FROM scorecards WHERE customer_id = $1 ORDER BY random() LIMIT 2000",
                &[&world.customer.0],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        Ok(Workload {
            conversation,
            process,
            conversations: Arc::new(conversations),
            known: Arc::new(Mutex::new(known)),
            update_percent: 30,
        })
    }
}

/// The newest acknowledged state of one scorecard.
#[derive(Clone, Debug, PartialEq)]
pub struct AckedWrite {
    pub version: i64,
    /// (criterion, value), sorted by criterion.
    pub scores: Vec<(i64, f64)>,
}

/// Requests made and acknowledged, over all tasks.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    pub made: u64,
    pub acked: u64,
    pub creates_acked: u64,
    pub updates_acked: u64,
    pub failed_by_code: BTreeMap<String, u64>,
    /// Per scorecard id, the newest acknowledged write.
    pub writes: HashMap<i64, AckedWrite>,
}

impl Ledger {
    fn record(&mut self, scorecard: &Scorecard, create: bool) {
        self.acked += 1;
        if create {
            self.creates_acked += 1;
        } else {
            self.updates_acked += 1;
        }
        let mut scores: Vec<(i64, f64)> =
            scorecard.scores.iter().map(|s| (s.criterion_id, s.value)).collect();
        scores.sort_by_key(|s| s.0);
        let write = AckedWrite { version: scorecard.version, scores };
        match self.writes.get(&scorecard.id) {
            Some(known) if known.version >= write.version => {}
            _ => {
                self.writes.insert(scorecard.id, write);
            }
        }
    }
}

/// A running load; [`Load::stop`] ends it and returns the ledger.
pub struct Load {
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
    tasks: tokio::task::JoinSet<()>,
}

impl Load {
    /// `concurrency` tasks writing until stopped.
    pub fn start(
        workload: &Workload,
        targets: &ApiTargets,
        token: &str,
        concurrency: usize,
    ) -> anyhow::Result<Load> {
        let stop = Arc::new(AtomicBool::new(false));
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let bearer = BearerToken::new(token)?;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let task = Task {
                workload: workload.clone(),
                targets: targets.clone(),
                bearer: bearer.clone(),
                stop: stop.clone(),
                ledger: ledger.clone(),
            };
            tasks.spawn(task.run());
        }
        Ok(Load { stop, ledger, tasks })
    }

    /// The ledger so far.
    pub fn ledger(&self) -> Ledger {
        self.ledger.lock().unwrap().clone()
    }

    /// Stops the tasks (calls in flight finish or time out) and returns the ledger.
    pub async fn stop(mut self) -> Ledger {
        self.stop.store(true, Ordering::Relaxed);
        while self.tasks.join_next().await.is_some() {}
        self.ledger()
    }
}

struct Task {
    workload: Workload,
    targets: ApiTargets,
    bearer: BearerToken,
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
}

impl Task {
    async fn run(self) {
        while !self.stop.load(Ordering::Relaxed) {
            let Some(target) = self.targets.pick() else {
                // Every API process is down: nothing to send to.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let mut client = ScorecardServiceClient::with_interceptor(target.channel, self.bearer.clone());
            let update = self.pick_update();
            let outcome = match update {
                Some((id, process)) => {
                    let mut request = tonic::Request::new(UpdateScorecardRequest {
                        id,
                        scores: self.scores(process),
                        ..Default::default()
                    });
                    self.prepare(&mut request);
                    client.update_scorecard(request).await.map(|r| r.into_inner().scorecard)
                }
                None => {
                    let process = rand::rng().random_bool(0.5);
                    let mut request = tonic::Request::new(self.create(process));
                    self.prepare(&mut request);
                    client.create_scorecard(request).await.map(|r| r.into_inner().scorecard)
                }
            };
            let mut ledger = self.ledger.lock().unwrap();
            ledger.made += 1;
            match outcome {
                Ok(Some(scorecard)) => {
                    ledger.record(&scorecard, update.is_none());
                    if update.is_none() {
                        let process = scorecard.template_id == self.workload.process.id;
                        self.workload.known.lock().unwrap().push((scorecard.id, process));
                    }
                }
                Ok(None) => *ledger.failed_by_code.entry("OkWithoutScorecard".into()).or_default() += 1,
                Err(status) => *ledger.failed_by_code.entry(format!("{:?}", status.code())).or_default() += 1,
            }
        }
    }

    fn prepare<T>(&self, request: &mut tonic::Request<T>) {
        request.set_timeout(CALL_TIMEOUT);
    }

    fn pick_update(&self) -> Option<(i64, bool)> {
        let mut rng = rand::rng();
        if rng.random_range(0..100) >= self.workload.update_percent {
            return None;
        }
        let known = self.workload.known.lock().unwrap();
        if known.is_empty() {
            return None;
        }
        Some(known[rng.random_range(0..known.len())])
    }

    fn scores(&self, process: bool) -> Vec<Score> {
        let template = if process { &self.workload.process } else { &self.workload.conversation };
        let mut rng = rand::rng();
        template
            .criteria
            .iter()
            .map(|&criterion_id| Score { criterion_id, value: f64::from(rng.random_range(0..=10u8)) / 2.0 })
            .collect()
    }

    fn create(&self, process: bool) -> CreateScorecardRequest {
        let conversations = &self.workload.conversations;
        let conversation = conversations[rand::rng().random_range(0..conversations.len())];
        if process {
            CreateScorecardRequest {
                template_id: self.workload.process.id,
                agent_id: format!("agent-{}", conversation % 7),
                linked_conversation_ids: vec![conversation],
                scores: self.scores(true),
                ..Default::default()
            }
        } else {
            CreateScorecardRequest {
                template_id: self.workload.conversation.id,
                conversation_id: conversation,
                scores: self.scores(false),
                ..Default::default()
            }
        }
    }
}
