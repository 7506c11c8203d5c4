//! Converting a CTranslate2 Whisper model (faster-whisper's `model.bin` + `tokenizer.json`) into
//! the ggml file whisper.cpp loads, so the registries' CT2 packages run on whisper.cpp.
//!
//! The ggml file is: magic `ggml`, eleven `i32` hyper-parameters (vocabulary, audio context,
//! audio width, heads, layers, text context, text width, heads, layers, mel bins, weight type),
//! the mel filterbank (`i32` bins, `i32` FFT bins, f32 values), the vocabulary (`i32` count,
//! then `u32` length + bytes per token, ordinary tokens only: whisper.cpp names the special ones
//! itself), then the tensors under OpenAI's names, each as `i32` rank, `i32` name length, `i32`
//! type (0 f32, 1 f16, 8 q8_0), the dimensions innermost first, the name and the data. The
//! matrices (projections and the token embedding) are q8_0, as whisper.cpp's own `quantize`
//! writes them: a recogniser's decoding step reads the whole token embedding for its logits,
//! and at 8 bits instead of 16 (34 bytes per 32 values, not 64) that is about half the
//! memory to read per token. The convolutions are
//! f16; biases, norms, positional embeddings and the conv biases (stored as `[n, 1]`) are f32.
//!
//! CTranslate2 fuses some projections: self-attention's query/key/value are one `[3d, d]`
//! matrix and cross-attention's key/value one `[2d, d]`; they are split here. Whisper's key
//! projections have no bias (CTranslate2 stores zeros there), and the output projection is tied
//! to the token embedding.

use crate::ct2::Ct2Model;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

const GGML_MAGIC: u32 = 0x6767_6d6c;
const SAMPLE_RATE: f64 = 16_000.0;
const N_FFT: usize = 400;
/// The header's weight type: ggml's `GGML_FTYPE_MOSTLY_Q8_0` (7) with its quantization version
/// (2) in the thousands, as whisper.cpp's `quantize` writes it.
const FTYPE_Q8_0: usize = 2 * 1000 + 7;
/// Values per q8_0 block (one f16 scale, then that many `i8`s).
const QK8_0: usize = 32;

/// How a tensor's values are stored.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    F32,
    F16,
    /// Blocks of 32 values along the innermost dimension: `d = max|v| / 127` as f16, then
    /// `round(v / d)` as `i8` (ggml's `quantize_row_q8_0_ref`).
    Q8_0,
}

impl Kind {
    /// The type number in a ggml tensor header.
    fn ggml_type(self) -> usize {
        match self {
            Kind::F32 => 0,
            Kind::F16 => 1,
            Kind::Q8_0 => 8,
        }
    }
}

/// `values` (rows of a multiple of [`QK8_0`]) as q8_0 blocks.
fn q8_0(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / QK8_0 * (2 + QK8_0));
    for block in values.chunks_exact(QK8_0) {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
        out.extend(block.iter().map(|&v| (v * id).round() as i8 as u8));
    }
    out
}

/// Converts the CTranslate2 Whisper model in `dir` (`model.bin`, `tokenizer.json`) into a ggml
/// file written to `out`.
pub fn convert(dir: &Path, out: &mut impl Write) -> Result<(), String> {
    let bytes =
        std::fs::read(dir.join("model.bin")).map_err(|e| format!("{}: {e}", dir.join("model.bin").display()))?;
    let model = Ct2Model::parse(bytes)?;
    if model.spec != "WhisperSpec" {
        return Err(format!("model.bin is a {} model, not Whisper", model.spec));
    }
    let tokenizer = std::fs::read(dir.join("tokenizer.json"))
        .map_err(|e| format!("{}: {e}", dir.join("tokenizer.json").display()))?;
    let vocab = ordinary_tokens(&tokenizer)?;
    write_ggml(&model, &vocab, out)
}

struct Shape {
    vocab: usize,
    audio_ctx: usize,
    width: usize,
    audio_heads: usize,
    audio_layers: usize,
    text_ctx: usize,
    text_heads: usize,
    text_layers: usize,
    mels: usize,
}

