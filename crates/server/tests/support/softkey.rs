//! A software passkey for the server's tests: makes WebAuthn
//! registration and sign-in answers the way an authenticator does (a
//! P-256 key, "none" attestation, CBOR by hand), so the server's whole
//! ceremony — challenge, origin, RP id, signature, counter — is checked
//! for real. The browser tests use Chromium's own virtual authenticator.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub struct SoftKey {
    pair: EcdsaKeyPair,
    pub cred_id: Vec<u8>,
    pub counter: u32,
    rng: SystemRandom,
}

fn head(major: u8, n: u64) -> Vec<u8> {
    let m = major << 5;
    match n {
        0..=23 => vec![m | n as u8],
        24..=0xff => vec![m | 24, n as u8],
        0x100..=0xffff => [vec![m | 25], (n as u16).to_be_bytes().to_vec()].concat(),
        _ => [vec![m | 26], (n as u32).to_be_bytes().to_vec()].concat(),
    }
}

fn int(i: i64) -> Vec<u8> {
    if i >= 0 {
        head(0, i as u64)
    } else {
        head(1, (-1 - i) as u64)
    }
}

fn bytes(b: &[u8]) -> Vec<u8> {
    [head(2, b.len() as u64), b.to_vec()].concat()
}

fn text(s: &str) -> Vec<u8> {
    [head(3, s.len() as u64), s.as_bytes().to_vec()].concat()
}

pub fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

impl Default for SoftKey {
    fn default() -> Self {
        Self::new()
    }
}

impl SoftKey {
    pub fn new() -> SoftKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let mut cred_id = vec![0u8; 32];
        ring::rand::SecureRandom::fill(&rng, &mut cred_id).unwrap();
        SoftKey {
            pair,
            cred_id,
            counter: 0,
            rng,
        }
    }

    fn cose_key(&self) -> Vec<u8> {
        let p = self.pair.public_key().as_ref();
        [
            head(5, 5),
            int(1),
            int(2),
            int(3),
            int(-7),
            int(-1),
            int(1),
            int(-2),
            bytes(&p[1..33]),
            int(-3),
            bytes(&p[33..65]),
        ]
        .concat()
    }

    fn client_data(kind: &str, options: &Value, origin: &str) -> Vec<u8> {
        json!({
            "type": kind,
            "challenge": options["publicKey"]["challenge"],
            "origin": origin,
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes()
    }

    /// The answer to `navigator.credentials.create(options)` at `origin`.
    pub fn create(&self, options: &Value, origin: &str) -> Value {
        let rp_id = options["publicKey"]["rp"]["id"].as_str().unwrap();
        let auth_data = [
            Sha256::digest(rp_id.as_bytes()).to_vec(),
            vec![0x45],
            self.counter.to_be_bytes().to_vec(),
            vec![0u8; 16],
            (self.cred_id.len() as u16).to_be_bytes().to_vec(),
            self.cred_id.clone(),
            self.cose_key(),
        ]
        .concat();
        let attestation = [
            head(5, 3),
            text("fmt"),
            text("none"),
            text("attStmt"),
            head(5, 0),
            text("authData"),
            bytes(&auth_data),
        ]
        .concat();
        let client = Self::client_data("webauthn.create", options, origin);
        json!({
            "id": b64(&self.cred_id),
            "rawId": b64(&self.cred_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&attestation),
                "clientDataJSON": b64(&client),
            },
            "extensions": {},
        })
    }

    /// The answer to `navigator.credentials.get(options)` at `origin`,
    /// signed; the counter goes up as an authenticator's does.
    pub fn get(&mut self, options: &Value, origin: &str, rp_id: &str) -> Value {
        self.counter += 1;
        let auth_data = [
            Sha256::digest(rp_id.as_bytes()).to_vec(),
            vec![0x05],
            self.counter.to_be_bytes().to_vec(),
        ]
        .concat();
        let client = Self::client_data("webauthn.get", options, origin);
        let signed = [auth_data.clone(), Sha256::digest(&client).to_vec()].concat();
        let sig = self.pair.sign(&self.rng, &signed).unwrap();
        json!({
            "id": b64(&self.cred_id),
            "rawId": b64(&self.cred_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client),
                "signature": b64(sig.as_ref()),
                "userHandle": null,
            },
            "extensions": {},
        })
    }
}
