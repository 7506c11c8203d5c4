//! Products of one activation row with quantized weight matrices, computed straight from the
//! GGUF's own blocks: what a decoding step of one conversation needs.
//!
//! candle's x86 kernels multiply q4_K weights through a repacked copy whose scales are expanded
//! to f32: a third more bytes to read per product. A decoding step reads every weight once for
//! one row, so it waits on memory, and the compact blocks with candle's block dot products
//! (`GgmlType::vec_dot`) are faster: 28 blocks' `ffn_gate` take 9.7 ms instead of 14.8, and a
//! decoding step 49 ms instead of 63 (`bench/llm.sh --gemv`, `--decode`). With more rows the
//! repacked kernels win (they use each weight for four rows at once, a pass of 2 rows costs
//! about the same either way and 4 rows a third more here), so more rows go to candle.

use candle_core::Result;
use candle_core::quantized::k_quants::{BlockQ4K, BlockQ6K, BlockQ8K, GgmlType, QK_K};
use candle_core::quantized::{GgmlDType, QTensor};

/// Rows of activations up to which [`products`] applies to the blocks' weights.
pub const MAX_ROWS: usize = 1;
/// ... and to the output head (the token-embedding table, tied): its logits are wanted for a
/// few rows at a time (one row per conversation decoded together), and candle's kernels would first repack its 151,936 rows for them, holding a
/// second copy (~250 MB for Qwen2.5 1.5B) for as long as the model lives.
pub const MAX_HEAD_ROWS: usize = 8;

/// The compact blocks of one weight matrix (`[n, k]`).
enum Blocks<'a> {
    Q4K(&'a [BlockQ4K]),
    Q6K(&'a [BlockQ6K]),
}

impl Blocks<'_> {
    /// Row `j` times the quantized activations `x` (one row of `k / QK_K` blocks).
    fn dot(&self, j: usize, k: usize, x: &[BlockQ8K]) -> f32 {
        let kb = k / QK_K;
        match self {
            Blocks::Q4K(b) => BlockQ4K::vec_dot(k, &b[j * kb..(j + 1) * kb], x),
            Blocks::Q6K(b) => BlockQ6K::vec_dot(k, &b[j * kb..(j + 1) * kb], x),
        }
    }
}

/// Reads `data` (a tensor's storage) as `len` blocks of `B`, if it holds that many.
fn blocks<B>(data: &[u8], len: usize) -> Option<&[B]> {
    let aligned = (data.as_ptr() as usize).is_multiple_of(std::mem::align_of::<B>());
    if !aligned || data.len() < len * std::mem::size_of::<B>() {
        return None;
    }
    // SAFETY: aligned and long enough (checked above); q4_K and q6_K blocks are plain `repr(C)`
    // bytes and f16s, valid for any bit pattern.
    Some(unsafe { std::slice::from_raw_parts(data.as_ptr() as *const B, len) })
}

