//! Time-based one-time passwords (RFC 6238, the codes of authenticator apps): secret
//! generation, the `otpauth://` URL and its QR code (SVG), and code checks that accept one step
//! of clock drift either way.

use base64::Engine as _;
use totp_rs::{Algorithm, Secret, TOTP};

fn totp(secret_base32: &str, account: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret_base32.to_owned()).to_bytes().ok()?;
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        Some("Guanxi".into()),
        account.to_owned(),
    )
    .ok()
}

/// A new random secret, base32-encoded (160 bits).
pub fn new_secret() -> anyhow::Result<String> {
    let bytes = super::secrets::random_bytes(20)?;
    Ok(Secret::Raw(bytes).to_encoded().to_string())
}

/// The `otpauth://` URL and a QR code of it as an SVG data URL.
pub fn enrolment(secret: &str, account: &str) -> anyhow::Result<(String, String)> {
    let t = totp(secret, account).ok_or_else(|| anyhow::anyhow!("invalid TOTP secret"))?;
    let url = t.get_url();
    let code = qrcode::QrCode::new(url.as_bytes())?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    let data_url = format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    );
    Ok((url, data_url))
}

/// Whether `code` is valid now for the secret.
pub fn check(secret: &str, account: &str, code: &str) -> bool {
    totp(secret, account).is_some_and(|t| t.check_current(code).unwrap_or(false))
}

/// The current code (for tests and for showing an example).
pub fn current(secret: &str, account: &str) -> Option<String> {
    totp(secret, account).and_then(|t| t.generate_current().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_secret_verifies_its_own_codes_only() {
        let secret = new_secret().unwrap_or_default();
        let code = current(&secret, "lilei").unwrap_or_default();
        assert_eq!(code.len(), 6);
        assert!(check(&secret, "lilei", &code));
        let wrong = if code == "000000" { "111111" } else { "000000" };
        assert!(!check(&secret, "lilei", wrong));
        let (url, qr) = enrolment(&secret, "lilei").unwrap_or_default();
        assert!(url.starts_with("otpauth://totp/Guanxi:lilei?"));
        assert!(qr.starts_with("data:image/svg+xml;base64,"));
    }
}
