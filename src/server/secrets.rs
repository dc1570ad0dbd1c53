//! Secrets at rest: model-provider API keys and webhook signing secrets are
//! stored sealed with AES-256-GCM, never in clear text.
//!
//! The key comes from `MINO_SECRET_KEY` (64 hex digits, or 32 bytes in
//! base64), else from `<data dir>/secret.key`, which Mino writes (mode 0600)
//! the first time it starts on a database that holds no sealed secrets yet.
//! Every process sharing a database must use the same key: set
//! `MINO_SECRET_KEY` when workers run on other machines.
//!
//! A database remembers its key by a sealed check value
//! (`secret_key_check`), so a process with the wrong key, or with none for a
//! database that has sealed secrets, refuses to start and says what to do,
//! instead of failing later on every secret it reads.
//!
//! The key is installed once per process ([`install`]): secrets are sealed
//! and opened deep in services and workers, and one key per process is what
//! the deployment model says anyway.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use sqlx::PgPool;

/// What a sealed value starts with: the format's version, so a later
/// scheme (key rotation) can tell old values apart.
const PREFIX: &str = "v1:";
/// The text sealed into `secret_key_check`.
const CHECK_TEXT: &str = "mino secret key check";

/// A 256-bit key.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

impl SecretKey {
    pub fn from_bytes(bytes: [u8; 32]) -> SecretKey {
        SecretKey(bytes)
    }

    /// A new random key.
    pub fn generate() -> SecretKey {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        SecretKey(bytes)
    }

    /// 64 hex digits, or 32 bytes in (standard or URL-safe) base64.
    pub fn parse(text: &str) -> Result<SecretKey, String> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|e| e.to_string())?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
                .map_err(|_| {
                    "MINO_SECRET_KEY must be 64 hex digits or 32 bytes in base64 \
                     (make one with: openssl rand -hex 32)"
                        .to_string()
                })?
        };
        let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "MINO_SECRET_KEY must be 32 bytes (256 bits); it is {} bytes \
                 (make one with: openssl rand -hex 32)",
                b.len()
            )
        })?;
        Ok(SecretKey(bytes))
    }

    fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(&self.0).expect("32-byte key")
    }

    /// Seals `plain`: `v1:` + base64(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, plain: &str) -> String {
        use rand::RngCore;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .expect("AES-GCM encryption does not fail for in-memory input");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
        )
    }

    /// Opens a value [`seal`](SecretKey::seal) made; `None` when it was
    /// sealed with another key or is not a sealed value.
    pub fn open(&self, sealed: &str) -> Option<String> {
        let body = sealed.strip_prefix(PREFIX)?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(body)
            .ok()?;
        if bytes.len() < 12 + 16 {
            return None;
        }
        let (nonce, data) = bytes.split_at(12);
        let plain = self.cipher().decrypt(Nonce::from_slice(nonce), data).ok()?;
        String::from_utf8(plain).ok()
    }
}

/// Whether a stored value is sealed (rather than clear text written before
/// secrets were sealed).
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(PREFIX)
}

static KEY: OnceLock<SecretKey> = OnceLock::new();

/// Makes `key` this process's key. A second call with the same key is a
/// no-op (tests start many apps in one process); another key is an error.
pub fn install(key: SecretKey) -> Result<(), String> {
    let installed = KEY.get_or_init(|| key.clone());
    if installed.0 == key.0 {
        Ok(())
    } else {
        Err("this process already uses another secret key".into())
    }
}

fn key() -> &'static SecretKey {
    KEY.get().expect(
        "the secret key is installed at startup (secrets::prepare) before any secret is used",
    )
}

/// Seals `plain` with this process's key.
pub fn seal(plain: &str) -> String {
    key().seal(plain)
}

/// Opens a stored secret with this process's key. A value stored before
/// secrets were sealed is returned as it is (startup seals those, but a
/// process of an older version may still write one).
pub fn open(stored: &str) -> Result<String, SecretError> {
    if !is_sealed(stored) {
        return Ok(stored.to_string());
    }
    key().open(stored).ok_or(SecretError)
}

/// A sealed value that this process's key does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretError;

impl std::fmt::Display for SecretError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a stored secret could not be decrypted with this process's MINO_SECRET_KEY")
    }
}

