//! Password hashing with Argon2id. Hashing takes tens of milliseconds of CPU,
//! so it always runs on the blocking pool, never on an async worker thread.

use std::sync::OnceLock;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordVerifier, Version};

use crate::error::AppError;

/// OWASP's minimum for Argon2id: 19 MiB, 2 passes, 1 lane.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;
pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 1024;

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .expect("constant Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A password that passed the length rules.
pub struct Password(String);

impl Password {
    pub fn parse(raw: String, field: &str) -> Result<Password, AppError> {
        let chars = raw.chars().count();
        if chars < MIN_LENGTH {
            return Err(AppError::field(
                field,
                format!("Use at least {MIN_LENGTH} characters."),
            ));
        }
        if chars > MAX_LENGTH {
            return Err(AppError::field(
                field,
                format!("Use at most {MAX_LENGTH} characters."),
            ));
        }
        Ok(Password(raw))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

fn hash_blocking(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 hashing with valid parameters cannot fail")
        .to_string()
}

pub async fn hash(password: Password) -> anyhow::Result<String> {
    Ok(tokio::task::spawn_blocking(move || hash_blocking(&password.0)).await?)
}

/// Checks `candidate` against `stored`. With `stored = None` (unknown email)
/// it verifies against a dummy hash so the answer takes the same time.
pub async fn verify(candidate: String, stored: Option<String>) -> anyhow::Result<bool> {
    Ok(tokio::task::spawn_blocking(move || {
        let real = stored.is_some();
        let stored = stored.unwrap_or_else(|| dummy_hash().to_string());
        let ok = match PasswordHash::new(&stored) {
            Ok(parsed) => hasher()
                .verify_password(candidate.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        };
        ok && real
    })
    .await?)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_blocking("mino-dummy-password-for-timing"))
}

/// Computes the dummy hash ahead of the first sign-in, so the first unknown
/// email is not slower than the rest.
pub fn warm_up() {
    let _ = dummy_hash();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_passwords_are_refused() {
        let err = Password::parse("123456789".into(), "password").unwrap_err();
        assert_eq!(
            err.message_for("password").unwrap(),
            "Use at least 10 characters."
        );
        assert!(Password::parse("1234567890".into(), "password").is_ok());
    }

    #[tokio::test]
    async fn hash_round_trip_and_parameters() {
        let h = hash(Password("correct horse".into())).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse".into(), Some(h.clone()))
            .await
            .unwrap());
        assert!(!verify("wrong horse!".into(), Some(h)).await.unwrap());
        assert!(!verify("anything at all".into(), None).await.unwrap());
    }
}
