//! Qwen2 and Llama decoder-only transformers over GGUF weights (candle, CPU), with a KV cache
//! that can be cut back to any length: the tokens a new prompt shares with the cached ones are
//! not computed again.
//!
//! Layout (GGUF names): `token_embd` (tied to the output when there is no `output.weight`),
//! per block `attn_norm`, `attn_{q,k,v}` (with biases in Qwen2), `attn_output`, `ffn_norm`,
//! `ffn_{gate,up,down}` (SwiGLU), then `output_norm`. Grouped-query attention, rotary position
//! embeddings (Qwen2: non-interleaved halves; Llama: interleaved pairs, as llama.cpp's
//! converter stores its query and key weights), RMS norm.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor, gguf_file};
use candle_core::{DType, Device, Module, Result, Tensor};
use std::sync::Arc;

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
    /// Whether the rotary embedding turns adjacent pairs (Llama) rather than halves (Qwen2).
    pub rope_interleaved: bool,
}

impl Config {
    fn from_gguf(ct: &gguf_file::Content) -> Result<Config> {
        let arch = match ct.metadata.get("general.architecture") {
            Some(v) => v.to_string()?.clone(),
            None => candle_core::bail!("no general.architecture in the GGUF metadata"),
        };
        if arch != "qwen2" && arch != "llama" {
            candle_core::bail!("architecture {arch:?} is not supported (brazen runs qwen2 and llama GGUF models)");
        }
        let get = |key: &str| match ct.metadata.get(&format!("{arch}.{key}")) {
            Some(v) => Ok(v),
            None => candle_core::bail!("no {arch}.{key} in the GGUF metadata"),
        };
        // Llama 3.1 and later scale their rotary embeddings, which this code would read wrong.
        let scaled =
            ct.metadata.contains_key("llama.rope.scaling.type") || ct.tensor_infos.contains_key("rope_freqs.weight");
        if arch == "llama" && scaled {
            candle_core::bail!("scaled rotary embeddings (rope scaling) are not supported");
        }
        Ok(Config {
            heads: get("attention.head_count")?.to_u32()? as usize,
            kv_heads: get("attention.head_count_kv")?.to_u32()? as usize,
            width: get("embedding_length")?.to_u32()? as usize,
            blocks: get("block_count")?.to_u32()? as usize,
            context: get("context_length")?.to_u32()? as usize,
            eps: get("attention.layer_norm_rms_epsilon")?.to_f32()? as f64,
            rope_base: get("rope.freq_base").and_then(|v| v.to_f32()).unwrap_or(10_000.0),
            rope_interleaved: arch == "llama",
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
    /// The projections' biases (Qwen2; none in Llama).
    biases: Option<[Tensor; 3]>,
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

    /// Forgets what a pass stopped halfway put in the first `blocks` layers: they hold
    /// [`KvCache::len`] tokens again, as the others still do.
    fn roll_back(&mut self, blocks: usize) -> Result<()> {
        let len = self.len;
        for layer in self.layers.iter_mut().take(blocks) {
            *layer = match layer.take() {
                Some((k, v)) if len > 0 => Some((k.narrow(2, 0, len)?, v.narrow(2, 0, len)?)),
                _ => None,
            };
        }
        Ok(())
    }
}

/// The products of one input (`[1, m, k]`) with several weights (`[1, m, n_i]` each). One row
/// (a decoding step of one conversation) is multiplied straight from the weights' compact
/// blocks, all the weights in one parallel region ([`crate::gemv`]); more rows (a prompt,
/// several conversations), and weights that path does not take, go through candle's kernels,
/// which reuse each weight across rows.
fn project(weights: &[&QMatMul], x: &Tensor) -> Result<Vec<Tensor>> {
    project_rows(weights, x, crate::gemv::MAX_ROWS)
}

/// [`project`], from the compact blocks for up to `max_rows` rows.
fn project_rows(weights: &[&QMatMul], x: &Tensor, max_rows: usize) -> Result<Vec<Tensor>> {
    let (_, m, _) = x.dims3()?;
    let tensors: Option<Vec<&QTensor>> = weights
        .iter()
        .map(|w| match w {
            QMatMul::QTensor(t) => Some(t.as_ref()),
            _ => None,
        })
        .collect();
    if let Some(tensors) = tensors.filter(|_| m <= max_rows) {
        let rows = x.flatten_all()?.to_vec1::<f32>()?;
        if let Some(products) = crate::gemv::products(&tensors, &rows, m, max_rows)? {
            return products
                .into_iter()
                .map(|p| {
                    let n = p.len() / m;
                    Tensor::from_vec(p, (1, m, n), x.device())
                })
                .collect();
        }
    }
    candle_products(weights, x)
}

/// [`project`] on candle's kernels. Weights of one quantisation type share a single
/// quantisation of the input and one parallel region where candle offers it (its fused
/// products, on aarch64); the others take one product each.
fn candle_products(weights: &[&QMatMul], x: &Tensor) -> Result<Vec<Tensor>> {
    let mut out: Vec<Option<Tensor>> = vec![None; weights.len()];
    let quantized = |w: &QMatMul| match w {
        QMatMul::QTensor(t) => Some(t.clone()),
        _ => None,
    };
    let mut kinds: Vec<Option<GgmlDType>> = weights.iter().map(|w| quantized(w).map(|t| t.dtype())).collect();
    while let Some(first) = kinds.iter().position(Option::is_some) {
        let kind = kinds[first];
        let group: Vec<usize> = (first..weights.len()).filter(|&i| kinds[i] == kind).collect();
        for &i in &group {
            kinds[i] = None;
        }
        if group.len() > 1 {
            let tensors: Vec<Arc<QTensor>> = group.iter().filter_map(|&i| quantized(weights[i])).collect();
            let refs: Vec<&QTensor> = tensors.iter().map(|t| t.as_ref()).collect();
            if let Some(products) = QTensor::gemv_fused_shared_lhs(&refs, x)? {
                for (&i, p) in group.iter().zip(products) {
                    out[i] = Some(p);
                }
            }
        }
    }
    weights.iter().zip(out).map(|(w, done)| done.map_or_else(|| w.forward(x), Ok)).collect()
}

/// The product of one input with one weight ([`project`]).
fn one(weight: &QMatMul, x: &Tensor) -> Result<Tensor> {
    one_rows(weight, x, crate::gemv::MAX_ROWS)
}

/// [`one`], from the compact blocks for up to `max_rows` rows ([`project_rows`]).
fn one_rows(weight: &QMatMul, x: &Tensor, max_rows: usize) -> Result<Tensor> {
    project_rows(&[weight], x, max_rows)?.pop().ok_or_else(|| candle_core::Error::Msg("one product expected".into()))
}

/// A loaded model.
pub struct Model {
    config: Config,
    /// The token-embedding table, kept quantized (rows are expanded as tokens are looked up).
    embeddings: Arc<QTensor>,
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
        let mut tensor = |name: &str| ct.tensor(reader, name, dev).and_then(with_fast_products);
        let embeddings = Arc::new(tensor("token_embd.weight")?);
        let output = match tensor("output.weight") {
            Ok(w) => QMatMul::from_qtensor(w)?,
            Err(_) => QMatMul::from_arc(embeddings.clone())?,
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
                // Qwen2 has them (a file without is refused); Llama has none.
                biases: if !config.rope_interleaved || ct.tensor_infos.contains_key(&format!("blk.{i}.attn_q.bias")) {
                    let mut bias = |name: &str| t(name)?.dequantize(dev);
                    Some([bias("attn_q.bias")?, bias("attn_k.bias")?, bias("attn_v.bias")?])
                } else {
                    None
                },
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
        let mut logits = self.forward_batch(&mut [(tokens, cache)])?;
        Ok(logits.remove(0))
    }

    /// Runs several sequences' new tokens in one pass, each after the tokens of its own cache
    /// (which grows by them), and returns the logits of each one's last token (`[vocab]`, f32).
    /// The matrix products, which cost the same whether they carry one row or a few, are shared;
    /// only attention is computed per sequence. On a CPU a decoding step of three conversations
    /// then costs little more than one. After an error the caches are not to be used again (some
    /// layers may hold the new tokens).
    pub fn forward_batch(&self, runs: &mut [(&[u32], &mut KvCache)]) -> Result<Vec<Tensor>> {
        self.pass(runs, &|| false)?.ok_or_else(|| candle_core::Error::Msg("a pass stopped".into()))
    }

    /// [`Model::forward`] for work that can wait: it looks at `stop` before each block and,
    /// once it says so, returns `None` with `cache` as it was — someone waiting on the cores
    /// waits about one block (~1/28 of the pass; the output head after the last one is not
    /// stopped), not the whole pass.
    pub fn forward_unless(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<Tensor>> {
        Ok(self.pass(&mut [(tokens, cache)], stop)?.and_then(|mut l| l.pop()))
    }

    /// The pass under [`Model::forward_batch`] and [`Model::forward_unless`]: the logits after
    /// each run's last token; `None` when `stop` said so before a block (the caches then as
    /// they were).
    fn pass(&self, runs: &mut [(&[u32], &mut KvCache)], stop: &dyn Fn() -> bool) -> Result<Option<Vec<Tensor>>> {
        if runs.is_empty() || runs.iter().any(|(tokens, _)| tokens.is_empty()) {
            candle_core::bail!("no tokens to run");
        }
        if runs.iter().any(|(_, cache)| cache.layers.len() != self.blocks.len()) {
            candle_core::bail!("a cache not made by this model (Model::new_cache)");
        }
        let dev = &Device::Cpu;
        let (h, kvh, hd) = (self.config.heads, self.config.kv_heads, self.config.head_dim());
        let mut spans = Vec::with_capacity(runs.len());
        let mut offset = 0;
        for (tokens, cache) in runs.iter() {
            let (t, past) = (tokens.len(), cache.len);
            if past + t > self.config.context {
                candle_core::bail!("{} tokens exceed the model's context of {}", past + t, self.config.context);
            }
            let mask = if t > 1 {
                let m: Vec<f32> = (0..t)
                    .flat_map(|i| (0..past + t).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 }))
                    .collect();
                Some(Tensor::from_vec(m, (1, 1, 1, t, past + t), dev)?)
            } else {
                None
            };
            let (cos, sin) = (self.cos.narrow(0, past, t)?, self.sin.narrow(0, past, t)?);
            spans.push(Span { offset, t, past, mask, cos, sin });
            offset += t;
        }
        let ids: Vec<u32> = runs.iter().flat_map(|(tokens, _)| tokens.iter().copied()).collect();
        let mut x = self.embeddings.embedding(&Tensor::new(ids.as_slice(), dev)?)?.unsqueeze(0)?;
        for (b, block) in self.blocks.iter().enumerate() {
            if stop() {
                for (_, cache) in runs.iter_mut() {
                    cache.roll_back(b)?;
                }
                return Ok(None);
            }
            let residual = x.clone();
            let y = block.attn_norm.forward(&x)?;
            let [q, k, v]: [Tensor; 3] = project(&[&block.q, &block.k, &block.v], &y)?
                .try_into()
                .map_err(|_| candle_core::Error::Msg("three projections expected".into()))?;
            let (q, k, v) = match &block.biases {
                Some([qb, kb, vb]) => (q.broadcast_add(qb)?, k.broadcast_add(kb)?, v.broadcast_add(vb)?),
                None => (q, k, v),
            };
            let rope =
                if self.config.rope_interleaved { candle_nn::rotary_emb::rope_i } else { candle_nn::rotary_emb::rope };
            let mut attended = Vec::with_capacity(spans.len());
            for (span, (_, cache)) in spans.iter().zip(runs.iter_mut()) {
                let t = span.t;
                let heads = |p: &Tensor, n: usize| -> Result<Tensor> {
                    p.narrow(1, span.offset, t)?.reshape((1, t, n, hd))?.transpose(1, 2)?.contiguous()
                };
                let q = rope(&heads(&q, h)?, &span.cos, &span.sin)?;
                let k = rope(&heads(&k, kvh)?, &span.cos, &span.sin)?;
                let v = heads(&v, kvh)?;
                let slot = &mut cache.layers[b];
                let (k, v) = match slot.take() {
                    Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
                    None => (k, v),
                };
                *slot = Some((k.clone(), v.clone()));
                // Grouped-query attention without copying the keys and values per query head:
                // the query heads that share a key/value head are stacked as rows of one matrix.
                let (group, seen) = (h / kvh, span.past + t);
                let q = q.reshape((1, kvh, group * t, hd))?;
                let mut att = (q.matmul(&k.t()?)? / (hd as f64).sqrt())?;
                if let Some(mask) = &span.mask {
                    att = att.reshape((1, kvh, group, t, seen))?.broadcast_add(mask)?.reshape((
                        1,
                        kvh,
                        group * t,
                        seen,
                    ))?;
                }
                let att = candle_nn::ops::softmax_last_dim(&att)?;
                attended.push(att.matmul(&v)?.reshape((1, h, t, hd))?.transpose(1, 2)?.reshape((1, t, h * hd))?);
            }
            let y = if attended.len() == 1 { attended.remove(0) } else { Tensor::cat(&attended, 1)? };
            x = (one(&block.out, &y)? + residual)?;
            let residual = x.clone();
            let y = block.ffn_norm.forward(&x)?;
            let [gate, up]: [Tensor; 2] = project(&[&block.gate, &block.up], &y)?
                .try_into()
                .map_err(|_| candle_core::Error::Msg("two projections expected".into()))?;
            let y = (candle_nn::ops::silu(&gate)? * up)?;
            x = (one(&block.down, &y)? + residual)?;
        }
        for (span, (_, cache)) in spans.iter().zip(runs.iter_mut()) {
            cache.len = span.past + span.t;
        }
        let x = &x;
        let picked: Vec<Tensor> = spans.iter().map(|s| x.narrow(1, s.offset + s.t - 1, 1)).collect::<Result<_>>()?;
        let picked = if picked.len() == 1 { picked[0].clone() } else { Tensor::cat(&picked, 1)? };
        let logits = self.logits(&self.norm.forward(&picked)?)?.squeeze(0)?.to_dtype(DType::F32)?;
        (0..spans.len()).map(|i| logits.get(i)).collect::<Result<_>>().map(Some)
    }

    /// The output head's logits for the rows of `x` (`[1, m, hidden]`), from its compact blocks
    /// in groups of [`crate::gemv::MAX_HEAD_ROWS`] rows, however many there are.
    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let (_, m, _) = x.dims3()?;
        let step = crate::gemv::MAX_HEAD_ROWS;
        let mut parts = (0..m)
            .step_by(step)
            .map(|start| one_rows(&self.output, &x.narrow(1, start, step.min(m - start))?.contiguous()?, step))
            .collect::<Result<Vec<_>>>()?;
        if parts.len() == 1 { Ok(parts.remove(0)) } else { Tensor::cat(&parts, 1) }
    }
}

/// `q` as it is, or as `Q8_0` when candle's CPU kernels for its type are plain loops (`Q4_1`,
/// `Q5_0`, `Q5_1`: a 135M model in `Q4_1` took ~0.5 s for a pass of ten tokens): near-lossless,
/// at most twice the bytes.
fn with_fast_products(q: QTensor) -> Result<QTensor> {
    match q.dtype() {
        GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 => {
            QTensor::quantize(&q.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)
        }
        _ => Ok(q),
    }
}

/// Where one sequence's tokens sit in a batched pass, and what its attention needs.
struct Span {
    /// Its first row among the pass's tokens.
    offset: usize,
    /// Its new tokens.
    t: usize,
    /// Tokens already in its cache.
    past: usize,
    /// The causal mask over its new tokens (none for one token).
    mask: Option<Tensor>,
    /// The cosines of its positions' rotary angles.
    cos: Tensor,
    /// The sines of its positions' rotary angles.
    sin: Tensor,
}
