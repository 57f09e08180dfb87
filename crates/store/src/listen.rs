//! Listening on a Postgres notification channel on a connection of its own,
//! reconnecting after losing it, and telling the caller when the listener
//! is in place and when it was lost: a notification sent while no listener
//! was connected is never delivered, so a caller that keeps state by them
//! must treat a loss as "anything may have changed".

use std::time::Duration;

use futures::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::Store;
use crate::error::Result;

/// What a listener heard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heard {
    /// `LISTEN` is in place: every notification committed from now on will
    /// be delivered (until `Lost`).
    Listening,
    /// A notification, with its payload.
    Notification(String),
    /// The connection was lost or failed; notifications may be missed until
    /// the next `Listening` (a reconnect is tried every second).
    Lost,
}

/// Time between two connection attempts of a listener.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

impl Store {
    /// Calls `heard` with what the Postgres `channel` (a plain identifier)
    /// delivers, until the future is dropped; reconnects after losing
    /// Postgres.
    pub async fn listen(&self, channel: &str, mut heard: impl FnMut(Heard)) {
        loop {
            match self.listen_once(channel, &mut heard).await {
                Ok(()) => tracing::warn!(channel, "listener connection closed; reconnecting"),
                Err(error) => tracing::warn!(channel, %error, "listener failed; reconnecting"),
            }
            heard(Heard::Lost);
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    }

    async fn listen_once(&self, channel: &str, heard: &mut impl FnMut(Heard)) -> Result<()> {
        let (client, mut connection) = tokio_postgres::connect(self.url(), NoTls).await?;
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        let statement = format!("LISTEN {channel}");
        let listen = client.batch_execute(&statement);
        // The connection must be polled for LISTEN to complete.
        tokio::pin!(listen);
        loop {
            tokio::select! {
                done = &mut listen => { done?; break; }
                message = messages.next() => match message {
                    Some(Ok(AsyncMessage::Notification(n))) => heard(Heard::Notification(n.payload().to_owned())),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(()),
                }
            }
        }
        heard(Heard::Listening);
        while let Some(message) = messages.next().await {
            if let AsyncMessage::Notification(n) = message? {
                heard(Heard::Notification(n.payload().to_owned()));
            }
        }
        Ok(())
    }
}