fn count_layers(model: &Ct2Model, stack: &str) -> usize {
    (0..).take_while(|i| model.has(&format!("{stack}/layer_{i}/ffn/linear_0/weight"))).count()
}

fn shape(model: &Ct2Model) -> Result<Shape, String> {
    let embed = &model.var("decoder/embeddings/weight")?.dims;
    let conv1 = &model.var("encoder/conv1/weight")?.dims;
    let audio_pos = &model.var("encoder/position_encodings/encodings")?.dims;
    let text_pos = &model.var("decoder/position_encodings/encodings")?.dims;
    if embed.len() != 2 || conv1.len() != 3 || audio_pos.len() != 2 || text_pos.len() != 2 {
        return Err("model.bin has unexpected tensor ranks for Whisper".into());
    }
    let heads = |name: &str| model.int(name).and_then(|h| usize::try_from(h).map_err(|_| format!("{name} is {h}")));
    Ok(Shape {
        vocab: embed[0],
        audio_ctx: audio_pos[0],
        width: embed[1],
        audio_heads: heads("encoder/num_heads")?,
        audio_layers: count_layers(model, "encoder"),
        text_ctx: text_pos[0],
        text_heads: heads("decoder/num_heads")?,
        text_layers: count_layers(model, "decoder"),
        mels: conv1[1],
    })
}

/// The byte each character of GPT-2's byte-level alphabet stands for (the alphabet byte-level
/// BPE vocabularies — Whisper's, Qwen's — write their tokens in).
pub fn byte_decoder() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (u32::from('!')..=u32::from('~')).collect();
    printable.extend(u32::from('¡')..=u32::from('¬'));
    printable.extend(u32::from('®')..=u32::from('ÿ'));
    let mut map = HashMap::new();
    let mut extra = 0;
    for b in 0..=255u32 {
        let c = if printable.contains(&b) {
            b
        } else {
            extra += 1;
            255 + extra
        };
        map.insert(char::from_u32(c).expect("valid char"), b as u8);
    }
    map
}

/// The ordinary (non-special) tokens of a byte-level BPE `tokenizer.json`, as bytes, in id order:
/// every id below `<|endoftext|>`.
fn ordinary_tokens(tokenizer_json: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let json: serde_json::Value =
        serde_json::from_slice(tokenizer_json).map_err(|e| format!("tokenizer.json is not JSON: {e}"))?;
    let vocab = json.pointer("/model/vocab").and_then(|v| v.as_object()).ok_or("tokenizer.json has no model.vocab")?;
    let mut eot = vocab.get("<|endoftext|>").and_then(|v| v.as_u64());
    if let Some(added) = json.get("added_tokens").and_then(|a| a.as_array()) {
        for t in added {
            if t.get("content").and_then(|c| c.as_str()) == Some("<|endoftext|>") {
                eot = t.get("id").and_then(|i| i.as_u64());
            }
        }
    }
    let eot = eot.ok_or("tokenizer.json has no <|endoftext|> token")? as usize;
    let decoder = byte_decoder();
    let mut tokens = vec![Vec::new(); eot];
    for (text, id) in vocab {
        let Some(id) = id.as_u64().map(|i| i as usize).filter(|&i| i < eot) else { continue };
        tokens[id] = text
            .chars()
            .map(|c| decoder.get(&c).copied().ok_or_else(|| format!("token {text:?} is not byte-level BPE")))
            .collect::<Result<_, _>>()?;
    }
    Ok(tokens)
}

fn hz_to_mel(hz: f64) -> f64 {
    // Slaney's scale: linear below 1 kHz, logarithmic above.
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= min_log_hz { min_log_mel + (hz / min_log_hz).ln() / logstep } else { hz / f_sp }
}

fn mel_to_hz(mel: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel { min_log_hz * (logstep * (mel - min_log_mel)).exp() } else { f_sp * mel }
}

