//! Paired comparisons of two runs over the same documents, for the merge
//! gate: the mean per-document difference and its standard error (plain or
//! clustered), McNemar's exact test for 0/1 metrics, a deterministic paired
//! bootstrap for the rest, Holm's correction across tasks, and the sizes a
//! comparison needs (minimum detectable effect, documents for a margin).
//!
//! Pairing on documents is what makes a gate tight: two runs that flip only
//! a few percent of their answers differ far less than two independent
//! samples would, and the per-document differences carry exactly that.

/// The standard normal distribution function, from the complementary error
/// function (Numerical Recipes' Chebyshev fit, relative error below 1.2e-7).
pub fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

/// The standard normal quantile (Acklam's rational approximation, relative
/// error below 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let low = 0.024_25;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

/// The paired difference candidate - baseline over matched documents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedDifference {
    pub documents: usize,
    pub baseline_mean: f64,
    pub candidate_mean: f64,
    /// Mean of the per-document differences.
    pub mean: f64,
    /// Its standard error (cluster-robust when clusters were given).
    pub stderr: f64,
    /// Standard deviation of one document's difference.
    pub sd: f64,
    /// For 0/1 values: documents right in the baseline only, and in the
    /// candidate only.
    pub discordant: Option<(u64, u64)>,
}

/// Compares matched values; `clusters` (one label per document, same
/// order) makes the standard error cluster-robust, for tasks whose
/// documents come in groups that are not independent.
pub fn paired_difference(
    baseline: &[f64],
    candidate: &[f64],
    clusters: Option<&[String]>,
) -> Option<PairedDifference> {
    let n = baseline.len();
    if n < 2 || candidate.len() != n {
        return None;
    }
    let diffs: Vec<f64> = candidate.iter().zip(baseline).map(|(c, b)| c - b).collect();
    let mean = diffs.iter().sum::<f64>() / n as f64;
    let var = diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let stderr = match clusters {
        Some(labels) if labels.len() == n => {
            let mut sums: std::collections::HashMap<&str, f64> = Default::default();
            for (label, d) in labels.iter().zip(&diffs) {
                *sums.entry(label.as_str()).or_default() += d - mean;
            }
            let g = sums.len() as f64;
            if g < 2.0 {
                f64::NAN
            } else {
                let s: f64 = sums.values().map(|v| v * v).sum();
                (g / (g - 1.0) * s).sqrt() / n as f64
            }
        }
        _ => (var / n as f64).sqrt(),
    };
    let binary = baseline
        .iter()
        .chain(candidate)
        .all(|v| *v == 0.0 || *v == 1.0);
    let discordant = binary.then(|| {
        let lost = baseline
            .iter()
            .zip(candidate)
            .filter(|(b, c)| **b == 1.0 && **c == 0.0)
            .count() as u64;
        let gained = baseline
            .iter()
            .zip(candidate)
            .filter(|(b, c)| **b == 0.0 && **c == 1.0)
            .count() as u64;
        (lost, gained)
    });
    Some(PairedDifference {
        documents: n,
        baseline_mean: baseline.iter().sum::<f64>() / n as f64,
        candidate_mean: candidate.iter().sum::<f64>() / n as f64,
        mean,
        stderr,
        sd: var.sqrt(),
        discordant,
    })
}

/// The score statistic for a paired 0/1 difference at the boundary
/// `difference = -margin` (Tango's test): `lost` documents went right to
/// wrong, `gained` wrong to right, of `n`. The variance is taken at the
/// boundary (restricted maximum likelihood), not at the estimate, which is
/// what keeps the test's size at alpha where a Wald test runs over.
/// `shift` is added to `gained - lost`: a continuity correction of -1 for
/// the test that the candidate is within the margin, +1 for the test that
/// it is not (simulation, bench/gate_simulation.rs, shows the uncorrected
/// test a little over alpha). Large values favour "within the margin".
pub fn paired_binary_score(lost: u64, gained: u64, n: u64, margin: f64, shift: f64) -> f64 {
    let (l, g, n) = (lost as f64, gained as f64, n as f64);
    let d = margin;
    let estimate = (g - l) / n;
    let corrected = estimate + shift / n;
    let variance = paired_binary_boundary_variance(lost, gained, n as u64, margin);
    if variance <= 0.0 {
        return if corrected + d > 0.0 {
            f64::INFINITY
        } else if corrected + d < 0.0 {
            f64::NEG_INFINITY
        } else {
            0.0
        };
    }
    (estimate + d + shift / n) / (variance / n).sqrt()
}

