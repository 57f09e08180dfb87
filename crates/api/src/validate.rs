//! Field checks shared by the services. Each names the field as the client
//! spelled it, so a rejection says exactly what to fix.

use chrono::{DateTime, Utc};
use scorekeeper_domain::limits::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use scorekeeper_domain::time::{mirror_range_text, mirror_seconds};
use scorekeeper_domain::{ConversationId, Invalid};
use scorekeeper_proto::time::from_timestamp;

pub type Checked<T> = Result<T, Invalid>;

/// A required text field: non-empty, at most `max_bytes`, no NUL (Postgres
/// text cannot hold one).
pub fn required_text(field: &str, value: &str, max_bytes: usize) -> Checked<()> {
    if value.trim().is_empty() {
        return Err(Invalid::new(field, "required"));
    }
    optional_text(field, value, max_bytes)
}

pub fn optional_text(field: &str, value: &str, max_bytes: usize) -> Checked<()> {
    if value.len() > max_bytes {
        return Err(Invalid::new(field, format!("longer than {max_bytes} bytes")));
    }
    if value.contains('\0') {
        return Err(Invalid::new(field, "contains a NUL character"));
    }
    Ok(())
}

/// An optional name: empty means "not given"; otherwise as [`required_text`].
pub fn optional_name(field: &str, value: &str, max_bytes: usize) -> Checked<()> {
    if value.is_empty() { Ok(()) } else { required_text(field, value, max_bytes) }
}

/// A required id: positive.
pub fn id(field: &str, value: i64) -> Checked<i64> {
    if value <= 0 {
        return Err(Invalid::new(field, "required (a positive id)"));
    }
    Ok(value)
}

/// A list of at most `max` conversation ids, each positive; errors name
/// the list or the item (`field[i]`).
pub fn conversation_ids(field: &str, ids: &[i64], max: usize) -> Checked<Vec<ConversationId>> {
    at_most(field, ids, max)?;
    ids.iter()
        .enumerate()
        .map(|(i, value)| id(&format!("{field}[{i}]"), *value).map(ConversationId))
        .collect()
}

/// A list bounded in length.
pub fn at_most<T>(field: &str, items: &[T], max: usize) -> Checked<()> {
    if items.len() > max {
        return Err(Invalid::new(field, format!("more than {max} items")));
    }
    Ok(())
}

/// A list that must not be empty and is bounded in length.
pub fn between<T>(field: &str, items: &[T], max: usize) -> Checked<()> {
    if items.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    at_most(field, items, max)
}

pub fn finite(field: &str, value: f64) -> Checked<f64> {
    if !value.is_finite() {
        return Err(Invalid::new(field, "must be a finite number"));
    }
    Ok(value)
}

/// A proto enum value this server knows; `UNSPECIFIED` (0) is refused unless
/// `allow_unspecified`.
pub fn known_enum<E: TryFrom<i32>>(field: &str, value: i32, allow_unspecified: bool) -> Checked<E> {
    if value == 0 && !allow_unspecified {
        return Err(Invalid::new(field, "required"));
    }
    E::try_from(value).map_err(|_| Invalid::new(field, format!("unknown value {value}")))
}

/// A time given on the wire (`scorekeeper_proto::time::from_timestamp`).
pub fn timestamp(field: &str, value: &prost_types::Timestamp) -> Checked<DateTime<Utc>> {
    from_timestamp(value).map_err(|error| Invalid::new(field, error.to_string()))
}

pub fn required_timestamp(field: &str, value: &Option<prost_types::Timestamp>) -> Checked<DateTime<Utc>> {
    value.as_ref().map_or_else(|| Err(Invalid::new(field, "required")), |t| timestamp(field, t))
}

/// A required time that is mirrored to ClickHouse: it must also lie within
/// what ClickHouse's `DateTime` holds (`domain::time::MIRROR_SECONDS`),
/// since a time the mirror cannot hold could only be mirrored wrong.
pub fn required_mirrored_timestamp(
    field: &str,
    value: &Option<prost_types::Timestamp>,
) -> Checked<DateTime<Utc>> {
    let time = required_timestamp(field, value)?;
    match mirror_seconds(time) {
        Some(_) => Ok(time),
        None => {
            Err(Invalid::new(field, format!("outside the range analytics can hold, {}", mirror_range_text())))
        }
    }
}

pub fn optional_timestamp(
    field: &str,
    value: &Option<prost_types::Timestamp>,
) -> Checked<Option<DateTime<Utc>>> {
    value.as_ref().map(|t| timestamp(field, t)).transpose()
}

/// Page size and the id to continue after. Page tokens are the last id of
/// the previous page, as decimal text.
pub fn page(page_size: i32, page_token: &str) -> Checked<(usize, Option<i64>)> {
    let size = match page_size {
        0 => DEFAULT_PAGE_SIZE,
        n if n < 0 || n as usize > MAX_PAGE_SIZE => {
            return Err(Invalid::new("page_size", format!("must be in [0, {MAX_PAGE_SIZE}]")));
        }
        n => n as usize,
    };
    let after = if page_token.is_empty() {
        None
    } else {
        Some(
            page_token
                .parse::<i64>()
                .map_err(|_| Invalid::new("page_token", "not a token this server issued"))?,
        )
    };
    Ok((size, after))
}

/// The token for the page after one that ended at `last`, when it was full.
pub fn next_page_token(returned: usize, size: usize, last: Option<i64>) -> String {
    match last {
        Some(id) if returned == size => id.to_string(),
        _ => String::new(),
    }
}
