//! Passwords, one-time passwords, TOTP secrets and session tokens.
//!
//! Passwords are hashed with Argon2id at OWASP's recommended parameters
//! (19 MiB, 2 passes, 1 lane). TOTP is RFC 6238 (SHA-1, 30 s, 6 digits),
//! the kind every authenticator app reads. Session tokens are 256 random
//! bits; only their SHA-256 is stored.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};
use totp_rs::{Secret, TOTP};

use crate::StoreError;

/// TOTP time step, seconds.
pub const TOTP_STEP: u64 = 30;

fn argon2() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet: m = 19 MiB, t = 2, p = 1.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    Ok(b)
}

pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| StoreError::Corrupt(format!("salt: {e}")))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Corrupt(format!("password hash: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of nothing, verified against when the username is unknown so a
/// failed sign-in takes the same time either way.
pub fn dummy_verify(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash =
        DUMMY.get_or_init(|| hash_password("platekeeper-dummy-password").unwrap_or_default());
    let _ = verify_password(password, hash);
}

/// A one-time password: 20 characters from an alphabet without look-alikes.
pub fn one_time_password() -> Result<String, StoreError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY3479";
    Ok(random_bytes::<20>()?
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

/// A new TOTP secret, base32 (as authenticator apps want it).
pub fn new_totp_secret() -> Result<String, StoreError> {
    match Secret::Raw(random_bytes::<20>()?.to_vec()).to_encoded() {
        Secret::Encoded(s) => Ok(s),
        Secret::Raw(_) => Err(StoreError::Corrupt("base32 encoding failed".into())),
    }
}

fn totp(secret_b32: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret_b32.to_string()).to_bytes().ok()?;
    TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, TOTP_STEP, bytes).ok()
}

/// The code for a time (for tests and for `admin create`'s own check).
pub fn totp_code(secret_b32: &str, unix_s: u64) -> Option<String> {
    totp(secret_b32).map(|t| t.generate(unix_s))
}

/// The time step a code is valid for (the current one or one either side,
/// for clock drift), if any and if later than `after_step` — a code can
/// be used once.
pub fn totp_step_matching(
    secret_b32: &str,
    code: &str,
    unix_s: u64,
    after_step: Option<i64>,
) -> Option<i64> {
    let t = totp(secret_b32)?;
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now_step = (unix_s / TOTP_STEP) as i64;
    (now_step - 1..=now_step + 1)
        .filter(|s| *s >= 0 && after_step.is_none_or(|a| *s > a))
        .find(|s| t.generate(*s as u64 * TOTP_STEP) == code)
}

/// Seconds until an authenticator shows the next code (1 to 30).
pub fn seconds_to_next_code(now_ms: i64) -> u64 {
    let s = (now_ms / 1000).max(0) as u64;
    TOTP_STEP - s % TOTP_STEP
}

/// A session token and the hash that is stored.
pub fn new_session_token() -> Result<(String, [u8; 32]), StoreError> {
    let token = format!("pks_{}", hex::encode(random_bytes::<32>()?));
    let hash = token_hash(&token);
    Ok((token, hash))
}

pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// The `otpauth://` URI an authenticator app scans.
pub fn otpauth_uri(secret_b32: &str, username: &str, issuer: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits=6&period=30",
        enc(issuer),
        enc(username),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn totp_codes_match_once_within_the_window() {
        let secret = new_totp_secret().unwrap();
        let t = 1_795_000_000u64;
        let code = totp_code(&secret, t).unwrap();
        let step = totp_step_matching(&secret, &code, t, None).unwrap();
        assert_eq!(step, (t / 30) as i64);
        assert!(
            totp_step_matching(&secret, &code, t + 30, None).is_some(),
            "one step of drift"
        );
        assert!(totp_step_matching(&secret, &code, t + 90, None).is_none());
        assert!(
            totp_step_matching(&secret, &code, t, Some(step)).is_none(),
            "no replay"
        );
        assert!(totp_step_matching(&secret, "12345", t, None).is_none());
        assert!(totp_step_matching(&secret, "abcdef", t, None).is_none());
    }

    #[test]
    fn rfc6238_vector() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", T = 59 s.
        let secret = match Secret::Raw(b"12345678901234567890".to_vec()).to_encoded() {
            Secret::Encoded(s) => s,
            _ => unreachable!(),
        };
        assert_eq!(totp_code(&secret, 59).unwrap(), "287082");
    }

    #[test]
    fn tokens_and_uris() {
        let (t, h) = new_session_token().unwrap();
        assert_eq!(token_hash(&t), h);
        assert!(otp_ok(&one_time_password().unwrap()));
        let uri = otpauth_uri("ABC", "j doe", "Platekeeper PD");
        assert!(uri.starts_with(
            "otpauth://totp/Platekeeper%20PD:j%20doe?secret=ABC&issuer=Platekeeper%20PD"
        ));
    }

    fn otp_ok(s: &str) -> bool {
        s.len() == 20 && s.chars().all(|c| c.is_ascii_alphanumeric())
    }
}
