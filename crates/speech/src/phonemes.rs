//! What the voices share: espeak-ng as the phonemizer, and speech placed on its sample clock
//! (phoneme spans from a model's per-symbol durations, and the text's words on top of them).
//!
//! espeak-ng runs as a separate, long-lived process per voice (it is GPL; brazen does not link
//! it). It prints one line of IPA per clause and drops the punctuation, so the text's clause
//! punctuation is put back after each line, as Piper's own phonemizer does. Text goes in on
//! stdin, so a text that starts with `-` is never read as an option.

use crate::SpeechError;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

/// Punctuation that ends a clause.
pub(crate) const CLAUSE_PUNCTUATION: &[char] = &[',', '.', '!', '?', ';', ':'];

/// A word no text says, sent after each phrase: its IPA line marks the end of the phrase's lines.
const MARKER: &str = "Qxbrazenmark.";
/// How long espeak-ng may take to answer one phrase before it is restarted.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// A long-lived `espeak-ng --ipa` for one voice. espeak-ng reads stdin line by line and answers
/// each line at once (≈ 2 ms, against ≈ 16 ms to start a process per phrase); a reader thread
/// forwards its lines, so a stalled process times out instead of hanging synthesis.
struct Espeak {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    marker: String,
}

impl Espeak {
    fn start(voice: &str) -> Result<Espeak, SpeechError> {
        let mut child = Command::new("espeak-ng")
            .args(["-q", "--ipa", "-v", voice])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                SpeechError::Phonemizer(format!(
                    "cannot run espeak-ng ({e}); install it with `apt-get install espeak-ng`"
                ))
            })?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut espeak = Espeak { child, stdin, lines, marker: String::new() };
        espeak.send(MARKER)?;
        espeak.marker = espeak.next_line()?.trim().to_owned();
        Ok(espeak)
    }

    fn send(&mut self, line: &str) -> Result<(), SpeechError> {
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| SpeechError::Phonemizer(e.to_string()))
    }

    fn next_line(&self) -> Result<String, SpeechError> {
        self.lines
            .recv_timeout(ANSWER_TIMEOUT)
            .map_err(|_| SpeechError::Phonemizer("espeak-ng stopped answering".into()))
    }

    /// The IPA lines (one per clause) of one line of text.
    fn ask(&mut self, text: &str) -> Result<Vec<String>, SpeechError> {
        self.send(text)?;
        self.send(MARKER)?;
        let mut out = Vec::new();
        loop {
            let line = self.next_line()?;
            let line = line.trim();
            if line == self.marker {
                return Ok(out);
            }
            if !line.is_empty() {
                out.push(line.to_owned());
            }
        }
    }
}

impl Drop for Espeak {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The running espeak-ng processes, by voice.
static PROCESSES: Mutex<Option<HashMap<String, Espeak>>> = Mutex::new(None);

/// The IPA lines of `text` from the voice's long-lived process, restarting it once if it fails.
fn clause_lines(voice: &str, text: &str) -> Result<Vec<String>, SpeechError> {
    let mut processes = PROCESSES.lock().unwrap_or_else(|e| e.into_inner());
    let map = processes.get_or_insert_with(HashMap::new);
    let mut last_error = None;
    for _ in 0..2 {
        if !map.contains_key(voice) {
            map.insert(voice.to_owned(), Espeak::start(voice)?);
        }
        let espeak = map.get_mut(voice).expect("just inserted");
        match espeak.ask(text) {
            Ok(lines) => return Ok(lines),
            Err(e) => {
                map.remove(voice);
                last_error = Some(e);
            }
        }
    }
    Err(last_error.expect("tried"))
}

/// The IPA of `text` in espeak-ng's `voice`, with the clause punctuation put back.
pub fn ipa(voice: &str, text: &str) -> Result<String, SpeechError> {
    let text: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let lines = clause_lines(voice, &text)?;
    // The punctuation that ends each clause, in order (a '.' inside "59.99" ends none).
    let chars: Vec<char> = text.trim_end().chars().collect();
    let marks: Vec<char> = chars
        .iter()
        .enumerate()
        .filter(|(i, c)| CLAUSE_PUNCTUATION.contains(c) && chars.get(i + 1).is_none_or(|n| n.is_whitespace()))
        .map(|(_, c)| *c)
        .collect();
    let mut ipa = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            ipa.push(' ');
        }
        ipa.push_str(line);
        if let Some(mark) = marks.get(i) {
            ipa.push(*mark);
        }
    }
    Ok(ipa)
}

