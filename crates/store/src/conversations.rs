//! Conversations and their transcripts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use scorekeeper_domain::transcript::Message;
use scorekeeper_domain::{ConversationId, CustomerId};

use crate::Store;
use crate::codec;
use crate::error::Result;

/// A conversation to insert, or to replace when the customer already has one
/// with this `external_id`.
#[derive(Clone, Debug, PartialEq)]
pub struct NewConversation {
    pub external_id: String,
    pub agent_id: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub messages: Vec<Message>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Conversation {
    pub id: ConversationId,
    pub customer_id: CustomerId,
    pub external_id: String,
    pub agent_id: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub message_count: u32,
    /// Empty unless asked for.
    pub messages: Vec<Message>,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

const CONVERSATION_COLUMNS: &str =
    "id, customer_id, external_id, agent_id, started_at, ended_at, message_count, version, updated_at";

fn conversation(row: &tokio_postgres::Row) -> Result<Conversation> {
    Ok(Conversation {
        id: ConversationId(row.try_get("id")?),
        customer_id: CustomerId(row.try_get("customer_id")?),
        external_id: row.try_get("external_id")?,
        agent_id: row.try_get("agent_id")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        message_count: codec::count(row.try_get("message_count")?)?,
        messages: Vec::new(),
        version: row.try_get("version")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Inserts or replaces conversations (by external id) and their
    /// transcripts, all in one transaction. Returns them in request order,
    /// without messages.
    pub async fn upsert_conversations(
        &self,
        customer_id: CustomerId,
        conversations: &[NewConversation],
    ) -> Result<Vec<Conversation>> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let upsert = tx
            .prepare(&format!(
                "INSERT INTO conversations (customer_id, external_id, agent_id, started_at, ended_at, message_count)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (customer_id, external_id) DO UPDATE SET
                     agent_id = EXCLUDED.agent_id, started_at = EXCLUDED.started_at,
                     ended_at = EXCLUDED.ended_at, message_count = EXCLUDED.message_count,
                     deleted_at = NULL
                 RETURNING {CONVERSATION_COLUMNS}"
            ))
            .await?;
        let clear = tx.prepare("DELETE FROM messages WHERE conversation_id = $1").await?;
        let insert_messages = tx
            .prepare(
                "INSERT INTO messages (conversation_id, seq, speaker, text, offset_ms)
                 SELECT $1, seq::int, speaker, text, offset_ms
                 FROM unnest($2::smallint[], $3::text[], $4::bigint[]) WITH ORDINALITY AS m(speaker, text, offset_ms, seq)",
            )
            .await?;
        let mut stored = Vec::with_capacity(conversations.len());
        for new in conversations {
            let row = tx
                .query_one(
                    &upsert,
                    &[
                        &customer_id.0,
                        &new.external_id,
                        &new.agent_id,
                        &new.started_at,
                        &new.ended_at,
                        &(new.messages.len() as i32),
                    ],
                )
                .await?;
            let conversation = conversation(&row)?;
            tx.execute(&clear, &[&conversation.id.0]).await?;
            if !new.messages.is_empty() {
                let speakers: Vec<i16> = new.messages.iter().map(|m| m.speaker.number()).collect();
                let texts: Vec<&str> = new.messages.iter().map(|m| m.text.as_str()).collect();
                let offsets: Vec<i64> = new.messages.iter().map(|m| m.offset_ms).collect();
                tx.execute(&insert_messages, &[&conversation.id.0, &speakers, &texts, &offsets]).await?;
            }
            stored.push(conversation);
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// The customer's conversation, or `None` (also for another customer's).
    pub async fn get_conversation(
        &self,
        customer_id: CustomerId,
        id: ConversationId,
        include_messages: bool,
    ) -> Result<Option<Conversation>> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {CONVERSATION_COLUMNS} FROM conversations
                     WHERE id = $1 AND customer_id = $2 AND deleted_at IS NULL"
                ),
                &[&id.0, &customer_id.0],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut found = conversation(&row)?;
        if include_messages {
            found.messages = self.transcripts(customer_id, &[id]).await?.remove(&id).unwrap_or_default();
        }
        Ok(Some(found))
    }

    /// The customer's live conversations among `ids`, without messages.
    pub async fn conversations(
        &self,
        customer_id: CustomerId,
        ids: &[ConversationId],
    ) -> Result<Vec<Conversation>> {
        let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {CONVERSATION_COLUMNS} FROM conversations
                     WHERE customer_id = $1 AND id = ANY($2) AND deleted_at IS NULL ORDER BY id"
                ),
                &[&customer_id.0, &ids],
            )
            .await?;
        rows.iter().map(conversation).collect()
    }

    /// Bytes of message text of each of the customer's conversations among
    /// `ids` that has messages, so a caller can read transcripts in chunks
    /// of bounded size. Reads no text (`octet_length` of a stored value
    /// needs only its header).
    pub async fn transcript_bytes(
        &self,
        customer_id: CustomerId,
        ids: &[ConversationId],
    ) -> Result<HashMap<ConversationId, u64>> {
        let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT m.conversation_id, sum(octet_length(m.text))::bigint AS bytes
                 FROM messages m JOIN conversations c ON c.id = m.conversation_id
                 WHERE c.customer_id = $1 AND c.id = ANY($2)
                 GROUP BY m.conversation_id",
                &[&customer_id.0, &ids],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let bytes: i64 = row.try_get("bytes")?;
                Ok((ConversationId(row.try_get("conversation_id")?), u64::try_from(bytes).unwrap_or(0)))
            })
            .collect()
    }

    /// Transcripts of the customer's conversations among `ids`, in message order.
    pub async fn transcripts(
        &self,
        customer_id: CustomerId,
        ids: &[ConversationId],
    ) -> Result<HashMap<ConversationId, Vec<Message>>> {
        let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT m.conversation_id, m.speaker, m.text, m.offset_ms
                 FROM messages m JOIN conversations c ON c.id = m.conversation_id
                 WHERE c.customer_id = $1 AND c.id = ANY($2)
                 ORDER BY m.conversation_id, m.seq",
                &[&customer_id.0, &ids],
            )
            .await?;
        let mut transcripts: HashMap<ConversationId, Vec<Message>> = HashMap::new();
        for row in rows {
            transcripts.entry(ConversationId(row.try_get("conversation_id")?)).or_default().push(Message {
                speaker: codec::speaker(row.try_get("speaker")?)?,
                text: row.try_get("text")?,
                offset_ms: row.try_get("offset_ms")?,
            });
        }
        Ok(transcripts)
    }
}
