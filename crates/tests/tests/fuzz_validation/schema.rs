//! The request schema, from the descriptors the server was built with, and
//! what an answer may be.

use super::*;

/// Message name → field name → (type name of a message field, repeated).
pub(super) type Schema = BTreeMap<String, BTreeMap<String, (Option<String>, bool)>>;

pub(super) fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let set = prost_types::FileDescriptorSet::decode(scorekeeper_proto::FILE_DESCRIPTOR_SET)
            .expect("the compiled descriptor set decodes");
        let mut schema = Schema::new();
        fn add(schema: &mut Schema, prefix: &str, message: &prost_types::DescriptorProto) {
            let name = format!("{prefix}.{}", message.name());
            let fields = message
                .field
                .iter()
                .map(|f| {
                    let repeated = f.label() == prost_types::field_descriptor_proto::Label::Repeated;
                    let nested = f.type_name.as_ref().map(|t| t.trim_start_matches('.').to_owned());
                    (f.name().to_owned(), (nested, repeated))
                })
                .collect();
            schema.insert(name.clone(), fields);
            for nested in &message.nested_type {
                add(schema, &name, nested);
            }
        }
        for file in &set.file {
            for message in &file.message_type {
                add(&mut schema, file.package(), message);
            }
        }
        schema
    })
}

/// Whether `path` (`a.b[3].c`) names a field of message `request_type`,
/// with an index exactly where the field is repeated.
pub(super) fn names_a_field(request_type: &str, path: &str) -> bool {
    let mut message = Some(request_type.to_owned());
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let (name, indexed) = match part.split_once('[') {
            Some((name, rest)) if rest.strip_suffix(']').is_some_and(|i| i.parse::<usize>().is_ok()) => {
                (name, true)
            }
            Some(_) => return false,
            None => (*part, false),
        };
        let Some(fields) = message.as_ref().and_then(|m| schema().get(m)) else { return false };
        let Some((nested, repeated)) = fields.get(name) else { return false };
        let last = i + 1 == parts.len();
        // An index exactly on lists, and a list entered only by an index.
        if (indexed && !repeated) || (*repeated && !indexed && !last) {
            return false;
        }
        message = nested.clone();
    }
    true
}

/// The codes a call may answer with while both databases are up.
pub(super) fn judge(request_type: &str, result: &Result<(), Status>) -> Result<(), String> {
    let Err(status) = result else { return Ok(()) };
    match status.code() {
        Code::InvalidArgument if names_a_field(request_type, named_field(status)) => Ok(()),
        Code::InvalidArgument => {
            Err(format!("INVALID_ARGUMENT names no field of {request_type}: {:?}", status.message()))
        }
        Code::NotFound | Code::PermissionDenied | Code::Aborted => Ok(()),
        code => Err(format!("answered {code:?}: {:?}", status.message())),
    }
}

#[test]
fn field_paths_are_checked_against_the_schema() {
    let request = "scorekeeper.v1.coaching.CreateScorecardTemplateRequest";
    assert!(names_a_field(request, "name"));
    assert!(names_a_field(request, "criteria[3].autoqa_rule.pattern"));
    assert!(names_a_field(request, "criteria"), "a list as a whole");
    assert!(!names_a_field(request, "criteria.autoqa_rule.pattern"), "inside a list without an index");
    assert!(!names_a_field(request, "name[0]"), "an index on a field that is not repeated");
    assert!(!names_a_field(request, "criteria[0].colour"));
    assert!(!names_a_field(request, ""));
    let job = "scorekeeper.v1.CreateJobRequest";
    assert!(names_a_field(job, "payload.reindex_conversations.reindex_scorecard_types[1]"));
    assert!(!names_a_field(job, "payload.reindex_conversations.reindex_scorecard_types[x]"));
}
