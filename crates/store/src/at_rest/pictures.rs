//! Picture files sealed with AES-256-GCM.
//!
//! A sealed file is `PKE1`, the key's id (8 bytes), a random salt (16
//! bytes), then the picture encrypted and its 16-byte tag. Each file has
//! its own key, HMAC-SHA256 of its salt under the pictures' key, so the
//! nonce can stay fixed without ever being reused under one key (random
//! 96-bit nonces under one key would wear out after a few billion
//! pictures, which a state-wide deployment reaches in a year). The header
//! and the picture's SHA-256 (its file name) are authenticated too: a
//! file swapped for another, or moved under another picture's name,
//! fails to open.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::hmac;

use super::key::{DataKey, KeyId, Purpose};

const MAGIC: &[u8; 4] = b"PKE1";
const ID_LEN: usize = 8;
const SALT_LEN: usize = 16;
const HEADER_LEN: usize = MAGIC.len() + ID_LEN + SALT_LEN;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PictureError {
    #[error("the picture is sealed under key {found}, not under this store's key {expected}")]
    OtherKey { found: String, expected: String },
    #[error("the picture failed its integrity check (altered, truncated or not this picture)")]
    Tampered,
    #[error("the picture is stored unencrypted in an encrypted store")]
    NotSealed,
    #[error("could not draw random bytes: {0}")]
    Random(String),
}

/// The key pictures are sealed under.
pub struct PictureKey {
    id: [u8; ID_LEN],
    key: hmac::Key,
}

impl std::fmt::Debug for PictureKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PictureKey({})", hex::encode(self.id))
    }
}

/// Whether a file's bytes are a sealed picture, and under which key.
pub fn sealed_under(bytes: &[u8]) -> Option<KeyId> {
    (bytes.len() >= HEADER_LEN && bytes.starts_with(MAGIC))
        .then(|| KeyId(hex::encode(&bytes[MAGIC.len()..MAGIC.len() + ID_LEN])))
}

impl PictureKey {
    /// The key pictures are sealed with, derived from the data key.
    pub fn new(data: &DataKey) -> PictureKey {
        let mut id = [0u8; ID_LEN];
        if let Ok(bytes) = hex::decode(data.id().0) {
            id.copy_from_slice(&bytes[..ID_LEN]);
        }
        PictureKey {
            id,
            key: hmac::Key::new(hmac::HMAC_SHA256, data.derive(Purpose::Pictures).as_ref()),
        }
    }

    fn file_key(&self, salt: &[u8]) -> LessSafeKey {
        let derived = hmac::sign(&self.key, salt);
        // AES-256 takes exactly the 32 bytes HMAC-SHA256 gives.
        let unbound = UnboundKey::new(&AES_256_GCM, derived.as_ref())
            .unwrap_or_else(|_| unreachable!("a 32-byte key is AES-256's size"));
        LessSafeKey::new(unbound)
    }

    fn aad(header: &[u8], sha256: &[u8; 32]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(header.len() + sha256.len());
        aad.extend_from_slice(header);
        aad.extend_from_slice(sha256);
        aad
    }

    /// The sealed form of a picture whose SHA-256 is `sha256`.
    pub fn seal(&self, sha256: &[u8; 32], picture: &[u8]) -> Result<Vec<u8>, PictureError> {
        let mut out = Vec::with_capacity(HEADER_LEN + picture.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.id);
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(|e| PictureError::Random(e.to_string()))?;
        out.extend_from_slice(&salt);
        let aad = Self::aad(&out, sha256);
        out.extend_from_slice(picture);
        let mut body = out.split_off(HEADER_LEN);
        self.file_key(&salt)
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key([0u8; aead::NONCE_LEN]),
                Aad::from(&aad),
                &mut body,
            )
            .map_err(|_| PictureError::Tampered)?;
        out.append(&mut body);
        Ok(out)
    }

    /// The picture inside a sealed file named by `sha256`.
    pub fn open(&self, sha256: &[u8; 32], mut file: Vec<u8>) -> Result<Vec<u8>, PictureError> {
        let Some(found) = sealed_under(&file) else {
            return Err(PictureError::NotSealed);
        };
        if file[MAGIC.len()..MAGIC.len() + ID_LEN] != self.id {
            return Err(PictureError::OtherKey {
                found: found.0,
                expected: hex::encode(self.id),
            });
        }
        let mut body = file.split_off(HEADER_LEN);
        let aad = Self::aad(&file, sha256);
        let plain_len = self
            .file_key(&file[MAGIC.len() + ID_LEN..])
            .open_in_place(
                Nonce::assume_unique_for_key([0u8; aead::NONCE_LEN]),
                Aad::from(&aad),
                &mut body,
            )
            .map_err(|_| PictureError::Tampered)?
            .len();
        body.truncate(plain_len);
        Ok(body)
    }

    pub fn key_id(&self) -> KeyId {
        KeyId(hex::encode(self.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn picture() -> (Vec<u8>, [u8; 32]) {
        let bytes = b"\xff\xd8\xff\xe0 plate 7ABC123 in a JPEG".to_vec();
        let sha = Sha256::digest(&bytes).into();
        (bytes, sha)
    }

    #[test]
    fn a_picture_round_trips_and_hides_its_bytes() {
        let key = PictureKey::new(&DataKey::generate().unwrap());
        let (bytes, sha) = picture();
        let sealed = key.seal(&sha, &bytes).unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"7ABC123"));
        assert_eq!(sealed_under(&sealed), Some(key.key_id()));
        // Two seals of one picture differ (fresh salt, fresh key).
        assert_ne!(sealed, key.seal(&sha, &bytes).unwrap());
        assert_eq!(key.open(&sha, sealed).unwrap(), bytes);
    }

    #[test]
    fn altered_moved_truncated_or_foreign_files_do_not_open() {
        let key = PictureKey::new(&DataKey::generate().unwrap());
        let other = PictureKey::new(&DataKey::generate().unwrap());
        let (bytes, sha) = picture();
        let sealed = key.seal(&sha, &bytes).unwrap();
        for i in [0, 5, HEADER_LEN - 1, HEADER_LEN + 2, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(key.open(&sha, bad).is_err(), "byte {i} flipped");
        }
        let mut short = sealed.clone();
        short.truncate(sealed.len() - 3);
        assert_eq!(key.open(&sha, short), Err(PictureError::Tampered));
        assert_eq!(
            key.open(&[7u8; 32], sealed.clone()),
            Err(PictureError::Tampered),
            "under another picture's name"
        );
        assert!(matches!(
            other.open(&sha, sealed),
            Err(PictureError::OtherKey { .. })
        ));
        assert_eq!(key.open(&sha, bytes), Err(PictureError::NotSealed));
        assert_eq!(
            key.open(&sha, b"PKE1".to_vec()),
            Err(PictureError::NotSealed)
        );
    }
}