impl std::error::Error for SecretError {}

/// The last four characters of a secret, for lists ("…a1b2").
pub fn last_four(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// Where the generated key of a data directory lives.
pub fn key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("secret.key")
}

/// Finds this process's key (the environment's, else the data directory's,
/// generated when the database has no sealed secrets yet), checks it
/// against the database's check value, installs it and seals any secret
/// still stored in clear text. Errors say what to set.
pub async fn prepare(
    db: &PgPool,
    from_env: Option<&SecretKey>,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let check: Option<String> = super::db::secrets::key_check(db).await?;
    let file = key_file(data_dir);
    let key = match from_env {
        Some(k) => k.clone(),
        None => match read_key_file(&file)? {
            Some(k) => k,
            None if check.is_some() => anyhow::bail!(
                "this database holds encrypted secrets (provider API keys, webhook secrets), \
                 but no key was given: set MINO_SECRET_KEY to the key they were encrypted \
                 with, or restore {}",
                file.display()
            ),
            None => write_key_file(&file)?,
        },
    };
    match check {
        Some(sealed) => {
            if key.open(&sealed).as_deref() != Some(CHECK_TEXT) {
                anyhow::bail!(
                    "the secret key ({}) is not the one this database's secrets were \
                     encrypted with: set MINO_SECRET_KEY to that key",
                    if from_env.is_some() {
                        "MINO_SECRET_KEY".to_string()
                    } else {
                        file.display().to_string()
                    }
                );
            }
        }
        None => super::db::secrets::set_key_check(db, &key.seal(CHECK_TEXT)).await?,
    }
    install(key.clone()).map_err(|e| anyhow::anyhow!(e))?;
    let sealed = super::db::secrets::seal_clear_webhook_secrets(db, &key).await?;
    if sealed > 0 {
        tracing::info!(
            webhooks = sealed,
            "sealed webhook secrets stored in clear text"
        );
    }
    Ok(())
}

fn read_key_file(file: &Path) -> anyhow::Result<Option<SecretKey>> {
    match std::fs::read_to_string(file) {
        Ok(text) => SecretKey::parse(&text)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", file.display())),
    }
}

/// Writes a new key, readable only by its owner. When another process
/// wrote one first, that one is used.
fn write_key_file(file: &Path) -> anyhow::Result<SecretKey> {
    use std::io::Write;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    let key = SecretKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(file) {
        Ok(mut f) => {
            f.write_all(format!("{}\n", key.to_hex()).as_bytes())
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
            tracing::info!(file = %file.display(), "generated the secret key (keep it with the data)");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // A concurrent start wrote it; it may still be writing.
            for _ in 0..50 {
                if let Some(k) = read_key_file(file).ok().flatten() {
                    return Ok(k);
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            anyhow::bail!("{} exists but holds no key", file.display())
        }
        Err(e) => Err(anyhow::anyhow!("cannot create {}: {e}", file.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_their_key_only() {
        let k = SecretKey::generate();
        let sealed = k.seal("sk-test-1234");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("sk-test"));
        assert_eq!(k.open(&sealed).as_deref(), Some("sk-test-1234"));
        assert_ne!(k.seal("sk-test-1234"), sealed, "a fresh nonce every time");
        assert_eq!(SecretKey::generate().open(&sealed), None);
        assert_eq!(k.open("v1:AAAA"), None);
        assert_eq!(k.open("clear"), None);
    }

    #[test]
    fn keys_parse_from_hex_or_base64_and_say_what_is_wrong() {
        let hex = "00".repeat(32);
        assert!(SecretKey::parse(&hex).is_ok());
        let b64 = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        assert_eq!(SecretKey::parse(&b64).unwrap().0, [1u8; 32]);
        let short = SecretKey::parse("abcd").unwrap_err();
        assert!(short.contains("32 bytes"), "{short}");
        let junk = SecretKey::parse("not a key!").unwrap_err();
        assert!(junk.contains("64 hex digits"), "{junk}");
    }

    #[test]
    fn last_four_counts_characters() {
        assert_eq!(last_four("sk-abcdef"), "cdef");
        assert_eq!(last_four("ab"), "ab");
        assert_eq!(last_four("ключ-ёжик"), "ёжик");
    }
}
