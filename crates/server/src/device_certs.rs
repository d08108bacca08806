//! The agency's device certificate authority (issue 24 item 3): it makes
//! each device's client certificate, delivered once as a PKCS#12 file,
//! and checks the certificate a connection presents.
//!
//! The TLS layer asks every client for a certificate but accepts any (or
//! none), checking only that the client holds its key; whether the
//! certificate is the agency's, unexpired and unrevoked is decided here
//! on every request that reaches plate data, so that a revocation takes
//! effect at once and a stranger's certificate gets a 403 that says why,
//! not a failed handshake that says nothing.

use std::sync::{Arc, RwLock};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName as TlsName, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use platekeeper_store::{DeviceCa, Store};

/// How long a device certificate is good for.
pub const DEVICE_CERT_DAYS: i64 = 730;
/// How long the authority's own certificate is good for.
const CA_DAYS: i64 = 3650;
/// Largest certificate a client may present (a real one is about 1 KB).
pub const MAX_CERT_BYTES: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("making a certificate failed: {0}")]
    Make(String),
    #[error("the device authority is unusable: {0}")]
    Authority(String),
    #[error(transparent)]
    Store(#[from] platekeeper_store::StoreError),
}

fn make(e: impl std::fmt::Display) -> CertError {
    CertError::Make(e.to_string())
}

fn time_of(ms: i64) -> Result<time::OffsetDateTime, CertError> {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000).map_err(make)
}

/// A new authority for `agency`: its self-signed certificate and key.
pub fn new_authority(agency: &str, now_ms: i64) -> Result<DeviceCa, CertError> {
    let key = KeyPair::generate().map_err(make)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::OrganizationName,
        agency.chars().take(64).collect::<String>(),
    );
    dn.push(DnType::CommonName, "Platekeeper device authority");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = time_of(now_ms - 3_600_000)?;
    params.not_after = time_of(now_ms + CA_DAYS * 86_400_000)?;
    params.serial_number = Some(random_serial()?);
    let cert = params.self_signed(&key).map_err(make)?;
    Ok(DeviceCa {
        cert: cert.der().to_vec(),
        key: key.serialize_der(),
    })
}

fn random_serial() -> Result<SerialNumber, CertError> {
    let mut b = platekeeper_store::credentials::random_bytes::<16>().map_err(make)?;
    // Positive, as DER integers in certificates must be.
    b[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&b))
}

/// A device's certificate, just made.
pub struct Issued {
    /// The PKCS#12 file: the device's key, its certificate and the
    /// authority's, encrypted under `passphrase`.
    pub pkcs12: Vec<u8>,
    pub passphrase: String,
    pub fingerprint: [u8; 32],
    pub serial: String,
    pub not_after_ms: i64,
}

/// Makes a client certificate for device `name`, signed by `ca`.
pub fn issue(ca: &DeviceCa, name: &str, now_ms: i64) -> Result<Issued, CertError> {
    let ca_key =
        KeyPair::try_from(ca.key.as_slice()).map_err(|e| CertError::Authority(e.to_string()))?;
    let ca_der = CertificateDer::from(ca.cert.clone());
    let issuer = Issuer::from_ca_cert_der(&ca_der, &ca_key)
        .map_err(|e| CertError::Authority(e.to_string()))?;
    let key = KeyPair::generate().map_err(make)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        name.chars().take(64).collect::<String>(),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let serial = random_serial()?;
    let serial_hex = hex::encode(serial.to_bytes());
    params.serial_number = Some(serial);
    let not_after_ms = now_ms + DEVICE_CERT_DAYS * 86_400_000;
    params.not_before = time_of(now_ms - 3_600_000)?;
    params.not_after = time_of(not_after_ms)?;
    let cert = params.signed_by(&key, &issuer).map_err(make)?;
    let passphrase = passphrase()?;
    let chain = vec![
        p12_keystore::Certificate::from_der(cert.der()).map_err(make)?,
        p12_keystore::Certificate::from_der(&ca.cert).map_err(make)?,
    ];
    let fingerprint: [u8; 32] = Sha256::digest(cert.der()).into();
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "platekeeper-device",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(p12_keystore::PrivateKeyChain::new(
            key.serialize_der(),
            fingerprint,
            chain,
        )),
    );
    let pkcs12 = store.writer(&passphrase).write().map_err(make)?;
    Ok(Issued {
        pkcs12,
        passphrase,
        fingerprint,
        serial: serial_hex,
        not_after_ms,
    })
}

