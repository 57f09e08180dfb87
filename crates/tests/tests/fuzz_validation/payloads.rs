//! Property 3: job payloads as bytes, and as the JSON the workflow reads;
//! and the ListJobs token bug the wild property found.

use super::*;

/// Sends bytes as they are, without encoding: what a broken client sends.
#[derive(Clone, Copy, Debug, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// CreateJob with `body` as the request message, bytes as they are.
async fn create_job_raw(env: &TestEnv, token: &str, body: Vec<u8>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(env.channel());
    grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
    let mut request = tonic::Request::new(body);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ASCII"));
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/scorekeeper.v1.JobService/CreateJob");
    grpc.unary(request, path, RawCodec).await.map(drop)
}

/// A byte edit of a valid encoding.
#[derive(Clone, Debug)]
enum Edit {
    Flip {
        at: usize,
        bits: u8,
    },
    Truncate {
        at: usize,
    },
    Insert {
        at: usize,
        byte: u8,
    },
    Remove {
        at: usize,
    },
    /// Appends a varint field, at the top level or inside the reindex
    /// payload: valid protobuf that merges into (or overrides) what is there.
    Field {
        in_payload: bool,
        number: u32,
        value: u64,
    },
}

fn edit(bytes: &mut Vec<u8>, edits: &[Edit]) {
    for e in edits {
        let len = bytes.len().max(1);
        match *e {
            Edit::Flip { at, bits } if !bytes.is_empty() => bytes[at % len] ^= bits,
            Edit::Truncate { at } => bytes.truncate(at % len),
            Edit::Insert { at, byte } => bytes.insert(at % (bytes.len() + 1), byte),
            Edit::Remove { at } if !bytes.is_empty() => drop(bytes.remove(at % len)),
            Edit::Field { in_payload, number, value } => {
                let mut field = Vec::new();
                prost::encoding::encode_key(number, prost::encoding::WireType::Varint, &mut field);
                prost::encoding::encode_varint(value, &mut field);
                if in_payload {
                    // CreateJobRequest.payload (2) → JobPayload.reindex_conversations (1).
                    for outer in [1, 2] {
                        let mut wrapped = Vec::new();
                        prost::encoding::encode_key(
                            outer,
                            prost::encoding::WireType::LengthDelimited,
                            &mut wrapped,
                        );
                        prost::encoding::encode_varint(field.len() as u64, &mut wrapped);
                        wrapped.extend_from_slice(&field);
                        field = wrapped;
                    }
                }
                bytes.extend_from_slice(&field);
            }
            _ => {}
        }
    }
}

/// Edits of bytes: most break the encoding.
fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let one = prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, bits)| Edit::Flip { at, bits }),
        any::<usize>().prop_map(|at| Edit::Truncate { at }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert { at, byte }),
        any::<usize>().prop_map(|at| Edit::Remove { at }),
    ];
    vec(one, 1..4)
}

/// Appended fields: mostly still decodable, with odd values.
fn field_edits() -> impl Strategy<Value = Vec<Edit>> {
    let value = prop_oneof![0..4u64, Just(u64::from(u32::MAX)), any::<u64>()];
    vec(
        (any::<bool>(), 1..16u32, value).prop_map(|(in_payload, number, value)| Edit::Field {
            in_payload,
            number,
            value,
        }),
        1..4,
    )
}

/// The bytes of a CreateJob request: arbitrary, or a valid one edited.
fn job_request_bytes(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => vec(any::<u8>(), 0..48),
        1 => edits().prop_map({
            let valid = valid.clone();
            move |edits| {
                let mut bytes = valid.clone();
                edit(&mut bytes, &edits);
                bytes
            }
        }),
        1 => field_edits().prop_map(move |edits| {
            let mut bytes = valid.clone();
            edit(&mut bytes, &edits);
            bytes
        }),
    ]
}

