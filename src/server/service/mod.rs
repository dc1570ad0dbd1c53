//! The business rules. Every operation takes the caller (an [`Actor`] or an
//! [`OrgCtx`]) and checks its permission before touching anything; writes
//! that span several rows run in one transaction.
//!
//! [`Actor`]: crate::server::auth::rbac::Actor
//! [`OrgCtx`]: crate::server::auth::rbac::OrgCtx

pub mod accounts;
pub mod analysis;
pub mod api_keys;
pub mod audit;
pub mod batches;
pub mod bulk_jobs;
pub mod demo;
pub mod evaluation_sets;
pub mod executions;
pub mod experiments;
pub mod exports;
pub mod grid_columns;
pub mod ground_truth;
pub mod guide;
pub mod imports;
pub mod jobs;
pub mod model_providers;
pub mod org_export;
pub mod orgs;
pub mod paging;
pub mod projects;
pub mod suggestions;
pub mod team;
pub mod usage;
pub mod versions;
pub mod webhooks;

use crate::error::{AppError, FieldError};

/// A display name: trimmed, 1–100 characters, no control characters.
pub fn parse_name(raw: &str, field: &str) -> Result<String, AppError> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 {
        return Err(AppError::field(field, "Enter a name."));
    }
    if chars > 100 {
        return Err(AppError::field(
            field,
            format!("Use at most 100 characters (this has {chars})."),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::field(
            field,
            "Remove line breaks and control characters.",
        ));
    }
    Ok(name.to_string())
}

/// An email address, lower-cased for comparison.
pub fn parse_email(raw: &str, field: &str) -> Result<String, AppError> {
    let email = raw.trim();
    if email.is_empty() {
        return Err(AppError::field(field, "Enter an email address."));
    }
    if email.len() > 254 || !email_address::EmailAddress::is_valid(email) || !email.contains('.') {
        return Err(AppError::field(
            field,
            format!("{email:?} is not a valid email address."),
        ));
    }
    Ok(email.to_lowercase())
}

/// An amount of money typed by a person ("0.0025", "$1.5", ".5") in
/// millionths: digits, at most one point, at most 6 decimals, a leading
/// `$` allowed. `None` when it is not one (or has over 12 whole digits);
/// each caller bounds it and words its own error.
pub fn decimal_micros(raw: &str) -> Option<i64> {
    let s = raw.trim().trim_start_matches('$');
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if (whole.is_empty() && frac.is_empty())
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 6
        || whole.len() > 12
    {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: i64 = format!("{frac:0<6}").parse().ok()?;
    Some(whole * 1_000_000 + frac)
}

/// Runs several field checks and reports every failure at once, so a form
/// shows all its problems in one round trip.
pub fn collect_fields<const N: usize>(checks: [Result<(), AppError>; N]) -> Result<(), AppError> {
    let fields: Vec<FieldError> = checks
        .into_iter()
        .filter_map(|c| c.err())
        .flat_map(|e| e.field_errors())
        .collect();
    if fields.is_empty() {
        Ok(())
    } else {
        let message = if fields.len() == 1 {
            fields[0].message.clone()
        } else {
            "Some fields need attention.".into()
        };
        Err(AppError::Validation { message, fields })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_name("  Acme  ", "name").unwrap(), "Acme");
        assert!(parse_name("   ", "name").is_err());
        assert!(parse_name(&"x".repeat(101), "name").is_err());
        assert!(parse_name(&"é".repeat(100), "name").is_ok());
        assert!(parse_name("a\nb", "name").is_err());
    }

    #[test]
    fn emails_are_checked_and_lowercased() {
        assert_eq!(
            parse_email(" Ann@Example.COM ", "email").unwrap(),
            "ann@example.com"
        );
        for bad in ["", "ann", "ann@", "@x.io", "ann@localhost", "a b@x.io"] {
            assert!(parse_email(bad, "email").is_err(), "{bad}");
        }
    }
}