/// A one-time passphrase: 20 characters of an alphabet without look-alikes
/// (about 100 bits), read to whoever installs the file.
fn passphrase() -> Result<String, CertError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let bytes = platekeeper_store::credentials::random_bytes::<20>().map_err(make)?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect::<Vec<_>>()
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

/// Checks presented certificates against the agency's authority, once it
/// exists; kept in the server's state and refreshed when the authority
/// is made.
#[derive(Default)]
pub struct DeviceAuthority {
    verifier: RwLock<Option<Arc<dyn ClientCertVerifier>>>,
    /// TLS-terminating proxies whose `x-client-cert` header is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// Why a connection's certificate is not an agency device's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotADevice {
    NoCertificate,
    NoAuthority,
    Invalid(String),
}

impl std::fmt::Display for NotADevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotADevice::NoCertificate => {
                write!(f, "the connection presented no device certificate")
            }
            NotADevice::NoAuthority => write!(f, "no device has been registered yet"),
            NotADevice::Invalid(why) => {
                write!(f, "the device certificate is not the agency's: {why}")
            }
        }
    }
}

/// The ring provider: rustls marks it deprecated only for lacking
/// post-quantum key exchange. aws-lc-rs (which has it, and a FIPS mode)
/// needs cmake and a long C build on every machine that builds this; see
/// docs/SECURITY.md for where that leaves the CJIS FIPS expectation.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl DeviceAuthority {
    /// No authority yet; `x-client-cert` believed from `trusted_proxies`.
    pub fn new(trusted_proxies: Vec<std::net::IpAddr>) -> DeviceAuthority {
        DeviceAuthority {
            verifier: RwLock::new(None),
            trusted_proxies,
        }
    }

    /// Loads the authority from `store` if it has one.
    pub fn load(&self, store: &Store) -> Result<(), CertError> {
        if let Some(ca) = store.device_ca()? {
            self.set(&ca)?;
        }
        Ok(())
    }

    /// Whether this node knows the agency's device authority yet.
    pub fn has_authority(&self) -> bool {
        self.verifier.read().map(|v| v.is_some()).unwrap_or(false)
    }

    fn set(&self, ca: &DeviceCa) -> Result<(), CertError> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(ca.cert.clone()))
            .map_err(|e| CertError::Authority(e.to_string()))?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| CertError::Authority(e.to_string()))?;
        if let Ok(mut v) = self.verifier.write() {
            *v = Some(verifier);
        }
        Ok(())
    }

    /// The authority, made now if the agency has none yet (logged).
    pub fn ensure(
        &self,
        store: &Store,
        actor: &platekeeper_store::Actor,
        now_ms: i64,
    ) -> Result<DeviceCa, CertError> {
        let ca = match store.device_ca()? {
            Some(ca) => ca,
            None => {
                let fresh = new_authority(&store.policy().agency_name, now_ms)?;
                store.keep_device_ca(fresh, actor, now_ms)?
            }
        };
        self.set(&ca)?;
        Ok(ca)
    }

    /// The SHA-256 of `chain`'s first certificate when it is a client
    /// certificate of the agency's authority, valid at `now_ms`.
    pub fn check(
        &self,
        chain: &[CertificateDer<'static>],
        now_ms: i64,
    ) -> Result<[u8; 32], NotADevice> {
        let Some(end_entity) = chain.first() else {
            return Err(NotADevice::NoCertificate);
        };
        if end_entity.len() > MAX_CERT_BYTES {
            return Err(NotADevice::Invalid("the certificate is too large".into()));
        }
        let verifier = self
            .verifier
            .read()
            .ok()
            .and_then(|v| v.clone())
            .ok_or(NotADevice::NoAuthority)?;
        let now =
            UnixTime::since_unix_epoch(std::time::Duration::from_millis(now_ms.max(0) as u64));
        verifier
            .verify_client_cert(end_entity, &chain[1..], now)
            .map_err(|e| NotADevice::Invalid(e.to_string()))?;
        Ok(Sha256::digest(end_entity.as_ref()).into())
    }
}

/// The TLS layer's client-certificate check: ask for one, accept any or
/// none, and check that the client holds the key of the one it shows
/// (the signatures). Whose certificate it is, [`DeviceAuthority::check`]
/// decides per request.
#[derive(Debug)]
pub struct AnyClientCert {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl Default for AnyClientCert {
    fn default() -> Self {
        AnyClientCert {
            provider: provider(),
        }
    }
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[TlsName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The server's TLS settings: its certificate and key (PEM files), and
/// the device check above.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<rustls::ServerConfig, String> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--tls-cert: not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err("--tls-cert: no certificate in the file".into());
    }
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("--tls-key: not a PEM private key file: {e}"))?;
    rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(Arc::new(AnyClientCert::default()))
        .with_single_cert(certs, key)
        .map_err(|e| format!("--tls-cert and --tls-key do not make a usable pair: {e}"))
}

