//! Typed clients of every service, all carrying one token, taking and
//! sending messages up to the contract's limit (`MAX_MESSAGE_BYTES`).

use std::time::Duration;

use scorekeeper_proto::MAX_MESSAGE_BYTES;
use scorekeeper_proto::coaching::scorecard_service_client::ScorecardServiceClient;
use scorekeeper_proto::v1::analytics_service_client::AnalyticsServiceClient;
use scorekeeper_proto::v1::auto_qa_service_client::AutoQaServiceClient;
use scorekeeper_proto::v1::conversation_service_client::ConversationServiceClient;
use scorekeeper_proto::v1::job_service_client::JobServiceClient;
use tonic::transport::Channel;

use crate::bearer::{Authed, BearerToken};
use crate::channel;
use crate::error::Result;

/// A channel to the API and the token its calls carry. Cheap to clone; each
/// accessor returns a new client on the same channel (clients are cheap,
/// and a `&mut` client per task avoids sharing one).
#[derive(Clone, Debug)]
pub struct Api {
    channel: Channel,
    bearer: BearerToken,
}

impl Api {
    /// Calls on `channel` carrying `bearer`.
    pub fn new(channel: Channel, bearer: BearerToken) -> Api {
        Api { channel, bearer }
    }

    /// Connects to `url` now ([`channel::connect`]); every call may take up
    /// to `call_timeout`.
    pub async fn connect(url: &str, token: &str, call_timeout: Duration) -> Result<Api> {
        let bearer = BearerToken::new(token)?;
        Ok(Api { channel: channel::connect(url, call_timeout).await?, bearer })
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    pub fn bearer(&self) -> &BearerToken {
        &self.bearer
    }

    pub fn scorecards(&self) -> ScorecardServiceClient<Authed> {
        ScorecardServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn conversations(&self) -> ConversationServiceClient<Authed> {
        ConversationServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn autoqa(&self) -> AutoQaServiceClient<Authed> {
        AutoQaServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn analytics(&self) -> AnalyticsServiceClient<Authed> {
        AnalyticsServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn jobs(&self) -> JobServiceClient<Authed> {
        JobServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}