#[tokio::test]
async fn job_payloads_decode_to_a_clean_answer() {
    // Every accepted payload queues a job, with no worker to run them: the
    // queue limit would otherwise answer for the payloads it is to judge.
    let limits = TenantLimits { max_queued_jobs_per_customer: 100_000, ..TenantLimits::default() };
    let env = TestEnv::start_with(Options { worker: false, limits, ..Options::default() }).await;
    let customer = env.customer("payloads").await;
    let handler =
        scorekeeper_sync::job_registry(env.store.clone(), env.analytics.clone(), ReindexSettings::default());
    let mut valid = valid_reindex(&customer);
    valid.conversation_ids = vec![1, 2, 300];
    valid.reindex_scorecard_types.push(pb::ScorecardTemplateType::Process as i32);
    let encoded = reindex_request(valid).encode_to_vec();
    let jobs = customer.jobs();
    let (env, customer, handler) = (&env, &customer, &handler);
    let tally = &Tally::default();

    // As the server decodes them (prost), then judges them.
    run_cases("CreateJob bytes, arbitrary and edited", cases(300), job_request_bytes(encoded), |bytes| {
        let mut jobs = jobs.clone();
        async move {
            let _ = v1::JobPayload::decode(bytes.as_slice());
            let jobs_before = job_tables(env).await;
            match v1::CreateJobRequest::decode(bytes.as_slice()) {
                Ok(request) => {
                    let answer = jobs.create_job(request).await;
                    tally.count(&answer.as_ref().map(drop).map_err(Clone::clone));
                    let job = match answer {
                        Ok(answer) => answer.into_inner().job.ok_or("CreateJob answered without a job")?,
                        Err(status) => {
                            judge("scorekeeper.v1.CreateJobRequest", &Err(status))?;
                            return match job_tables(env).await == jobs_before {
                                true => Ok(()),
                                false => Err("a refused CreateJob changed the job tables".into()),
                            };
                        }
                    };
                    // Accepted: the stored payload is one the workflow reads.
                    let id = job.id.parse().map_err(|e| format!("a job id that is not a UUID: {e}"))?;
                    let stored = env.jobs.get_job(id, None).await.map_err(|e| e.to_string())?;
                    let payload = stored.ok_or("the created job is not stored")?.payload;
                    handler
                        .activities(JOB_TYPE, &payload)
                        .map_err(|e| format!("a stored payload does not decode: {e}"))?;
                    Ok(())
                }
                Err(_) => {
                    // Undecodable: the server must refuse it without writing
                    // and keep serving. tonic answers INTERNAL for a body
                    // that is not the message (RELIABILITY.md).
                    let status = create_job_raw(env, &customer.token, bytes).await.err().ok_or("accepted")?;
                    tally.note(format!("undecodable, {:?}", status.code()));
                    if !matches!(status.code(), Code::Internal | Code::InvalidArgument) {
                        return Err(format!("undecodable body answered {status:?}"));
                    }
                    if job_tables(env).await != jobs_before {
                        return Err("an undecodable CreateJob changed the job tables".into());
                    }
                    Ok(())
                }
            }
        }
    })
    .await;
    tally.print("answers");
    jobs.clone()
        .list_jobs(v1::ListJobsRequest::default())
        .await
        .expect("the server still answers after the garbage");

    // As the workflow reads them back from the jobs table.
    let spec = ReindexSpec {
        scope: scorekeeper_domain::reindex::ReindexScope {
            customer_id: Some(customer.id),
            window: Some(scorekeeper_domain::reindex::TimeWindow {
                start: chrono::DateTime::from_timestamp(T0, 0).expect("a time"),
                end: chrono::DateTime::from_timestamp(T0 + 3600, 0).expect("a time"),
                base: scorekeeper_domain::reindex::TimeBase::UpdatedAt,
            }),
            conversation_ids: vec![scorekeeper_domain::ConversationId(5)],
        },
        scorecard_types: vec![scorekeeper_domain::TemplateType::Process],
        conversations_batch_size: Some(10),
        process_scorecards_batch_size: None,
    };
    let json = serde_json::to_vec(&spec).expect("a spec serialises");
    let tokens = prop::sample::select(vec![
        "null",
        "-1",
        "0",
        "1e999",
        "4294967296",
        "\"x\"",
        "[]",
        "{}",
        "true",
        "\"conversation\"",
        "\"process\"",
        "\"updated_at\"",
        "\"2026-13-01T00:00:00Z\"",
        "\"+275760-09-13T00:00:00Z\"",
        ",",
        ":",
        "\\u0000",
    ]);
    let json_strategy = prop_oneof![
        1 => vec(any::<u8>(), 0..48),
        2 => edits().prop_map({
            let json = json.clone();
            move |edits| {
                let mut bytes = json.clone();
                edit(&mut bytes, &edits);
                bytes
            }
        }),
        2 => (any::<usize>(), any::<usize>(), tokens).prop_map(move |(at, len, token)| {
            // Replace a span with a JSON token of another type or value.
            let at = at % json.len();
            let end = (at + len % 12).min(json.len());
            let mut bytes = json[..at].to_vec();
            bytes.extend_from_slice(token.as_bytes());
            bytes.extend_from_slice(&json[end..]);
            bytes
        }),
    ];
    let (decoded, unchecked) = (&std::sync::atomic::AtomicU32::new(0), &std::sync::atomic::AtomicU32::new(0));
    run_cases(
        "stored reindex payloads, arbitrary and edited JSON",
        cases(3000),
        json_strategy,
        |bytes| async move {
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return Ok(()) };
            match (handler.activities(JOB_TYPE, &value), serde_json::from_value::<ReindexSpec>(value)) {
                (Ok(activities), Ok(spec)) => {
                    decoded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if !as_the_api_accepts(&spec) {
                        unchecked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    let known = ["reindex_conversations", "reindex_process_scorecards"];
                    if activities.is_empty() || activities.iter().any(|a| !known.contains(&a.as_str())) {
                        return Err(format!("activities {activities:?}"));
                    }
                    // What decodes is a spec: it survives another round trip.
                    let again: ReindexSpec =
                        serde_json::from_value(serde_json::to_value(&spec).map_err(|e| e.to_string())?)
                            .map_err(|e| format!("a decoded spec does not decode again: {e}"))?;
                    (again == spec)
                        .then_some(())
                        .ok_or_else(|| "a decoded spec changed in a round trip".into())
                }
                (Err(error), Err(_)) if !error.to_string().is_empty() => Ok(()),
                (activities, spec) => {
                    Err(format!("the handler and the spec disagree: {activities:?} / {spec:?}"))
                }
            }
        },
    )
    .await;
    eprintln!(
        "  of which {} decoded to a spec, {} of them one CreateJob would refuse (the workflow runs it anyway)",
        decoded.load(std::sync::atomic::Ordering::Relaxed),
        unchecked.load(std::sync::atomic::Ordering::Relaxed)
    );
}

