//! Figures shared by the benchmarks.

/// The `p` quantile (0–1) of `v`, nearest rank; NaN when there is nothing to rank.
pub fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}
