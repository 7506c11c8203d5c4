//! Phonemes to visemes: Azure's 22 viseme ids (what `response.animation_viseme.delta`
//! carries) from IPA, following Azure's en-US phoneme table, and the 15 Oculus visemes from
//! Azure's ids.

/// Azure's silence viseme.
pub const SILENCE: u8 = 0;

/// What a phoneme symbol is to the lip-sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sound {
    /// A mouth shape: an Azure viseme id (1–21).
    Viseme(u8),
    /// A pause: the mouth rests (punctuation, the silence before and after speech).
    Pause,
    /// A word boundary: speech carries on across it.
    WordBreak,
    /// The next syllable is stressed (`ˈ`, `ˌ`).
    Stress,
    /// A mark that lengthens or modifies the sound before it (`ː`), or a symbol with no
    /// shape of its own.
    Modifier,
}

/// What `symbol` (one IPA character as espeak-ng writes it; `^` and `$` are the silences
/// before and after an utterance) is to the lip-sync.
pub fn sound(symbol: char) -> Sound {
    let id = match symbol {
        '^' | '$' | ',' | '.' | '!' | '?' | ';' | ':' | '—' | '…' | '"' | '(' | ')' => return Sound::Pause,
        ' ' | '-' => return Sound::WordBreak,
        'ˈ' | 'ˌ' => return Sound::Stress,
        'æ' | 'ə' | 'ʌ' | 'ɐ' | 'ɚ' => 1,
        'ɑ' | 'a' => 2,
        'ɔ' | 'ɒ' => 3,
        'ɛ' | 'e' | 'ʊ' => 4,
        'ɜ' | 'ɝ' => 5,
        'i' | 'ɪ' | 'j' | 'ᵻ' | 'y' | 'ɨ' => 6,
        'u' | 'w' | 'ɯ' => 7,
        'o' => 8,
        'h' => 12,
        'ɹ' | 'r' | 'ʁ' => 13,
        'l' | 'ɫ' => 14,
        's' | 'z' => 15,
        'ʃ' | 'ʒ' => 16,
        'ð' => 17,
        'f' | 'v' => 18,
        't' | 'd' | 'n' | 'θ' | 'ɾ' | 'ʔ' => 19,
        'k' | 'g' | 'ɡ' | 'ŋ' | 'x' | 'ç' => 20,
        'p' | 'b' | 'm' => 21,
        _ => return Sound::Modifier,
    };
    Sound::Viseme(id)
}

/// Azure's single id for a diphthong written as two vowels (`aɪ` → 11, `aʊ` → 9, `ɔɪ` → 10).
pub fn diphthong(first: char, second: char) -> Option<u8> {
    match (first, second) {
        ('a', 'ɪ') => Some(11),
        ('a', 'ʊ') => Some(9),
        ('ɔ', 'ɪ') => Some(10),
        _ => None,
    }
}

/// The Oculus visemes, in `OVRLipSync.Viseme` order.
pub const OCULUS: [&str; 15] = ["sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "I", "O", "U"];

/// The Oculus viseme (index into [`OCULUS`]) closest to Azure viseme `id`.
pub fn oculus(id: u8) -> usize {
    let name = match id {
        1 | 2 | 9 | 11 => "aa",
        3 | 8 | 10 => "O",
        4 => "E",
        5 | 13 => "RR",
        6 => "I",
        7 => "U",
        12 | 20 => "kk",
        14 => "nn",
        15 => "SS",
        16 => "CH",
        17 => "TH",
        18 => "FF",
        19 => "DD",
        21 => "PP",
        _ => "sil",
    };
    OCULUS.iter().position(|n| *n == name).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phonemes_map_to_azure_ids_as_its_table_says() {
        // Azure's en-US table: p b m 21, f v 18, ð 17, s z 15, ʃ 16, k g ŋ 20, t d n θ 19,
        // l 14, ɹ 13, h 12, i ɪ j 6, u w 7, o 8, ɛ ʊ 4, ɑ 2, ɔ 3, ɝ 5, æ ə ʌ 1.
        let table = [
            ("pbm", 21),
            ("fv", 18),
            ("ð", 17),
            ("sz", 15),
            ("ʃʒ", 16),
            ("kgŋ", 20),
            ("tdnθ", 19),
            ("l", 14),
            ("ɹ", 13),
            ("h", 12),
            ("iɪj", 6),
            ("uw", 7),
            ("o", 8),
            ("ɛʊ", 4),
            ("ɑ", 2),
            ("ɔ", 3),
            ("ɝ", 5),
            ("æəʌ", 1),
        ];
        for (symbols, id) in table {
            for c in symbols.chars() {
                assert_eq!(sound(c), Sound::Viseme(id), "{c}");
            }
        }
        assert_eq!(sound('.'), Sound::Pause);
        assert_eq!(sound('^'), Sound::Pause);
        assert_eq!(sound(' '), Sound::WordBreak);
        assert_eq!(sound('ˈ'), Sound::Stress);
        assert_eq!(sound('ː'), Sound::Modifier);
        assert_eq!(diphthong('a', 'ɪ'), Some(11));
        assert_eq!(diphthong('e', 'ɪ'), None, "eɪ is two visemes (4, 6)");
    }

    #[test]
    fn every_azure_id_has_an_oculus_viseme() {
        assert_eq!(OCULUS[oculus(0)], "sil");
        assert_eq!(OCULUS[oculus(21)], "PP");
        assert_eq!(OCULUS[oculus(18)], "FF");
        assert_eq!(OCULUS[oculus(2)], "aa");
        assert_eq!(OCULUS[oculus(7)], "U");
        let used: std::collections::BTreeSet<usize> = (0..=21).map(oculus).collect();
        assert_eq!(used.len(), 15, "all 15 Oculus visemes are reached");
    }
}
