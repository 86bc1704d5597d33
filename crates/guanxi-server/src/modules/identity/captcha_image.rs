//! Image captchas for sign-in after repeated failures. The answer is stored hashed with an
//! expiry and can be tried once.

use base64::Engine as _;

/// A fresh captcha: its answer (lower-cased) and a PNG data URL.
pub fn generate() -> anyhow::Result<(String, String)> {
    let mut c = captcha::Captcha::new();
    c.add_chars(5)
        .apply_filter(captcha::filters::Noise::new(0.1))
        .apply_filter(captcha::filters::Wave::new(2.0, 8.0))
        .view(200, 70);
    let answer = c.chars_as_string().to_lowercase();
    let png = c.as_png().ok_or_else(|| anyhow::anyhow!("captcha rendering failed"))?;
    let data_url = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    );
    Ok((answer, data_url))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_captcha_is_a_png_with_a_five_character_answer() {
        let (answer, url) = super::generate().unwrap_or_default();
        assert_eq!(answer.chars().count(), 5);
        assert!(url.starts_with("data:image/png;base64,iVBOR"));
    }
}
