//! The SSML of one phrase for Azure's text to speech: the voice, its speaking style
//! (`mstts:express-as`, for voices that have styles) and the prosody (rate, pitch). Volume is
//! left to brazen, which applies the session's `volume` to every voice's audio alike.

use brazen_protocol::Voice;

/// The voice spoken when the session names one that is not an Azure voice (`alloy`).
pub const DEFAULT_VOICE: &str = "en-US-AvaMultilingualNeural";

/// Whether `name` is an Azure voice name: a locale, then the voice (`en-US-AvaNeural`,
/// `en-US-Ava:DragonHDLatestNeural`, `zh-CN-XiaoxiaoMultilingualNeural`).
pub fn is_azure_voice(name: &str) -> bool {
    let mut parts = name.splitn(3, '-');
    let (Some(lang), Some(region), Some(rest)) = (parts.next(), parts.next(), parts.next()) else { return false };
    (2..=3).contains(&lang.len())
        && lang.chars().all(|c| c.is_ascii_lowercase())
        && region.len() >= 2
        && region.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && !rest.is_empty()
}

/// The locale an Azure voice name starts with (`en-US`), or `en-US`.
pub fn locale(voice: &str) -> String {
    if is_azure_voice(voice) { voice.splitn(3, '-').take(2).collect::<Vec<_>>().join("-") } else { "en-US".into() }
}

/// Text safe inside an XML element.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The voice a session's `voice` asks for: its name when it is an Azure voice, else `default`.
pub fn voice_name(voice: &Voice, default: &str) -> String {
    if is_azure_voice(&voice.name) { voice.name.clone() } else { default.to_owned() }
}

/// The SSML that says `text` in `voice` (already an Azure voice name) with the session voice's
/// style (`style` among its extra fields), `rate` (0.5–1.5) and `pitch` (`+5%`, `high`, `-2st`).
pub fn ssml(text: &str, voice: &str, settings: &Voice) -> String {
    let mut prosody = Vec::new();
    if let Some(rate) = settings.rate.filter(|r| r.is_finite() && (*r - 1.0).abs() > 1e-3) {
        prosody.push(format!("rate=\"{:+.0}%\"", (rate.clamp(0.5, 2.0) - 1.0) * 100.0));
    }
    if let Some(pitch) = settings.pitch.as_deref().filter(|p| brazen_protocol::session::pitch_factor(p).is_some()) {
        prosody.push(format!("pitch=\"{}\"", escape(pitch.trim())));
    }
    let mut inner = escape(text);
    if !prosody.is_empty() {
        inner = format!("<prosody {}>{inner}</prosody>", prosody.join(" "));
    }
    let style = settings
        .extra
        .get("style")
        .and_then(|s| s.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    if let Some(style) = style {
        inner = format!("<mstts:express-as style=\"{style}\">{inner}</mstts:express-as>");
    }
    format!(
        "<speak version=\"1.0\" xmlns=\"http://www.w3.org/2001/10/synthesis\" \
         xmlns:mstts=\"https://www.w3.org/2001/mstts\" xml:lang=\"{}\"><voice name=\"{}\">{inner}</voice></speak>",
        locale(voice),
        escape(voice)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voice_names_and_locales() {
        assert!(is_azure_voice("en-US-AvaNeural"));
        assert!(is_azure_voice("en-US-Ava:DragonHDLatestNeural"));
        assert!(!is_azure_voice("alloy") && !is_azure_voice("en_US-joe-medium") && !is_azure_voice("en-US"));
        assert_eq!(locale("de-DE-KatjaNeural"), "de-DE");
        assert_eq!(voice_name(&Voice::default(), DEFAULT_VOICE), DEFAULT_VOICE);
    }

    #[test]
    fn the_ssml_carries_style_rate_and_pitch_and_escapes_the_text() {
        let mut v =
            Voice { name: "en-US-JennyNeural".into(), rate: Some(1.2), pitch: Some("+5%".into()), ..Voice::default() };
        v.extra.insert("style".into(), "cheerful".into());
        let s = ssml("Fish & chips <now>", "en-US-JennyNeural", &v);
        assert!(s.contains("xml:lang=\"en-US\"><voice name=\"en-US-JennyNeural\">"), "{s}");
        assert!(s.contains("<mstts:express-as style=\"cheerful\"><prosody rate=\"+20%\" pitch=\"+5%\">"), "{s}");
        assert!(s.contains("Fish &amp; chips &lt;now&gt;"), "{s}");
        v.pitch = Some("\"><evil/>".into());
        v.extra.insert("style".into(), "x\"/><evil".into());
        let s = ssml("hi", "en-US-JennyNeural", &v);
        assert!(!s.contains("evil"), "unknown pitch and style values are left out: {s}");
    }
}
