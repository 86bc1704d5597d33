//! Random tokens, hashes and password hashing. Passwords use Argon2id (the seed's
//! Base64(SHA-256) without salt, BR-5, is far too weak) and hashing runs on the blocking pool so
//! it never stalls the async runtime. Tokens are random 256-bit values; only their SHA-256
//! digests are stored, so a database leak does not leak usable tokens.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// `n` random bytes from the operating system.
pub fn random_bytes(n: usize) -> anyhow::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(buf)
}

/// A URL-safe random token with 256 bits of entropy.
pub fn random_token() -> anyhow::Result<String> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(32)?))
}

/// A numeric code of `digits` digits (for emailed codes).
pub fn random_digits(digits: usize) -> anyhow::Result<String> {
    let bytes = random_bytes(digits)?;
    Ok(bytes.iter().map(|b| char::from(b'0' + b % 10)).collect())
}

/// Hex SHA-256 of a token, the form in which tokens are stored and looked up.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes a password with Argon2id on the blocking pool.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt_bytes = random_bytes(16)?;
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
    })
    .await?
}

/// A fixed Argon2id hash checked when the user does not exist, so that "no such user" takes
/// as long as "wrong password" and timing reveals nothing.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$tOqsR0ZSV6kqBNBuTpBPN1kYDQKvH7ZHOv7c4Es5Lzk";

/// Checks a password against a stored hash (or the dummy hash) on the blocking pool. The
/// comparison inside Argon2 is constant-time.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let exists = hash.is_some();
        let stored = hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        ok && exists
    })
    .await
    .unwrap_or(false)
}

/// Compares two short secrets in constant time.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashing_round_trips_and_the_dummy_never_matches() {
        let h = hash_password("Gx!7trq#Lm".into()).await.unwrap_or_default();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("Gx!7trq#Lm".into(), Some(h.clone())).await);
        assert!(!verify_password("wrong".into(), Some(h)).await);
        assert!(!verify_password("anything".into(), None).await);
    }

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let a = random_token().unwrap_or_default();
        let b = random_token().unwrap_or_default();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash("x"), token_hash("x"));
        assert_eq!(token_hash("x").len(), 64);
        assert!(constant_time_eq("abc", "abc") && !constant_time_eq("abc", "abd"));
        assert_eq!(random_digits(6).unwrap_or_default().len(), 6);
    }
}
