//! Qwen2 decoder-only transformer over GGUF weights (candle, CPU), with a KV cache that can be
//! cut back to any length: the tokens a new prompt shares with the cached ones are not computed
//! again.
//!
//! Layout (GGUF names): `token_embd` (tied to the output when there is no `output.weight`),
//! per block `attn_norm`, `attn_{q,k,v}` (with biases), `attn_output`, `ffn_norm`,
//! `ffn_{gate,up,down}` (SwiGLU), then `output_norm`. Grouped-query attention, rotary position
//! embeddings (non-interleaved halves), RMS norm.

use candle_core::quantized::{QMatMul, QTensor, gguf_file};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor};

/// Hyper-parameters read from the GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Attention heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention).
    pub kv_heads: usize,
    /// Model width.
    pub width: usize,
    /// Transformer blocks.
    pub blocks: usize,
    /// The longest context the model was trained for.
    pub context: usize,
    /// RMS-norm epsilon.
    pub eps: f64,
    /// Rotary embedding base.
    pub rope_base: f32,
}

impl Config {
    fn from_gguf(ct: &gguf_file::Content) -> Result<Config> {
        let arch = match ct.metadata.get("general.architecture") {
            Some(v) => v.to_string()?.clone(),
            None => candle_core::bail!("no general.architecture in the GGUF metadata"),
        };
        if arch != "qwen2" {
            candle_core::bail!("architecture {arch:?} is not supported (brazen runs qwen2 GGUF models)");
        }
        let get = |key: &str| match ct.metadata.get(&format!("qwen2.{key}")) {
            Some(v) => Ok(v),
            None => candle_core::bail!("no qwen2.{key} in the GGUF metadata"),
        };
        Ok(Config {
            heads: get("attention.head_count")?.to_u32()? as usize,
            kv_heads: get("attention.head_count_kv")?.to_u32()? as usize,
            width: get("embedding_length")?.to_u32()? as usize,
            blocks: get("block_count")?.to_u32()? as usize,
            context: get("context_length")?.to_u32()? as usize,
            eps: get("attention.layer_norm_rms_epsilon")?.to_f32()? as f64,
            rope_base: get("rope.freq_base").and_then(|v| v.to_f32()).unwrap_or(10_000.0),
        })
    }

    fn head_dim(&self) -> usize {
        self.width / self.heads
    }
}

struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    fn new(q: QTensor, eps: f64) -> Result<RmsNorm> {
        Ok(RmsNorm { weight: q.dequantize(&Device::Cpu)?, eps: eps as f32 })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::rms_norm(x, &self.weight, self.eps)
    }
}

struct Block {
    attn_norm: RmsNorm,
    q: QMatMul,
    k: QMatMul,
    v: QMatMul,
    q_bias: Tensor,
    k_bias: Tensor,
    v_bias: Tensor,
    out: QMatMul,
    ffn_norm: RmsNorm,
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
}

/// The keys and values of the tokens seen so far, per block: `[1, kv_heads, len, head_dim]`.
#[derive(Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    /// Tokens held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps the first `len` tokens (no-op when it holds fewer).
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if len >= self.len {
            return Ok(());
        }
        for layer in &mut self.layers {
            if let Some((k, v)) = layer {
                if len == 0 {
                    *layer = None;
                } else {
                    *layer = Some((k.narrow(2, 0, len)?, v.narrow(2, 0, len)?));
                }
            }
        }
        self.len = len;
        Ok(())
    }
}

/// A loaded Qwen2 model.
pub struct Model {
    config: Config,
    embeddings: Tensor,
    blocks: Vec<Block>,
    norm: RmsNorm,
    output: QMatMul,
    cos: Tensor,
    sin: Tensor,
}