/// Test support: a PKCS#8 key and a certificate (DER) taken back out of a
/// PKCS#12 file, as a device would install it.
pub fn open_pkcs12(
    data: &[u8],
    passphrase: &str,
) -> Result<(PrivatePkcs8KeyDer<'static>, Vec<CertificateDer<'static>>), String> {
    let store = p12_keystore::KeyStore::from_pkcs12(data, passphrase).map_err(|e| e.to_string())?;
    let (_, chain) = store.private_key_chain().ok_or("the file holds no key")?;
    Ok((
        PrivatePkcs8KeyDer::from(chain.key().to_vec()),
        chain
            .chain()
            .iter()
            .map(|c| CertificateDer::from(c.as_der().to_vec()))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000;
    const DAY: i64 = 86_400_000;

    fn authority(ca: &DeviceCa) -> DeviceAuthority {
        let a = DeviceAuthority::new(Vec::new());
        a.set(ca).unwrap();
        a
    }

    #[test]
    fn a_device_certificate_is_the_agencys_only_while_it_is_valid() {
        let ca = new_authority("Oakland PD", NOW).unwrap();
        let issued = issue(&ca, "Unit 12 MDT", NOW).unwrap();
        let (_, chain) = open_pkcs12(&issued.pkcs12, &issued.passphrase).unwrap();
        assert_eq!(
            Sha256::digest(chain[0].as_ref()).as_slice(),
            issued.fingerprint
        );
        let a = authority(&ca);
        assert_eq!(a.check(&chain, NOW), Ok(issued.fingerprint));
        assert_eq!(
            a.check(&chain[..1], NOW + DAY),
            Ok(issued.fingerprint),
            "the leaf alone is enough"
        );
        // Before it was issued, and after it ends.
        assert!(matches!(
            a.check(&chain, NOW - 2 * DAY),
            Err(NotADevice::Invalid(_))
        ));
        let after = issued.not_after_ms + DAY;
        assert!(
            matches!(a.check(&chain, after), Err(NotADevice::Invalid(_))),
            "expired"
        );
        // Another agency's authority does not vouch for it.
        let other = authority(&new_authority("Elsewhere PD", NOW).unwrap());
        assert!(matches!(
            other.check(&chain, NOW),
            Err(NotADevice::Invalid(_))
        ));
        // The authority's own certificate is not a device.
        let ca_only = vec![CertificateDer::from(ca.cert.clone())];
        assert!(matches!(
            a.check(&ca_only, NOW),
            Err(NotADevice::Invalid(_))
        ));
        // Nothing, no authority yet, rubbish, too large.
        assert_eq!(a.check(&[], NOW), Err(NotADevice::NoCertificate));
        assert_eq!(
            DeviceAuthority::new(Vec::new()).check(&chain, NOW),
            Err(NotADevice::NoAuthority)
        );
        let junk = vec![CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00])];
        assert!(matches!(a.check(&junk, NOW), Err(NotADevice::Invalid(_))));
        let huge = vec![CertificateDer::from(vec![0u8; MAX_CERT_BYTES + 1])];
        assert!(
            matches!(a.check(&huge, NOW), Err(NotADevice::Invalid(w)) if w.contains("too large"))
        );
    }

    #[test]
    fn each_device_gets_its_own_key_serial_and_passphrase() {
        let ca = new_authority("Oakland PD", NOW).unwrap();
        let a = issue(&ca, "A", NOW).unwrap();
        let b = issue(&ca, "A", NOW).unwrap();
        assert_ne!(a.fingerprint, b.fingerprint);
        assert_ne!(a.serial, b.serial);
        assert_ne!(a.passphrase, b.passphrase);
        assert_eq!(a.passphrase.len(), 23, "four groups of five, dashed");
        assert!(
            open_pkcs12(&a.pkcs12, &b.passphrase).is_err(),
            "each file opens with its own passphrase"
        );
        let bad = DeviceCa {
            cert: ca.cert.clone(),
            key: vec![1, 2, 3],
        };
        assert!(matches!(
            issue(&bad, "A", NOW),
            Err(CertError::Authority(_))
        ));
    }
}