/// One phoneme of synthesised speech on the audio's sample clock.
#[derive(Debug, Clone, PartialEq)]
pub struct PhonemeSpan {
    /// The IPA symbol; `^` is the silence before the first phoneme, `$` the silence after the
    /// last, `' '` a word break.
    pub phoneme: char,
    /// First sample.
    pub start: usize,
    /// Samples it lasts.
    pub len: usize,
}

/// What a voice said: the audio, and when each phoneme is heard.
#[derive(Debug, Clone, PartialEq)]
pub struct Speech {
    /// 16-bit mono samples.
    pub samples: Vec<i16>,
    /// Their rate.
    pub sample_rate: u32,
    /// The IPA that was spoken.
    pub ipa: String,
    /// The phonemes in order, covering the whole audio (empty if the voice has no duration
    /// output).
    pub phonemes: Vec<PhonemeSpan>,
}

/// A word of the text and when it is heard, in samples.
#[derive(Debug, Clone, PartialEq)]
pub struct WordSpan {
    /// The word as written (a whitespace-separated token of the text, punctuation included).
    pub text: String,
    /// First sample.
    pub start: usize,
    /// Samples it lasts (up to the next word, so pauses belong to the word before them).
    pub len: usize,
}

impl Speech {
    /// Its length in samples: the audio's, or where the timings end when the audio is still
    /// to come.
    pub fn len(&self) -> usize {
        self.samples.len().max(self.phonemes.last().map_or(0, |p| p.start + p.len))
    }

    /// Whether nothing is said.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When each word of `text` (the text this speech was made from) is heard. The spoken
    /// words (groups of phonemes between word breaks) are matched to the text's words one to
    /// one when they are as many; otherwise (a price or a code is spoken as several words) the
    /// text's words share the speech in proportion to their length.
    pub fn words(&self, text: &str) -> Vec<WordSpan> {
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let total = self.len();
        if tokens.is_empty() {
            return Vec::new();
        }
        let mut spoken: Vec<(usize, usize)> = Vec::new(); // (start, end) of each spoken word
        let mut open = false;
        for p in &self.phonemes {
            match p.phoneme {
                '^' | '$' => open = false,
                ' ' => {
                    open = false;
                    if let Some(last) = spoken.last_mut() {
                        last.1 = p.start + p.len;
                    }
                }
                c if CLAUSE_PUNCTUATION.contains(&c) => {
                    if let Some(last) = spoken.last_mut() {
                        last.1 = p.start + p.len;
                    }
                }
                _ if open => {
                    if let Some(last) = spoken.last_mut() {
                        last.1 = p.start + p.len;
                    }
                }
                _ => {
                    open = true;
                    spoken.push((p.start, p.start + p.len));
                }
            }
        }
        let (first, last) = match (spoken.first(), spoken.last()) {
            (Some(f), Some(l)) => (f.0, l.1),
            _ => (0, total),
        };
        let bounds: Vec<(usize, usize)> = if spoken.len() == tokens.len() {
            spoken
        } else {
            let weights: Vec<usize> = tokens.iter().map(|t| t.chars().count().max(1)).collect();
            let sum: usize = weights.iter().sum();
            let mut at = first;
            weights
                .iter()
                .map(|w| {
                    let len = (last - first) * w / sum;
                    at += len;
                    (at - len, at)
                })
                .collect()
        };
        let mut words: Vec<WordSpan> = tokens
            .iter()
            .zip(&bounds)
            .map(|(t, (s, e))| WordSpan { text: (*t).to_owned(), start: *s, len: e.saturating_sub(*s) })
            .collect();
        // Each word lasts until the next one starts; the last until the end of the audio.
        for i in 0..words.len() {
            let end = words.get(i + 1).map_or(total, |n| n.start);
            words[i].len = end.saturating_sub(words[i].start);
        }
        words
    }
}

/// Phoneme spans from per-id frame counts: each pad's time goes to the phoneme before it;
/// `^` and the first pad are the leading silence, `$` the trailing one.
pub(crate) fn spans(symbols: &[(i64, char)], frames: &[f32], hop: usize) -> Vec<PhonemeSpan> {
    let mut out: Vec<PhonemeSpan> = Vec::new();
    let mut at = 0usize;
    for ((_, symbol), f) in symbols.iter().zip(frames) {
        let len = f.max(0.0).round() as usize * hop;
        match (symbol, out.last_mut()) {
            ('_', Some(last)) => last.len += len,
            ('_', None) => out.push(PhonemeSpan { phoneme: '^', start: at, len }),
            (c, _) => out.push(PhonemeSpan { phoneme: *c, start: at, len }),
        }
        at += len;
    }
    out
}