/// The variance of one document's paired 0/1 difference at the boundary
/// `difference = -margin`, by restricted maximum likelihood from `lost`
/// and `gained` of `n` documents (the variance of [`paired_binary_score`]).
pub fn paired_binary_boundary_variance(lost: u64, gained: u64, n: u64, margin: f64) -> f64 {
    let (l, g, n) = (lost as f64, gained as f64, n as f64);
    let m = n - l - g;
    let d = margin;
    // P(lost) = a, P(gained) = a - d maximizes the likelihood on the
    // boundary: 2n a^2 - B a + l d (1 + d) = 0.
    let b = l * (1.0 + 3.0 * d) + g * (1.0 + d) + 2.0 * m * d;
    let disc = (b * b - 8.0 * n * l * d * (1.0 + d)).max(0.0);
    let a = (b + disc.sqrt()) / (4.0 * n);
    2.0 * a - d - d * d
}

/// ln(n!) by summation for small n, Stirling's series beyond.
fn ln_factorial(n: u64) -> f64 {
    if n < 256 {
        return (2..=n).map(|k| (k as f64).ln()).sum();
    }
    let x = n as f64 + 1.0;
    (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + 1.0 / (12.0 * x)
        - 1.0 / (360.0 * x.powi(3))
        + 1.0 / (1260.0 * x.powi(5))
}

/// McNemar's exact test: the two-sided binomial p-value of `b` documents
/// flipping one way and `c` the other, under no difference (p = 1/2).
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    let ln_n = ln_factorial(n);
    let half = -(n as f64) * std::f64::consts::LN_2;
    // Sum the lower tail in log space, largest term first.
    let terms: Vec<f64> = (0..=k)
        .map(|i| ln_n - ln_factorial(i) - ln_factorial(n - i) + half)
        .collect();
    let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let tail = top.exp() * terms.iter().map(|t| (t - top).exp()).sum::<f64>();
    (2.0 * tail).min(1.0)
}