/// Whisper's mel filterbank (librosa's `filters.mel(sr=16000, n_fft=400, n_mels)`: Slaney scale
/// and area normalisation), `n_mels × (N_FFT/2 + 1)`, row-major.
pub fn mel_filters(n_mels: usize) -> Vec<f32> {
    let bins = N_FFT / 2 + 1;
    let fft_freqs: Vec<f64> = (0..bins).map(|i| i as f64 * SAMPLE_RATE / N_FFT as f64).collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2.0));
    let mel_f: Vec<f64> = (0..n_mels + 2).map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64)).collect();
    let mut out = Vec::with_capacity(n_mels * bins);
    for m in 0..n_mels {
        let enorm = 2.0 / (mel_f[m + 2] - mel_f[m]);
        for &f in &fft_freqs {
            let lower = (f - mel_f[m]) / (mel_f[m + 1] - mel_f[m]);
            let upper = (mel_f[m + 2] - f) / (mel_f[m + 2] - mel_f[m + 1]);
            // librosa stores the triangle as f32, then scales it in f64.
            let w = lower.min(upper).max(0.0) as f32;
            out.push((f64::from(w) * enorm) as f32);
        }
    }
    out
}

struct Ggml<'a, W: Write> {
    out: &'a mut W,
}

impl<W: Write> Ggml<'_, W> {
    fn i32(&mut self, v: usize) -> Result<(), String> {
        let v = i32::try_from(v).map_err(|_| format!("{v} does not fit the ggml header"))?;
        self.out.write_all(&v.to_le_bytes()).map_err(|e| e.to_string())
    }

    /// Writes a tensor; `dims` outermost first (PyTorch order).
    fn tensor(&mut self, name: &str, dims: &[usize], values: &[f32], kind: Kind) -> Result<(), String> {
        if dims.iter().product::<usize>() != values.len() {
            return Err(format!("tensor {name}: {} values do not fill {dims:?}", values.len()));
        }
        if kind == Kind::Q8_0 && !dims.last().is_some_and(|d| d.is_multiple_of(QK8_0)) {
            return Err(format!("tensor {name}: rows of {dims:?} are not whole blocks of {QK8_0}"));
        }
        self.i32(dims.len())?;
        self.i32(name.len())?;
        self.i32(kind.ggml_type())?;
        for &d in dims.iter().rev() {
            self.i32(d)?;
        }
        self.out.write_all(name.as_bytes()).map_err(|e| e.to_string())?;
        let data: Vec<u8> = match kind {
            Kind::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Kind::F16 => values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
            Kind::Q8_0 => q8_0(values),
        };
        self.out.write_all(&data).map_err(|e| e.to_string())?;
        Ok(())
    }
}

fn dims(model: &Ct2Model, name: &str) -> Result<Vec<usize>, String> {
    Ok(model.var(name)?.dims.clone())
}

/// Copies a CT2 linear layer (`weight` and, unless `bias` is false, `bias`) under `to`.
fn linear(g: &mut Ggml<impl Write>, model: &Ct2Model, from: &str, to: &str, bias: bool) -> Result<(), String> {
    let w = format!("{from}/weight");
    g.tensor(&format!("{to}.weight"), &dims(model, &w)?, &model.f32(&w)?, Kind::Q8_0)?;
    if bias {
        let b = format!("{from}/bias");
        g.tensor(&format!("{to}.bias"), &dims(model, &b)?, &model.f32(&b)?, Kind::F32)?;
    }
    Ok(())
}

fn norm(g: &mut Ggml<impl Write>, model: &Ct2Model, from: &str, to: &str) -> Result<(), String> {
    let (gamma, beta) = (format!("{from}/gamma"), format!("{from}/beta"));
    g.tensor(&format!("{to}.weight"), &dims(model, &gamma)?, &model.f32(&gamma)?, Kind::F32)?;
    g.tensor(&format!("{to}.bias"), &dims(model, &beta)?, &model.f32(&beta)?, Kind::F32)
}