fn as_the_api_accepts(spec: &ReindexSpec) -> bool {
    let batch_ok = |b: Option<u32>| b.is_none_or(|n| (1..=100_000).contains(&n));
    spec.scope.customer_id.is_none_or(|c| c.0 > 0)
        && spec.scope.window.is_none_or(|w| w.end > w.start)
        && spec.scope.conversation_ids.iter().all(|c| c.0 > 0)
        && batch_ok(spec.conversations_batch_size)
        && batch_ok(spec.process_scorecards_batch_size)
}

/// A ListJobs token is `<created_at micros>:<id>`; a time chrono accepts
/// but Postgres cannot hold (before 4713 BC) reaches Postgres and comes
/// back INTERNAL. `parse_page_token` refuses times outside years 1 to
/// 9999, as `validate::timestamp` does.
#[tokio::test]
async fn a_list_jobs_token_postgres_cannot_hold_is_invalid_argument() {
    let env = TestEnv::start_with(Options { worker: false, ..Options::default() }).await;
    let customer = env.customer("tokens").await;
    let mut jobs = customer.jobs();
    for micros in [i64::MIN, -215_513_338_954_073_554, -62_135_596_800_000_001, 253_402_300_800_000_000] {
        let page_token = format!("{micros}:5f0c3b9e-8a51-4c4e-9d7e-2f6a1b3c4d5e");
        let status = jobs
            .list_jobs(v1::ListJobsRequest { page_token: page_token.clone(), ..Default::default() })
            .await
            .expect_err("a token this server never issued");
        assert_eq!(status.code(), Code::InvalidArgument, "{page_token}: {status:?}");
        assert_eq!(named_field(&status), "page_token", "{page_token}: {status:?}");
    }
}