impl Model {
    /// Loads the weights described by `ct` from `reader` (the GGUF file).
    pub fn load<R: std::io::Read + std::io::Seek>(ct: &gguf_file::Content, reader: &mut R) -> Result<Model> {
        let config = Config::from_gguf(ct)?;
        let dev = &Device::Cpu;
        let mut tensor = |name: &str| ct.tensor(reader, name, dev);
        let embeddings = tensor("token_embd.weight")?.dequantize(dev)?;
        let output = match tensor("output.weight") {
            Ok(w) => QMatMul::from_qtensor(w)?,
            Err(_) => QMatMul::from_qtensor(tensor("token_embd.weight")?)?,
        };
        let norm = RmsNorm::new(tensor("output_norm.weight")?, config.eps)?;
        let mut blocks = Vec::with_capacity(config.blocks);
        for i in 0..config.blocks {
            let mut t = |name: &str| tensor(&format!("blk.{i}.{name}"));
            blocks.push(Block {
                attn_norm: RmsNorm::new(t("attn_norm.weight")?, config.eps)?,
                q: QMatMul::from_qtensor(t("attn_q.weight")?)?,
                k: QMatMul::from_qtensor(t("attn_k.weight")?)?,
                v: QMatMul::from_qtensor(t("attn_v.weight")?)?,
                q_bias: t("attn_q.bias")?.dequantize(dev)?,
                k_bias: t("attn_k.bias")?.dequantize(dev)?,
                v_bias: t("attn_v.bias")?.dequantize(dev)?,
                out: QMatMul::from_qtensor(t("attn_output.weight")?)?,
                ffn_norm: RmsNorm::new(t("ffn_norm.weight")?, config.eps)?,
                gate: QMatMul::from_qtensor(t("ffn_gate.weight")?)?,
                up: QMatMul::from_qtensor(t("ffn_up.weight")?)?,
                down: QMatMul::from_qtensor(t("ffn_down.weight")?)?,
            });
        }
        let hd = config.head_dim();
        let inv: Vec<f32> = (0..hd).step_by(2).map(|i| 1.0 / config.rope_base.powf(i as f32 / hd as f32)).collect();
        let positions = Tensor::arange(0u32, config.context as u32, dev)?.to_dtype(DType::F32)?;
        let angles =
            positions.reshape((config.context, 1))?.matmul(&Tensor::new(inv.as_slice(), dev)?.reshape((1, hd / 2))?)?;
        Ok(Model { cos: angles.cos()?, sin: angles.sin()?, config, embeddings, blocks, norm, output })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// An empty cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache { layers: vec![None; self.config.blocks], len: 0 }
    }

    /// Runs `tokens` after the ones in `cache` (which grows by them) and returns the logits of
    /// the last one (`[vocab]`, f32).
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let t = tokens.len();
        if t == 0 {
            candle_core::bail!("no tokens to run");
        }
        let past = cache.len;
        if past + t > self.config.context {
            candle_core::bail!("{} tokens exceed the model's context of {}", past + t, self.config.context);
        }
        let dev = &Device::Cpu;
        let ids = Tensor::new(tokens, dev)?;
        let mut x = self.embeddings.index_select(&ids, 0)?.unsqueeze(0)?;
        let mask = if t > 1 {
            let m: Vec<f32> = (0..t)
                .flat_map(|i| (0..past + t).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 }))
                .collect();
            Some(Tensor::from_vec(m, (1, 1, 1, t, past + t), dev)?)
        } else {
            None
        };
        let cos = self.cos.narrow(0, past, t)?;
        let sin = self.sin.narrow(0, past, t)?;
        let (h, kvh, hd) = (self.config.heads, self.config.kv_heads, self.config.head_dim());
        for (block, slot) in self.blocks.iter().zip(cache.layers.iter_mut()) {
            let residual = x.clone();
            let y = block.attn_norm.forward(&x)?;
            let heads = |w: &QMatMul, b: &Tensor, n: usize| -> Result<Tensor> {
                w.forward(&y)?.broadcast_add(b)?.reshape((1, t, n, hd))?.transpose(1, 2)?.contiguous()
            };
            let q = candle_nn::rotary_emb::rope(&heads(&block.q, &block.q_bias, h)?, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope(&heads(&block.k, &block.k_bias, kvh)?, &cos, &sin)?;
            let v = heads(&block.v, &block.v_bias, kvh)?;
            let (k, v) = match slot.take() {
                Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
                None => (k, v),
            };
            *slot = Some((k.clone(), v.clone()));
            // Grouped-query attention without copying the keys and values per query head: the
            // query heads that share a key/value head are stacked as rows of one matrix.
            let group = h / kvh;
            let q = q.reshape((1, kvh, group * t, hd))?;
            let mut att = (q.matmul(&k.t()?)? / (hd as f64).sqrt())?;
            if let Some(mask) = &mask {
                att = att.reshape((1, kvh, group, t, past + t))?.broadcast_add(mask)?.reshape((
                    1,
                    kvh,
                    group * t,
                    past + t,
                ))?;
            }
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let y = att.matmul(&v)?.reshape((1, h, t, hd))?.transpose(1, 2)?.reshape((1, t, h * hd))?;
            x = (block.out.forward(&y)? + residual)?;
            let residual = x.clone();
            let y = block.ffn_norm.forward(&x)?;
            let y = (candle_nn::ops::silu(&block.gate.forward(&y)?)? * block.up.forward(&y)?)?;
            x = (block.down.forward(&y)? + residual)?;
        }
        cache.len = past + t;
        let last = self.norm.forward(&x.i((.., t - 1..t, ..))?)?;
        self.output.forward(&last)?.squeeze(0)?.squeeze(0)?.to_dtype(DType::F32)
    }
}