/// Splits a fused `[k·d, d]` projection (and its `[k·d]` bias) into `k` linear layers named
/// `to.{names}`; `None` in `biases` drops that part's bias.
fn split(
    g: &mut Ggml<impl Write>,
    model: &Ct2Model,
    from: &str,
    to: &str,
    names: &[(&str, bool)],
    d: usize,
) -> Result<(), String> {
    let w = model.f32(&format!("{from}/weight"))?;
    let b = model.f32(&format!("{from}/bias"))?;
    if w.len() != names.len() * d * d || b.len() != names.len() * d {
        return Err(format!("{from} is not {} fused {d}×{d} projections", names.len()));
    }
    for (i, &(name, has_bias)) in names.iter().enumerate() {
        g.tensor(&format!("{to}.{name}.weight"), &[d, d], &w[i * d * d..(i + 1) * d * d], Kind::Q8_0)?;
        if has_bias {
            g.tensor(&format!("{to}.{name}.bias"), &[d], &b[i * d..(i + 1) * d], Kind::F32)?;
        }
    }
    Ok(())
}

/// A block's self-attention: its norm, the fused query/key/value split, the output projection.
fn self_attention(g: &mut Ggml<impl Write>, model: &Ct2Model, from: &str, to: &str, d: usize) -> Result<(), String> {
    norm(g, model, &format!("{from}/self_attention/layer_norm"), &format!("{to}.attn_ln"))?;
    let qkv = [("query", true), ("key", false), ("value", true)];
    split(g, model, &format!("{from}/self_attention/linear_0"), &format!("{to}.attn"), &qkv, d)?;
    linear(g, model, &format!("{from}/self_attention/linear_1"), &format!("{to}.attn.out"), true)
}

/// A block's feed-forward layer: its norm and two linear layers.
fn feed_forward(g: &mut Ggml<impl Write>, model: &Ct2Model, from: &str, to: &str) -> Result<(), String> {
    norm(g, model, &format!("{from}/ffn/layer_norm"), &format!("{to}.mlp_ln"))?;
    linear(g, model, &format!("{from}/ffn/linear_0"), &format!("{to}.mlp.0"), true)?;
    linear(g, model, &format!("{from}/ffn/linear_1"), &format!("{to}.mlp.2"), true)
}

