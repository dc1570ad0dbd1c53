//! Keyset pagination shared by every list: opaque cursors and the "fetch
//! one more than the page" rule that says whether there is a next page.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::AppError;
use crate::model::Page;

fn bad_cursor() -> AppError {
    AppError::field("cursor", "This cursor is not one the API gave out.")
}

/// A page size from a query string: 1–`max`, `default` when absent.
pub fn parse_limit(raw: Option<u32>, default: u32, max: u32) -> Result<i64, AppError> {
    match raw {
        None => Ok(default as i64),
        Some(n) if (1..=max).contains(&n) => Ok(n as i64),
        Some(_) => Err(AppError::field(
            "limit",
            format!("Use a limit from 1 to {max}."),
        )),
    }
}

/// The cursor after an item ordered by (time, id).
pub fn time_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}_{id}", at.timestamp_micros())
}

/// Reads a `(time, id)` cursor that [`time_cursor`] wrote.
pub fn parse_time_cursor(raw: &str) -> Result<(DateTime<Utc>, Uuid), AppError> {
    let (micros, id) = raw.split_once('_').ok_or_else(bad_cursor)?;
    let micros: i64 = micros.parse().map_err(|_| bad_cursor())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad_cursor)?;
    Ok((at, Uuid::parse_str(id).map_err(|_| bad_cursor())?))
}

/// A cursor that is a non-negative number (a row index or a version).
pub fn parse_number_cursor(raw: &str) -> Result<i32, AppError> {
    raw.parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(bad_cursor)
}

/// `items` were fetched with `limit + 1`: the extra one only says there is
/// a next page, which starts after the last item kept.
pub fn page<T>(mut items: Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(cursor)
    } else {
        None
    };
    Page { items, next_cursor }
}
