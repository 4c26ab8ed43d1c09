//! Making the control plane's CA and server certificate (ECDSA P-256).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

/// The generated CA's common name.
pub const CA_COMMON_NAME: &str = "Weft control plane CA";
/// How long the generated CA is valid.
const CA_VALIDITY: Duration = Duration::days(3650);
/// How long a server certificate is valid; it is re-issued at a start
/// when less than [`super::RENEW_BEFORE_SECS`] is left.
const SERVER_VALIDITY: Duration = Duration::days(365);
/// Clock skew allowance: certificates are valid from an hour ago.
const BACKDATE: Duration = Duration::hours(1);

/// A certificate and its key, PEM.
pub(super) struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    /// Unix seconds.
    pub expires: u64,
}

/// A fresh self-signed CA.
pub(super) fn ca() -> Result<Issued, rcgen::Error> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    // Every generated CA gets its own name, so a proxy holding another
    // control plane's CA sees "unknown issuer", not a bad signature.
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, random_id()?);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    let cert = params.self_signed(&key)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        expires: unix(params.not_after),
    })
}

/// A server certificate for `sans` (IP addresses or DNS names), signed by
/// the CA `ca_cert_pem` with `ca_key_pem`.
pub(super) fn server(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    sans: &[String],
) -> Result<Issued, rcgen::Error> {
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, KeyPair::from_pem(ca_key_pem)?)?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    // `new` makes an IP SAN of every entry that parses as an address.
    let mut params = CertificateParams::new(sans.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "weft control plane");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + SERVER_VALIDITY;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        expires: unix(params.not_after),
    })
}

/// 16 random hex digits.
fn random_id() -> Result<String, rcgen::Error> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| rcgen::Error::RingUnspecified)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn unix(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp()).unwrap_or_default()
}