fn write_ggml(model: &Ct2Model, vocab: &[Vec<u8>], out: &mut impl Write) -> Result<(), String> {
    let s = shape(model)?;
    let d = s.width;
    let mut g = Ggml { out };
    g.out.write_all(&GGML_MAGIC.to_le_bytes()).map_err(|e| e.to_string())?;
    for v in [
        s.vocab,
        s.audio_ctx,
        d,
        s.audio_heads,
        s.audio_layers,
        s.text_ctx,
        d,
        s.text_heads,
        s.text_layers,
        s.mels,
        FTYPE_Q8_0,
    ] {
        g.i32(v)?;
    }
    g.i32(s.mels)?;
    g.i32(N_FFT / 2 + 1)?;
    for v in mel_filters(s.mels) {
        g.out.write_all(&v.to_le_bytes()).map_err(|e| e.to_string())?;
    }
    g.i32(vocab.len())?;
    for token in vocab {
        g.i32(token.len())?;
        g.out.write_all(token).map_err(|e| e.to_string())?;
    }

    // Encoder.
    let pos = "encoder/position_encodings/encodings";
    g.tensor("encoder.positional_embedding", &dims(model, pos)?, &model.f32(pos)?, Kind::F32)?;
    for conv in ["conv1", "conv2"] {
        let w = format!("encoder/{conv}/weight");
        g.tensor(&format!("encoder.{conv}.weight"), &dims(model, &w)?, &model.f32(&w)?, Kind::F16)?;
        let b = format!("encoder/{conv}/bias");
        g.tensor(&format!("encoder.{conv}.bias"), &[d, 1], &model.f32(&b)?, Kind::F32)?;
    }
    for i in 0..s.audio_layers {
        let (from, to) = (format!("encoder/layer_{i}"), format!("encoder.blocks.{i}"));
        self_attention(&mut g, model, &from, &to, d)?;
        feed_forward(&mut g, model, &from, &to)?;
    }
    norm(&mut g, model, "encoder/layer_norm", "encoder.ln_post")?;

    // Decoder.
    let pos = "decoder/position_encodings/encodings";
    g.tensor("decoder.positional_embedding", &dims(model, pos)?, &model.f32(pos)?, Kind::F32)?;
    let emb = "decoder/embeddings/weight";
    g.tensor("decoder.token_embedding.weight", &dims(model, emb)?, &model.f32(emb)?, Kind::Q8_0)?;
    for i in 0..s.text_layers {
        let (from, to) = (format!("decoder/layer_{i}"), format!("decoder.blocks.{i}"));
        self_attention(&mut g, model, &from, &to, d)?;
        norm(&mut g, model, &format!("{from}/attention/layer_norm"), &format!("{to}.cross_attn_ln"))?;
        linear(&mut g, model, &format!("{from}/attention/linear_0"), &format!("{to}.cross_attn.query"), true)?;
        let kv = [("key", false), ("value", true)];
        split(&mut g, model, &format!("{from}/attention/linear_1"), &format!("{to}.cross_attn"), &kv, d)?;
        linear(&mut g, model, &format!("{from}/attention/linear_2"), &format!("{to}.cross_attn.out"), true)?;
        feed_forward(&mut g, model, &from, &to)?;
    }
    norm(&mut g, model, "decoder/layer_norm", "decoder.ln")?;

    g.out.flush().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_blocks_hold_each_value_within_half_a_step_of_its_scale() {
        let values: Vec<f32> = (0..64).map(|i| ((i * 37 % 61) as f32 - 30.0) / 7.0).collect();
        let blocks = q8_0(&values);
        assert_eq!(blocks.len(), 2 * (2 + QK8_0));
        for (block, original) in blocks.chunks_exact(2 + QK8_0).zip(values.chunks_exact(QK8_0)) {
            let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
            let amax = original.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!((d - amax / 127.0).abs() <= amax / 127.0 * 1e-3, "the scale: {d}");
            for (&q, &v) in block[2..].iter().zip(original) {
                // Half a step, and the scale's own rounding to f16 times up to 127 steps.
                assert!((q as i8 as f32 * d - v).abs() <= d * 0.5 + amax * 1e-3, "{v} stored as {}", q as i8);
            }
        }
        // A block of zeros is stored with a zero scale, not a division by it.
        assert!(q8_0(&[0.0; QK8_0]).iter().all(|&b| b == 0));
    }

    #[test]
    fn byte_level_alphabet_round_trips_every_byte() {
        let d = byte_decoder();
        assert_eq!(d.len(), 256);
        assert_eq!(d[&'Ġ'], b' ');
        assert_eq!(d[&'Ċ'], b'\n');
        assert_eq!(d[&'a'], b'a');
    }

    #[test]
    fn ordinary_tokens_stop_at_end_of_text() {
        let json = br#"{"model":{"vocab":{"!":0,"\u0120the":1,"<|endoftext|>":2}},"added_tokens":[{"id":2,"content":"<|endoftext|>"}]}"#;
        let t = ordinary_tokens(json).unwrap();
        assert_eq!(t, vec![b"!".to_vec(), b" the".to_vec()]);
        assert!(ordinary_tokens(br#"{"model":{"vocab":{"a":0}}}"#).unwrap_err().contains("endoftext"));
    }

    #[test]
    fn mel_filters_match_whispers_own() {
        // Values of `mel_80` in openai-whisper's assets/mel_filters.npz (librosa-made).
        let f = mel_filters(80);
        assert_eq!(f.len(), 80 * 201);
        let row = |m: usize| &f[m * 201..(m + 1) * 201];
        let peak = |m: usize| row(m).iter().enumerate().fold((0, 0f32), |a, (i, &v)| if v > a.1 { (i, v) } else { a });
        assert!((f[1] - 0.024_862_59).abs() < 1e-7, "{}", f[1]);
        assert_eq!((f[0], f[2]), (0.0, 0.0));
        let (bin, value) = peak(40);
        assert_eq!(bin, 43);
        assert!((value - 0.014_735_566).abs() < 1e-7, "{value}");
        let (bin, value) = peak(79);
        assert_eq!(bin, 192);
        assert!((value - 0.003_164_711_9).abs() < 1e-8, "{value}");
    }
}
