//! The proto contract as compiled into the server (enum numbers, reserved
//! numbers and names that must never be reused, the reindex payload's
//! field), and that stock gRPC tooling works against the server: the
//! standard health service and server reflection, v1 and v1alpha.

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};
use scorekeeper_tests::TestEnv;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The services the server implements, as reflection and health name them.
const SERVED: [&str; 4] = [
    "scorekeeper.v1.coaching.ScorecardService",
    "scorekeeper.v1.ConversationService",
    "scorekeeper.v1.AutoQAService",
    "scorekeeper.v1.AnalyticsService",
];

fn descriptors() -> FileDescriptorSet {
    FileDescriptorSet::decode(scorekeeper_proto::FILE_DESCRIPTOR_SET).expect("FILE_DESCRIPTOR_SET decodes")
}

/// The top-level enum `full_name` (`package.Name`).
fn find_enum<'a>(set: &'a FileDescriptorSet, full_name: &str) -> &'a EnumDescriptorProto {
    set.file
        .iter()
        .flat_map(|f| f.enum_type.iter().map(move |e| (f.package(), e)))
        .find(|(package, e)| format!("{package}.{}", e.name()) == full_name)
        .map(|(_, e)| e)
        .unwrap_or_else(|| panic!("enum {full_name} is not in the descriptor set"))
}

/// The top-level message `full_name` (`package.Name`).
fn find_message<'a>(set: &'a FileDescriptorSet, full_name: &str) -> &'a DescriptorProto {
    set.file
        .iter()
        .flat_map(|f| f.message_type.iter().map(move |m| (f.package(), m)))
        .find(|(package, m)| format!("{package}.{}", m.name()) == full_name)
        .map(|(_, m)| m)
        .unwrap_or_else(|| panic!("message {full_name} is not in the descriptor set"))
}

/// Whether an enum reserves `number` (enum ranges are inclusive).
fn enum_reserves(e: &EnumDescriptorProto, number: i32) -> bool {
    e.reserved_range.iter().any(|r| (r.start()..=r.end()).contains(&number))
}

/// Whether a message reserves `number` (message ranges end exclusively).
fn message_reserves(m: &DescriptorProto, number: i32) -> bool {
    m.reserved_range.iter().any(|r| (r.start()..r.end()).contains(&number))
}

#[test]
fn scorecard_template_type_numbers_are_fixed() {
    let set = descriptors();
    let e = find_enum(&set, "scorekeeper.v1.coaching.ScorecardTemplateType");
    let values: Vec<(&str, i32)> = e.value.iter().map(|v| (v.name(), v.number())).collect();
    assert_eq!(
        values,
        [
            ("SCORECARD_TEMPLATE_TYPE_UNSPECIFIED", 0),
            ("SCORECARD_TEMPLATE_TYPE_CONVERSATION", 1),
            ("SCORECARD_TEMPLATE_TYPE_PROCESS", 2),
        ],
        "ScorecardTemplateType values: stored rows and old clients carry these numbers"
    );
}

#[test]
fn retired_job_type_stays_reserved() {
    let set = descriptors();
    let e = find_enum(&set, "scorekeeper.v1.JobType");
    assert!(
        enum_reserves(e, 61),
        "JobType must reserve 61 (was JOB_TYPE_REINDEX_PROCESS_SCORECARDS); reserved: {:?}",
        e.reserved_range
    );
    assert!(
        e.reserved_name.iter().any(|n| n == "JOB_TYPE_REINDEX_PROCESS_SCORECARDS"),
        "JobType must reserve the name JOB_TYPE_REINDEX_PROCESS_SCORECARDS; reserved: {:?}",
        e.reserved_name
    );
    let reused: Vec<&str> = e
        .value
        .iter()
        .filter(|v| v.number() == 61 || v.name() == "JOB_TYPE_REINDEX_PROCESS_SCORECARDS")
        .map(|v| v.name())
        .collect();
    assert!(reused.is_empty(), "JobType reuses the retired value: {reused:?}");
}

#[test]
fn retired_job_payload_field_stays_reserved() {
    let set = descriptors();
    let m = find_message(&set, "scorekeeper.v1.JobPayload");
    assert!(
        message_reserves(m, 59),
        "JobPayload must reserve field 59 (was ReindexProcessScorecardsPayload); reserved: {:?}",
        m.reserved_range
    );
    let reused: Vec<&str> = m.field.iter().filter(|f| f.number() == 59).map(|f| f.name()).collect();
    assert!(reused.is_empty(), "JobPayload reuses field 59: {reused:?}");
}

#[test]
fn reindex_payload_carries_scorecard_types() {
    let set = descriptors();
    let m = find_message(&set, "scorekeeper.v1.ReindexConversationsPayload");
    let field = m
        .field
        .iter()
        .find(|f| f.name() == "reindex_scorecard_types")
        .expect("ReindexConversationsPayload.reindex_scorecard_types exists");
    assert_eq!(field.number(), 13, "reindex_scorecard_types field number");
    assert_eq!(field.label(), Label::Repeated, "reindex_scorecard_types label");
    assert_eq!(field.r#type(), Type::Enum, "reindex_scorecard_types type");
    assert_eq!(
        field.type_name(),
        ".scorekeeper.v1.coaching.ScorecardTemplateType",
        "reindex_scorecard_types element type"
    );
}

#[tokio::test]
async fn health_service_reports_serving() {
    let env = TestEnv::start().await;
    // No credentials: health checks come from load balancers and probes.
    let mut health = HealthClient::new(env.channel());
    for service in std::iter::once("").chain(SERVED) {
        let status = health
            .check(HealthCheckRequest { service: service.into() })
            .await
            .unwrap_or_else(|e| panic!("health check of {service:?}: {e:?}"))
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "health of {service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest { service: "scorekeeper.v1.NoSuchService".into() })
        .await
        .expect_err("health check of an unknown service");
    assert_eq!(unknown.code(), Code::NotFound, "health of an unknown service");
}

/// Asks reflection for its services with one `ListServices` request. Both
/// protocol versions have the same shape; this macro spells it once.
macro_rules! list_services {
    ($version:ident, $channel:expr) => {{
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;

        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = ServerReflectionClient::new($channel)
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .expect(concat!("reflection ", stringify!($version), " answers"))
            .into_inner();
        let response = responses
            .message()
            .await
            .expect(concat!("reflection ", stringify!($version), " streams"))
            .expect(concat!("reflection ", stringify!($version), " sends a response"));
        match response.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|s| s.name).collect::<Vec<String>>()
            }
            other => panic!("reflection {}: expected a service list, got {other:?}", stringify!($version)),
        }
    }};
}

#[tokio::test]
async fn reflection_lists_the_services_in_both_versions() {
    let env = TestEnv::start().await;
    let v1 = list_services!(v1, env.channel());
    let v1alpha = list_services!(v1alpha, env.channel());
    for (version, services) in [("v1", &v1), ("v1alpha", &v1alpha)] {
        let own = format!("grpc.reflection.{version}.ServerReflection");
        for expected in SERVED.iter().chain(&["grpc.health.v1.Health", own.as_str()]) {
            assert!(
                services.iter().any(|s| s == expected),
                "reflection {version} does not list {expected}: {services:?}"
            );
        }
    }
    // Apart from each listing itself, both versions describe one server.
    let others = |services: Vec<String>| {
        let mut services: Vec<String> =
            services.into_iter().filter(|s| !s.starts_with("grpc.reflection.")).collect();
        services.sort();
        services
    };
    assert_eq!(others(v1), others(v1alpha), "reflection v1 and v1alpha list different services");
}
