//! Generated code for the scorekeeper gRPC contract (`proto/`), the
//! encoded file descriptor set that server reflection serves, and the
//! conversions of the wire's well-known types ([`time`]), the codec the
//! generated code uses ([`codec`]), and the words of the job states
//! ([`words`]).

pub mod codec;
pub mod time;
pub mod words;

#[allow(clippy::all, missing_docs)]
pub mod scorekeeper {
    pub mod v1 {
        tonic::include_proto!("scorekeeper.v1");
        pub mod coaching {
            tonic::include_proto!("scorekeeper.v1.coaching");
        }
    }
}

pub use scorekeeper::v1;
pub use scorekeeper::v1::coaching;

/// The largest gRPC message, request or response, in bytes as encoded: the
/// server and every client of `scorekeeper-client` refuse larger ones (the
/// server with RESOURCE_EXHAUSTED, before decoding), and the request limits
/// (`scorekeeper_domain::limits`) keep every valid request and response
/// under it. tonic's default is 4 MiB.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// The compiled descriptors of every `.proto` file, for reflection and tests.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("scorekeeper_descriptor");