/// splitmix64: a small generator, the same on every platform, for
/// resampling and simulation that must repeat exactly.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A percentile interval of the mean difference from `iters` resamples of
/// the documents, with a fixed seed so the same runs give the same gate.
pub fn paired_bootstrap(diffs: &[f64], iters: usize, level: f64, seed: u64) -> (f64, f64) {
    let n = diffs.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut rng = SplitMix64(seed);
    let mut means: Vec<f64> = (0..iters)
        .map(|_| {
            let sum: f64 = (0..n)
                .map(|_| diffs[(rng.next_u64() % n as u64) as usize])
                .sum();
            sum / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    let at = |q: f64| means[((q * (iters - 1) as f64).round() as usize).min(iters - 1)];
    (at(tail), at(1.0 - tail))
}

/// Holm's step-down adjustment: adjusted p-values, in the input's order.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// The smallest true difference a one-sided test at `alpha` detects with
/// probability `power`, given the comparison's standard error.
pub fn minimum_detectable_effect(stderr: f64, alpha: f64, power: f64) -> f64 {
    (normal_quantile(1.0 - alpha) + normal_quantile(power)) * stderr
}

/// Documents needed to detect a difference of `effect` with probability
/// `power` at one-sided `alpha`, when one document's difference has
/// standard deviation `sd`.
pub fn documents_needed(sd: f64, effect: f64, alpha: f64, power: f64) -> u64 {
    let z = normal_quantile(1.0 - alpha) + normal_quantile(power);
    ((z * sd / effect).powi(2)).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_distribution() {
        assert!((normal_cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-7);
        assert!((normal_cdf(-1.0) - 0.158_655_253_931_457).abs() < 1e-7);
        assert!((normal_quantile(0.95) - 1.644_853_626_951_472).abs() < 1e-8);
        assert!((normal_quantile(0.2) + 0.841_621_233_572_914).abs() < 1e-8);
    }

    #[test]
    fn mcnemar_matches_the_binomial_by_hand() {
        // b=1, c=9: 2 * (1 + 10) / 1024.
        assert!((mcnemar_exact(1, 9) - 22.0 / 1024.0).abs() < 1e-12);
        // b=5, c=5: the whole distribution, capped at 1.
        assert_eq!(mcnemar_exact(5, 5), 1.0);
        // b=0, c=3: 2 / 8.
        assert!((mcnemar_exact(0, 3) - 0.25).abs() < 1e-12);
        // Large counts, against scipy 1.17's binomtest(k, n).pvalue.
        assert!((mcnemar_exact(45, 60) - 0.171_564_697_154_242_4).abs() < 1e-9);
        assert!((mcnemar_exact(300, 400) - 0.000_178_476_314_485_624_4).abs() < 1e-12);
    }

    #[test]
    fn holm_steps_down() {
        let adjusted = holm(&[0.01, 0.04, 0.03]);
        // Sorted 0.01, 0.03, 0.04: x3, x2, x1 with a running maximum.
        assert_eq!(adjusted, vec![0.03, 0.06, 0.06]);
    }

    #[test]
    fn paired_difference_of_flips() {
        let base = [1.0, 1.0, 0.0, 0.0, 1.0, 0.0];
        let cand = [1.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        let d = paired_difference(&base, &cand, None).unwrap();
        assert_eq!(d.discordant, Some((2, 1)));
        assert!((d.mean + 1.0 / 6.0).abs() < 1e-12);
        // diffs 0,-1,1,0,-1,0: var = (5 * (1/6)^2... ) computed directly.
        let diffs = [0.0, -1.0, 1.0, 0.0, -1.0, 0.0];
        let m = -1.0 / 6.0;
        let var: f64 = diffs.iter().map(|x: &f64| (x - m).powi(2)).sum::<f64>() / 5.0;
        assert!((d.stderr - (var / 6.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn score_statistic_at_the_boundary() {
        // Without a margin it is McNemar's z: (g - l) / sqrt(l + g).
        let z = paired_binary_score(30, 10, 1000, 0.0, 0.0);
        assert!((z + 20.0 / 40f64.sqrt()).abs() < 1e-12, "{z}");
        // With one: the restricted MLE solves the quadratic; check that the
        // variance it implies makes the likelihood stationary.
        let (l, g, n, d) = (35.0, 25.0, 1000.0, 0.01);
        let m = n - l - g;
        let b: f64 = l * (1.0 + 3.0 * d) + g * (1.0 + d) + 2.0 * m * d;
        let a = (b + (b * b - 8.0 * n * l * d * (1.0 + d)).sqrt()) / (4.0 * n);
        let gradient = l / a + g / (a - d) - 2.0 * m / (1.0 - 2.0 * a + d);
        assert!(gradient.abs() < 1e-6, "{gradient}");
        let z = paired_binary_score(35, 25, 1000, 0.01, 0.0);
        assert!((z - 0.0).abs() < 1e-12, "{z}");
    }

    #[test]
    fn sizes() {
        // z(0.95) + z(0.8) = 1.644854 + 0.841621; with se 1, that is the effect.
        assert!((minimum_detectable_effect(1.0, 0.05, 0.8) - 2.486_475).abs() < 1e-5);
        // sd 0.245 (6% flips), 1 point: (2.486 * 0.245 / 0.01)^2 = 3710.
        let n = documents_needed(0.245, 0.01, 0.05, 0.8);
        assert!((3700..3720).contains(&n), "{n}");
    }
}
