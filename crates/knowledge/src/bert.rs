//! A BERT encoder (the architecture of all-MiniLM-L6-v2) on candle: embeddings (the sum of word,
//! position and token-type embeddings, then LayerNorm), then post-norm blocks of masked
//! self-attention and a GELU feed-forward layer. Weight names are those of Hugging Face's `BertModel` without the `bert.`
//! prefix (`embeddings.word_embeddings.weight`, `encoder.layer.0.attention.self.query.weight`, …).

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;

/// The hyper-parameters read from `config.json`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Config {
    pub model_type: Option<String>,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    #[serde(default = "eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "gelu")]
    pub hidden_act: String,
}

fn two() -> usize {
    2
}

fn eps() -> f64 {
    1e-12
}

fn gelu() -> String {
    "gelu".into()
}

impl Config {
    /// Why this configuration is not one this encoder runs, if it is not.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.model_type.as_deref().is_some_and(|t| t != "bert") {
            return Err(format!("model_type {:?} is not bert", self.model_type));
        }
        if self.hidden_act != "gelu" {
            return Err(format!("hidden_act {:?} is not gelu", self.hidden_act));
        }
        if self.num_attention_heads == 0 || !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!("{} heads do not divide {} dimensions", self.num_attention_heads, self.hidden_size));
        }
        if self.num_hidden_layers == 0 || self.vocab_size == 0 || self.max_position_embeddings == 0 {
            return Err("a size in config.json is zero".into());
        }
        Ok(())
    }
}

fn layer_norm(size: usize, eps: f64, vb: VarBuilder) -> Result<LayerNorm> {
    candle_nn::layer_norm(size, eps, vb)
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
    heads: usize,
    head_dim: usize,
}

impl Layer {
    fn load(c: &Config, vb: VarBuilder) -> Result<Layer> {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let att = vb.pp("attention");
        Ok(Layer {
            query: candle_nn::linear(h, h, att.pp("self").pp("query"))?,
            key: candle_nn::linear(h, h, att.pp("self").pp("key"))?,
            value: candle_nn::linear(h, h, att.pp("self").pp("value"))?,
            attention_out: candle_nn::linear(h, h, att.pp("output").pp("dense"))?,
            attention_norm: layer_norm(h, c.layer_norm_eps, att.pp("output").pp("LayerNorm"))?,
            intermediate: candle_nn::linear(h, i, vb.pp("intermediate").pp("dense"))?,
            output: candle_nn::linear(i, h, vb.pp("output").pp("dense"))?,
            output_norm: layer_norm(h, c.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
        })
    }

    /// `x`: (batch, tokens, hidden); `bias`: (batch, 1, 1, tokens), 0 for tokens, a large
    /// negative number for padding.
    fn forward(&self, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let split = |y: Tensor| -> Result<Tensor> {
            y.reshape((b, t, self.heads, self.head_dim))?.transpose(1, 2)?.contiguous()
        };
        let q = split(self.query.forward(x)?)?;
        let k = split(self.key.forward(x)?)?;
        let v = split(self.value.forward(x)?)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?.broadcast_add(bias)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((b, t, h))?;
        let attended = self.attention_norm.forward(&(self.attention_out.forward(&context)? + x)?)?;
        let inner = self.intermediate.forward(&attended)?.gelu_erf()?;
        self.output_norm.forward(&(self.output.forward(&inner)? + attended)?)
    }
}

/// The encoder: token ids in, one vector per token out.
pub(crate) struct Bert {
    words: Embedding,
    positions: Embedding,
    token_types: Embedding,
    norm: LayerNorm,
    layers: Vec<Layer>,
    pub max_positions: usize,
    pub vocab_size: usize,
}

impl Bert {
    pub fn load(c: &Config, vb: VarBuilder) -> Result<Bert> {
        let e = vb.pp("embeddings");
        let h = c.hidden_size;
        Ok(Bert {
            words: candle_nn::embedding(c.vocab_size, h, e.pp("word_embeddings"))?,
            positions: candle_nn::embedding(c.max_position_embeddings, h, e.pp("position_embeddings"))?,
            token_types: candle_nn::embedding(c.type_vocab_size, h, e.pp("token_type_embeddings"))?,
            norm: layer_norm(h, c.layer_norm_eps, e.pp("LayerNorm"))?,
            layers: (0..c.num_hidden_layers)
                .map(|i| Layer::load(c, vb.pp("encoder").pp("layer").pp(i)))
                .collect::<Result<_>>()?,
            max_positions: c.max_position_embeddings,
            vocab_size: c.vocab_size,
        })
    }

    /// Hidden states of the last layer, (batch, tokens, hidden). `ids` and `mask` are
    /// (batch, tokens) u32; `mask` is 1 for real tokens, 0 for padding.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let positions = Tensor::arange(0u32, t as u32, ids.device())?.unsqueeze(0)?.broadcast_as((b, t))?;
        let types = ids.zeros_like()?;
        let x = self.words.forward(ids)?;
        let x = (x + self.positions.forward(&positions.contiguous()?)?)?;
        let x = (x + self.token_types.forward(&types)?)?;
        let mut x = self.norm.forward(&x)?;
        // 0 where attended, -10000 where padded (what BERT was trained with).
        let bias = ((mask.to_dtype(DType::F32)? - 1.0)? * 10_000.0)?.reshape((b, 1, 1, t))?;
        for layer in &self.layers {
            x = layer.forward(&x, &bias)?;
        }
        Ok(x)
    }
}

/// Mean of the token vectors where `mask` is 1, then scaled to unit length: (batch, hidden).
pub(crate) fn mean_pool_normalised(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?; // (b, t, 1)
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (b, h)
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?; // (b, 1)
    let mean = summed.broadcast_div(&counts)?;
    let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    mean.broadcast_div(&norm)
}
