//! Log-softmax at a single position, computed once per logits row.
//!
//! A row is as long as the vocabulary (262k entries for Gemma 3), so this
//! runs once per scored position and must be cheap: one pass for the maximum
//! and the argmax, one pass for the normaliser with an exponential the
//! compiler can vectorise. Scores are `row[token] - log_norm`.

/// What every score taken from one row needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RowStats {
    /// `log(sum(exp(row)))`.
    pub log_norm: f64,
    /// The first index of the largest logit (what greedy decoding picks, and
    /// what `torch.argmax` returns).
    pub argmax: usize,
}

impl RowStats {
    pub fn of(row: &[f32]) -> RowStats {
        let argmax = argmax(row);
        let max = row.get(argmax).copied().unwrap_or(f32::NEG_INFINITY);
        // Sum in f32 lanes over short blocks, then in f64, so rounding error
        // stays far below the 1e-4 the tests and users care about.
        let mut total = 0f64;
        for block in row.chunks(1024) {
            let mut lanes = [0f32; 8];
            let mut chunks = block.chunks_exact(8);
            for chunk in &mut chunks {
                for (lane, &x) in lanes.iter_mut().zip(chunk) {
                    *lane += exp_nonpositive(x - max);
                }
            }
            let tail: f32 = chunks
                .remainder()
                .iter()
                .map(|&x| exp_nonpositive(x - max))
                .sum();
            total += lanes.iter().map(|&l| f64::from(l)).sum::<f64>() + f64::from(tail);
        }
        RowStats {
            log_norm: f64::from(max) + total.ln(),
            argmax,
        }
    }

    /// `log softmax(row)[token]`.
    pub fn logprob(&self, row: &[f32], token: usize) -> f64 {
        f64::from(row[token]) - self.log_norm
    }
}

/// The first index of the largest logit: the greedy choice.
pub(crate) fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best
}

/// `exp(x)` for `x <= 0` (Cephes' single-precision polynomial, about 1 ulp),
/// written without branches or library calls so that loops over it vectorise.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.max(-87.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    // Scale by 2^n through the exponent bits; n is in [-126, 0] here.
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    e * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_on_its_domain() {
        let mut worst = 0f32;
        for i in 0..=200_000 {
            let x = -87.0 * i as f32 / 200_000.0;
            let (fast, exact) = (exp_nonpositive(x), x.exp());
            worst = worst.max(((fast - exact) / exact).abs());
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1000.0) < 1e-37);
    }

    #[test]
    fn log_softmax_matches_the_definition() {
        let row: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919) % 1000) as f32 / 37.0 - 9.0)
            .collect();
        let stats = RowStats::of(&row);
        let max = row
            .iter()
            .cloned()
            .fold(f64::NEG_INFINITY, |m, x| m.max(f64::from(x)));
        let norm = max
            + row
                .iter()
                .map(|&x| (f64::from(x) - max).exp())
                .sum::<f64>()
                .ln();
        assert!(
            (stats.log_norm - norm).abs() < 1e-5,
            "{} vs {norm}",
            stats.log_norm
        );
        let first_max = row.iter().position(|&x| f64::from(x) == max).unwrap();
        assert_eq!(stats.argmax, first_max);
        let total: f64 = (0..row.len()).map(|t| stats.logprob(&row, t).exp()).sum();
        assert!((total - 1.0).abs() < 1e-5);
    }
}
