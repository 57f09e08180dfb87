//! The bearer token every call carries.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::error::{ClientError, Result};

/// Adds `authorization: Bearer <token>` to every request; the server
/// derives the customer from the token, never from the request body.
#[derive(Clone)]
pub struct BearerToken(MetadataValue<Ascii>);

impl BearerToken {
    /// Fails when `token` cannot be a header value (not visible ASCII).
    pub fn new(token: &str) -> Result<BearerToken> {
        format!("Bearer {token}").parse().map(BearerToken).map_err(ClientError::BadToken)
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself: it is a credential.
        f.write_str("BearerToken(…)")
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A channel whose every call carries a [`BearerToken`].
pub type Authed = InterceptedService<Channel, BearerToken>;