/// `x` (`m` rows of `k` values) times the transpose of each weight (`[n_i, k]`, q4_K or q6_K),
/// one `m × n_i` product (rows of `n_i`) per weight, in one parallel region; each weight row
/// is read once for all `m` rows. `None` when this path does not apply: more than `max_rows`
/// rows ([`MAX_ROWS`], [`MAX_HEAD_ROWS`]), another quantization, weights of different widths,
/// or a width that is not a whole number of blocks.
pub fn products(weights: &[&QTensor], x: &[f32], m: usize, max_rows: usize) -> Result<Option<Vec<Vec<f32>>>> {
    let Some(first) = weights.first() else { return Ok(Some(Vec::new())) };
    let (_, k) = first.shape().dims2()?;
    if m == 0 || m > max_rows || !k.is_multiple_of(QK_K) || x.len() != m * k {
        return Ok(None);
    }
    let kb = k / QK_K;
    let data: Vec<_> = weights.iter().map(|w| w.data()).collect::<Result<_>>()?;
    let mut parts = Vec::with_capacity(weights.len());
    for (w, data) in weights.iter().zip(&data) {
        let (n, width) = w.shape().dims2()?;
        let found = match w.dtype() {
            _ if width != k => None,
            GgmlDType::Q4K => blocks(data, n * kb).map(Blocks::Q4K),
            GgmlDType::Q6K => blocks(data, n * kb).map(Blocks::Q6K),
            _ => None,
        };
        let Some(found) = found else { return Ok(None) };
        parts.push((found, n));
    }
    let mut xq = vec![BlockQ8K::zeros(); m * kb];
    for (row, q) in x.chunks_exact(k).zip(xq.chunks_exact_mut(kb)) {
        BlockQ8K::from_float(row, q);
    }
    let mut outs: Vec<Vec<f32>> = parts.iter().map(|(_, n)| vec![0f32; m * n]).collect();
    // Where each weight's columns begin in the one range the threads share.
    let mut starts = Vec::with_capacity(parts.len());
    let mut total = 0;
    for (_, n) in &parts {
        starts.push(total);
        total += n;
    }
    let pointers: Vec<usize> = outs.iter_mut().map(|o| o.as_mut_ptr() as usize).collect();
    candle_core::utils::barrier_pool().execute_chunked(total, |range| {
        for column in range {
            let p = starts.partition_point(|&s| s <= column) - 1;
            let (weight, n) = &parts[p];
            let j = column - starts[p];
            let out = pointers[p] as *mut f32;
            for r in 0..m {
                let v = weight.dot(j, k, &xq[r * kb..(r + 1) * kb]);
                // SAFETY: column `j` of weight `p` belongs to this chunk alone, and `r * n + j`
                // is inside its `m * n` output.
                unsafe { *out.add(r * n + j) = v };
            }
        }
    });
    Ok(Some(outs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QMatMul;
    use candle_core::{Device, Module, Tensor};

    /// A weight of `n × k` values, quantized as `dtype`.
    fn weight(n: usize, k: usize, dtype: GgmlDType, seed: usize) -> QTensor {
        let values: Vec<f32> =
            (0..n * k).map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 - 1001.0) / 1001.0).collect();
        let t = Tensor::from_vec(values, (n, k), &Device::Cpu).expect("tensor");
        QTensor::quantize(&t, dtype).expect("quantizes")
    }

    fn candle(w: QTensor, x: &[f32], k: usize) -> Vec<f32> {
        let x = Tensor::from_vec(x.to_vec(), (1, k), &Device::Cpu).expect("x");
        QMatMul::from_qtensor(w)
            .expect("qmatmul")
            .forward(&x)
            .expect("product")
            .flatten_all()
            .expect("flat")
            .to_vec1()
            .expect("vec")
    }

    #[test]
    fn the_products_are_candles_for_q4k_and_q6k_weights_of_any_height() {
        let k = 512;
        let x: Vec<f32> = (0..k).map(|i| ((i * 31 % 97) as f32 - 48.0) / 24.0).collect();
        let specs = [(GgmlDType::Q4K, 48), (GgmlDType::Q6K, 32), (GgmlDType::Q4K, 16)];
        let weights: Vec<QTensor> = specs.iter().enumerate().map(|(s, &(d, n))| weight(n, k, d, s)).collect();
        let refs: Vec<&QTensor> = weights.iter().collect();
        let ours = products(&refs, &x, 1, MAX_ROWS).expect("runs").expect("applies");
        assert_eq!(ours.len(), 3);
        for (s, (&(dtype, n), got)) in specs.iter().zip(&ours).enumerate() {
            assert_eq!(got.len(), n);
            let want = candle(weight(n, k, dtype, s), &x, k);
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(scale > 1.0, "a product worth comparing");
            for (w, g) in want.iter().zip(got) {
                assert!((w - g).abs() <= scale * 1e-5, "{dtype:?}: {g} against candle's {w}");
            }
        }
    }

    #[test]
    fn other_rows_types_and_shapes_are_left_to_candle() {
        let k = 256;
        let x = vec![0.5f32; 2 * k];
        let q4 = weight(16, k, GgmlDType::Q4K, 0);
        assert!(products(&[&q4], &x, 2, MAX_ROWS).expect("runs").is_none(), "two rows");
        assert!(products(&[&q4], &x[..k - 1], 1, MAX_ROWS).expect("runs").is_none(), "a short row");
        let q8 = weight(16, k, GgmlDType::Q8_0, 0);
        assert!(products(&[&q8], &x[..k], 1, MAX_ROWS).expect("runs").is_none(), "q8_0");
        let wide = weight(16, 2 * k, GgmlDType::Q4K, 0);
        assert!(products(&[&q4, &wide], &x[..k], 1, MAX_ROWS).expect("runs").is_none(), "different widths");
        assert_eq!(products(&[], &x[..k], 1, MAX_ROWS).expect("runs"), Some(Vec::new()));
    }

    #[test]
    fn several_rows_are_each_rows_product() {
        let k = 512;
        let rows = 3;
        let x: Vec<f32> = (0..rows * k).map(|i| ((i * 17 % 89) as f32 - 44.0) / 22.0).collect();
        let head = weight(32, k, GgmlDType::Q6K, 7);
        let together = products(&[&head], &x, rows, MAX_HEAD_ROWS).expect("runs").expect("applies").remove(0);
        assert_eq!(together.len(), rows * 32);
        for (r, row) in x.chunks_exact(k).enumerate() {
            let alone = products(&[&head], row, 1, MAX_ROWS).expect("runs").expect("applies").remove(0);
            assert_eq!(&together[r * 32..(r + 1) * 32], alone.as_slice(), "row {r}");
        }
        assert!(products(&[&head], &x, rows, MAX_ROWS).expect("runs").is_none(), "over the limit");
    }
}
