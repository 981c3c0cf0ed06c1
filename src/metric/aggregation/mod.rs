//! Aggregations: how the per-document values of one metric become the task's
//! score, as lm-eval's `AGGREGATION_REGISTRY` defines them.
//!
//! The set is closed, so it is an enum chosen by name in `Aggregation::from_name`;
//! the formulas live one family per file (`central`, `perplexity`,
//! `classification`). Each formula reproduces the Python it replaces down to
//! the order of floating-point additions, because a leaderboard compares
//! assay's numbers with lm-eval's digit for digit.

mod central;
mod classification;
mod perplexity;

use super::MetricError;

/// What one document contributes to a metric, as lm-eval's `process_results`
/// produces it.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemValue {
    /// A plain score: 0/1 for acc, acc_norm, exact_match; a log-likelihood for
    /// perplexity; any float for a custom metric.
    Score(f64),
    /// `(loglikelihood, words | bytes)` for word_perplexity, byte_perplexity
    /// and bits_per_byte.
    Weighted { loglikelihood: f64, weight: f64 },
    /// `(gold, pred)` choice indices for f1 and mcc.
    GoldPred { gold: i64, pred: i64 },
    /// `(gold, softmax of the choice log-likelihoods)` for brier_score.
    GoldProbs { gold: i64, probs: Vec<f64> },
    /// Another value a Python hook returned (JSON, the hooks' worker's
    /// tags kept), for a Python aggregation function to read.
    Python(serde_json::Value),
}

impl ItemValue {
    fn kind(&self) -> &'static str {
        match self {
            ItemValue::Score(_) => "a score",
            ItemValue::Weighted { .. } => "a (loglikelihood, weight) pair",
            ItemValue::GoldPred { .. } => "a (gold, pred) pair",
            ItemValue::GoldProbs { .. } => "a (gold, probabilities) pair",
            ItemValue::Python(_) => "a value a Python hook returned",
        }
    }
}

/// An aggregation from lm-eval's registry that assay can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregation {
    /// `sum(xs) / len(xs)`.
    Mean,
    /// `sorted(xs)[len(xs) // 2]`: the upper middle element, not the average
    /// of the two middle ones.
    Median,
    /// numpy's `nanmean`: NaN scores are skipped; NaN when all are NaN.
    NanMean,
    /// `exp(-mean(loglikelihoods))`.
    Perplexity,
    /// `exp(-sum(loglikelihoods) / sum(weights))`.
    WeightedPerplexity,
    /// `-sum(loglikelihoods) / sum(bytes) / ln 2`.
    BitsPerByte,
    /// sklearn `f1_score(golds, preds)`: binary, positive label 1.
    F1,
    /// sklearn `matthews_corrcoef(golds, preds)`.
    MatthewsCorrcoef,
    /// Mean over documents of the squared distance between the choice
    /// probabilities and the one-hot gold.
    BrierScore,
    /// Always 999: lm-eval's placeholder for metrics computed elsewhere.
    Bypass,
}

/// Aggregations lm-eval registers that assay does not compute, and why.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("bleu", "it needs sacrebleu's corpus BLEU"),
    ("chrf", "it needs sacrebleu's corpus chrF"),
    ("chrf++", "it needs sacrebleu's corpus chrF++"),
    ("ter", "it needs sacrebleu's corpus TER"),
];

impl Aggregation {
    pub const ALL: [Aggregation; 10] = [
        Aggregation::Mean,
        Aggregation::Median,
        Aggregation::NanMean,
        Aggregation::Perplexity,
        Aggregation::WeightedPerplexity,
        Aggregation::BitsPerByte,
        Aggregation::F1,
        Aggregation::MatthewsCorrcoef,
        Aggregation::BrierScore,
        Aggregation::Bypass,
    ];

    /// The aggregation lm-eval registers under `name`.
    pub fn from_name(name: &str) -> Result<Aggregation, MetricError> {
        if let Some(found) = Aggregation::ALL.into_iter().find(|a| a.name() == name) {
            return Ok(found);
        }
        if let Some((_, reason)) = UNSUPPORTED.iter().find(|(n, _)| *n == name) {
            return Err(MetricError::UnsupportedAggregation {
                name: name.to_string(),
                reason,
            });
        }
        Err(MetricError::UnknownAggregation {
            name: name.to_string(),
            known: Aggregation::ALL.map(Aggregation::name).join(", "),
        })
    }

    /// lm-eval's registry name.
    pub fn name(self) -> &'static str {
        match self {
            Aggregation::Mean => "mean",
            Aggregation::Median => "median",
            Aggregation::NanMean => "nanmean",
            Aggregation::Perplexity => "perplexity",
            Aggregation::WeightedPerplexity => "weighted_perplexity",
            Aggregation::BitsPerByte => "bits_per_byte",
            Aggregation::F1 => "f1",
            Aggregation::MatthewsCorrcoef => "matthews_corrcoef",
            Aggregation::BrierScore => "brier_score",
            Aggregation::Bypass => "bypass",
        }
    }

    /// The task-level score from every document's value.
    pub fn aggregate(self, items: &[ItemValue]) -> Result<f64, MetricError> {
        match self {
            Aggregation::Bypass => Ok(central::BYPASS),
            Aggregation::NanMean => Ok(central::nanmean(&self.scores(items)?)),
            _ if items.is_empty() => Err(MetricError::NoItems {
                aggregation: self.name(),
            }),
            Aggregation::Mean => Ok(central::mean(&self.scores(items)?)),
            Aggregation::Median => Ok(central::median(&self.scores(items)?)),
            Aggregation::Perplexity => Ok(perplexity::perplexity(&self.scores(items)?)),
            Aggregation::WeightedPerplexity => {
                perplexity::weighted_perplexity(&self.weighted(items)?)
            }
            Aggregation::BitsPerByte => perplexity::bits_per_byte(&self.weighted(items)?),
            Aggregation::F1 => classification::f1(&self.gold_preds(items)?),
            Aggregation::MatthewsCorrcoef => {
                Ok(classification::matthews_corrcoef(&self.gold_preds(items)?))
            }
            Aggregation::BrierScore => classification::brier_score(&self.gold_probs(items)?),
        }
    }

    /// The statistic a bootstrap resamples: `aggregate` over plain values, for
    /// the aggregations lm-eval bootstraps. `None` for the others.
    pub(crate) fn bootstrap_input(self, items: &[ItemValue]) -> Option<BootstrapInput> {
        match self {
            Aggregation::Median | Aggregation::Perplexity | Aggregation::NanMean => {
                self.scores(items).ok().map(BootstrapInput::Scores)
            }
            Aggregation::F1 | Aggregation::MatthewsCorrcoef => {
                self.gold_preds(items).ok().map(BootstrapInput::Pairs)
            }
            _ => None,
        }
    }

    /// `aggregate` for a bootstrap replicate (the full sample was already
    /// checked, so a resample of it cannot fail).
    pub(crate) fn of_scores(self, xs: &[f64]) -> f64 {
        match self {
            Aggregation::Median => central::median(xs),
            Aggregation::Perplexity => perplexity::perplexity(xs),
            Aggregation::NanMean => central::nanmean(xs),
            _ => central::mean(xs),
        }
    }

    pub(crate) fn of_pairs(self, pairs: &[(i64, i64)]) -> f64 {
        match self {
            Aggregation::MatthewsCorrcoef => classification::matthews_corrcoef(pairs),
            _ => classification::f1(pairs).unwrap_or(f64::NAN),
        }
    }

    fn scores(self, items: &[ItemValue]) -> Result<Vec<f64>, MetricError> {
        items
            .iter()
            .map(|item| match item {
                ItemValue::Score(x) => Ok(*x),
                other => Err(self.wrong_kind("a score", other)),
            })
            .collect()
    }

    fn weighted(self, items: &[ItemValue]) -> Result<Vec<(f64, f64)>, MetricError> {
        items
            .iter()
            .map(|item| match item {
                ItemValue::Weighted {
                    loglikelihood,
                    weight,
                } => Ok((*loglikelihood, *weight)),
                other => Err(self.wrong_kind("a (loglikelihood, weight) pair", other)),
            })
            .collect()
    }

    fn gold_preds(self, items: &[ItemValue]) -> Result<Vec<(i64, i64)>, MetricError> {
        items
            .iter()
            .map(|item| match item {
                ItemValue::GoldPred { gold, pred } => Ok((*gold, *pred)),
                other => Err(self.wrong_kind("a (gold, pred) pair", other)),
            })
            .collect()
    }

    fn gold_probs(self, items: &[ItemValue]) -> Result<Vec<(i64, &[f64])>, MetricError> {
        items
            .iter()
            .map(|item| match item {
                ItemValue::GoldProbs { gold, probs } => Ok((*gold, probs.as_slice())),
                other => Err(self.wrong_kind("a (gold, probabilities) pair", other)),
            })
            .collect()
    }

    fn wrong_kind(self, expected: &'static str, found: &ItemValue) -> MetricError {
        MetricError::WrongItemKind {
            aggregation: self.name(),
            expected,
            found: found.kind(),
        }
    }
}

/// Plain values for a bootstrap to resample.
pub(crate) enum BootstrapInput {
    Scores(Vec<f64>),
    Pairs(Vec<(i64, i64)>),
}

/// Python's `len(re.split(r"\s+", text))`.
/// (the word count of word_perplexity)
pub(crate) fn count_words(text: &str) -> usize {
    let mut count = 1;
    let mut in_space = false;
    for c in text.chars() {
        let space = crate::python::text::is_space(c);
        if space && !in_space {
            count += 1;
        }
        in_space = space;
    }
    count
}

/// numpy's pairwise summation (`np.sum` of a contiguous float64 run), which
/// `np.mean`, `np.nanmean` and row sums use; it rounds differently from a
/// left-to-right sum once there are eight or more terms.
pub(crate) fn numpy_sum(xs: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    let n = xs.len();
    if n < 8 {
        let mut total = 0.0;
        for x in xs {
            total += x;
        }
        total
    } else if n <= BLOCK {
        let mut r = [0.0; 8];
        r.copy_from_slice(&xs[..8]);
        let whole = n - n % 8;
        for chunk in xs[8..whole].chunks_exact(8) {
            for (acc, x) in r.iter_mut().zip(chunk) {
                *acc += x;
            }
        }
        let mut total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for x in &xs[whole..] {
            total += x;
        }
        total
    } else {
        let half = n / 2;
        let half = half - half % 8;
        numpy_sum(&xs[..half]) + numpy_sum(&xs[half..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_counted_like_re_split() {
        assert_eq!(count_words("a b  c"), 3);
        assert_eq!(count_words(" a "), 3);
        assert_eq!(count_words(""), 1);
    }

    fn scores(xs: &[f64]) -> Vec<ItemValue> {
        xs.iter().map(|&x| ItemValue::Score(x)).collect()
    }

    #[test]
    fn names_round_trip() {
        for agg in Aggregation::ALL {
            assert_eq!(Aggregation::from_name(agg.name()).unwrap(), agg);
        }
    }

    #[test]
    fn sacrebleu_aggregations_are_refused_with_a_reason() {
        let err = Aggregation::from_name("bleu").unwrap_err().to_string();
        assert!(err.contains("sacrebleu"), "{err}");
        let err = Aggregation::from_name("avg").unwrap_err().to_string();
        assert!(
            err.contains("unknown aggregation `avg`") && err.contains("mean"),
            "{err}"
        );
    }

    #[test]
    fn wrong_item_kind_names_the_aggregation() {
        let items = [ItemValue::GoldPred { gold: 1, pred: 0 }];
        let err = Aggregation::Mean.aggregate(&items).unwrap_err().to_string();
        assert!(
            err.contains("`mean`") && err.contains("(gold, pred)"),
            "{err}"
        );
    }

    #[test]
    fn empty_items_are_an_error_except_where_python_returns_a_value() {
        assert!(Aggregation::Mean.aggregate(&[]).is_err());
        assert!(Aggregation::F1.aggregate(&[]).is_err());
        assert_eq!(Aggregation::Bypass.aggregate(&[]).unwrap(), 999.0);
        assert!(Aggregation::NanMean.aggregate(&[]).unwrap().is_nan());
    }

    #[test]
    fn numpy_sum_matches_numpy() {
        // xs = [(i * 0.37) % 1.3 for i in range(n)]; float(np.sum(np.array(xs)))
        // differs from Python's sum(xs) (27.299999999999983, 197.5999999999991).
        let xs = |n: usize| -> Vec<f64> { (0..n).map(|i| (i as f64 * 0.37) % 1.3).collect() };
        assert_eq!(numpy_sum(&xs(13)), 8.059999999999999);
        assert_eq!(numpy_sum(&xs(40)), 27.29999999999999);
        assert_eq!(numpy_sum(&xs(300)), 197.59999999999923);
        // every branch of the pairwise recursion
        let f = |n: usize| -> Vec<f64> {
            (0..n)
                .map(|i| (i as f64 * 0.37) % 1.3 + 1.0 / (i as f64 + 1.0))
                .collect()
        };
        assert_eq!(numpy_sum(&f(1)), 1.0);
        assert_eq!(numpy_sum(&f(7)), 6.462857142857142);
        assert_eq!(numpy_sum(&f(8)), 7.877857142857142);
        assert_eq!(numpy_sum(&f(9)), 8.348968253968252);
        assert_eq!(numpy_sum(&f(15)), 13.56822899322899);
        assert_eq!(numpy_sum(&f(16)), 13.98072899322899);
        assert_eq!(numpy_sum(&f(17)), 14.759552522640755);
        assert_eq!(numpy_sum(&f(127)), 87.59533459258904);
        assert_eq!(numpy_sum(&f(128)), 87.79314709258904);
        assert_eq!(numpy_sum(&f(129)), 88.36089903057353);
        assert_eq!(numpy_sum(&f(135)), 93.03618957459489);
        assert_eq!(numpy_sum(&f(255)), 171.57043871281672);
        assert_eq!(numpy_sum(&f(256)), 172.32434496281672);
        assert_eq!(numpy_sum(&f(257)), 173.44823601340036);
        assert_eq!(numpy_sum(&f(1000)), 660.5854708605416);
        assert_eq!(numpy_sum(&f(1001)), 661.3864698615407);
        assert_eq!(numpy_sum(&f(4099)), 2683.2658359612724);
        // np.nanmean(np.array(xs(300) + [nan]))
        let mut with_nan = xs(300);
        with_nan.push(f64::NAN);
        assert_eq!(central::nanmean(&with_nan), 0.6586666666666641);
    }

    /// Expected values from lm_eval.api.metrics (mean, median, perplexity,
    /// nanmean) run under lm-eval 0.4.13.
    #[test]
    fn central_and_perplexity_match_lm_eval() {
        let lls = [-1.25, -0.5, -3.0, -0.125, -2.2];
        assert_eq!(Aggregation::Mean.aggregate(&scores(&lls)).unwrap(), -1.415);
        assert_eq!(
            Aggregation::Perplexity.aggregate(&scores(&lls)).unwrap(),
            4.11648646597326
        );
        assert_eq!(Aggregation::Median.aggregate(&scores(&lls)).unwrap(), -1.25);
        // median of an even count is the upper middle element
        let even = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(Aggregation::Median.aggregate(&scores(&even)).unwrap(), 3.0);
        let with_nan = [1.0, f64::NAN, 0.0, 1.0];
        assert_eq!(
            Aggregation::NanMean.aggregate(&scores(&with_nan)).unwrap(),
            0.6666666666666666
        );
        assert!(Aggregation::NanMean
            .aggregate(&scores(&[f64::NAN, f64::NAN]))
            .unwrap()
            .is_nan());
    }

    /// lm_eval.api.metrics.weighted_perplexity / bits_per_byte.
    #[test]
    fn weighted_aggregations_match_lm_eval() {
        let pairs = |xs: &[(f64, f64)]| -> Vec<ItemValue> {
            xs.iter()
                .map(|&(loglikelihood, weight)| ItemValue::Weighted {
                    loglikelihood,
                    weight,
                })
                .collect()
        };
        let words = pairs(&[(-12.5, 7.0), (-3.25, 2.0), (-40.125, 19.0), (-0.0, 0.0)]);
        assert_eq!(
            Aggregation::WeightedPerplexity.aggregate(&words).unwrap(),
            7.35614276327635
        );
        assert_eq!(
            Aggregation::BitsPerByte.aggregate(&words).unwrap(),
            2.8789494789168155
        );
        let bytes = pairs(&[(-120.5, 310.0), (-33.25, 95.0), (-402.125, 1234.0)]);
        assert_eq!(
            Aggregation::WeightedPerplexity.aggregate(&bytes).unwrap(),
            1.4037608727508395
        );
        assert_eq!(
            Aggregation::BitsPerByte.aggregate(&bytes).unwrap(),
            0.4892971969823993
        );
        let empty_targets = pairs(&[(0.0, 0.0)]);
        assert!(Aggregation::BitsPerByte.aggregate(&empty_targets).is_err());
    }

    type F1Case = (&'static [(i64, i64)], Option<f64>, f64);

    /// lm_eval.api.metrics.f1_score and matthews_corrcoef, with sklearn 1.9.1.
    #[test]
    fn f1_and_mcc_match_sklearn() {
        let pairs = |xs: &[(i64, i64)]| -> Vec<ItemValue> {
            xs.iter()
                .map(|&(gold, pred)| ItemValue::GoldPred { gold, pred })
                .collect()
        };
        #[rustfmt::skip]
        // (pairs, f1 or None for sklearn's ValueError, mcc)
        let cases: &[F1Case] = &[
            (&[(1, 1), (0, 1), (1, 0), (0, 0), (1, 1)], Some(0.6666666666666666), 0.16666666666666666),
            (&[(1, 1), (1, 1), (0, 0)], Some(1.0), 1.0),
            // zero division: no positive gold nor prediction
            (&[(0, 0), (0, 0)], Some(0.0), 0.0),
            (&[(0, 1), (0, 1)], Some(0.0), 0.0),
            (&[(1, 0), (1, 0)], Some(0.0), 0.0),
            // a single label other than 1 is still "binary"
            (&[(2, 2), (2, 2)], Some(0.0), 0.0),
            (&[(1, 5)], Some(0.0), 0.0),
            (&[(1, 2), (2, 1), (1, 1)], Some(0.5), -0.5),
            // lm-eval's -100 for a gold not among the choices is just a label
            (&[(-100, 1), (1, 1)], Some(0.6666666666666666), 0.0),
            // pos_label=1 is not a valid label
            (&[(0, 2), (2, 0)], None, -1.0),
            // multiclass
            (&[(0, 1), (1, 2), (2, 0)], None, -0.5),
            (&[(0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (2, 0), (0, 0)], None, 0.34375),
            (&[(3, 3), (3, 3), (3, 1)], Some(0.0), 0.0),
            (&[(0, 0), (1, 0), (2, 0)], None, 0.0),
            (&[(1, 1)], Some(1.0), 0.0),
        ];
        for (xs, f1, mcc) in cases {
            let items = pairs(xs);
            match f1 {
                Some(f1) => {
                    assert_eq!(Aggregation::F1.aggregate(&items).unwrap(), *f1, "f1 {xs:?}")
                }
                None => assert!(
                    matches!(
                        Aggregation::F1.aggregate(&items),
                        Err(MetricError::F1NotBinary { .. })
                    ),
                    "f1 {xs:?}"
                ),
            }
            assert_eq!(
                Aggregation::MatthewsCorrcoef.aggregate(&items).unwrap(),
                *mcc,
                "mcc {xs:?}"
            );
        }
    }

    /// 20 documents of 10 choices: numpy_default_rng(3).dirichlet(ones(10), 20)
    /// and integers(0, 10, 20) as golds.
    #[rustfmt::skip]
    const BRIER_BIG: &[(i64, &[f64])] = &[
        (3, &[0.017448545126363266, 0.06180027377082051, 0.22196968725841137, 0.3489474044397166, 0.05447873116800478, 0.04089317292813258, 0.0689198506602391, 0.016271475252588832, 0.15875428631548447, 0.010516573080238616]),
        (6, &[0.0419365771045681, 0.3111030900362674, 0.024769321983672984, 0.11944995137797816, 0.0479544589953786, 0.18904764884062752, 0.08435165671968946, 0.13798662336976267, 0.026884106599775626, 0.016516564972279525]),
        (0, &[0.00022843595166214772, 0.14789068791479926, 0.11353988194286121, 0.15438682057237568, 0.08296819155960126, 0.07294228043494713, 0.07487107069289968, 0.07412559148507858, 0.005249127925343861, 0.27379791152043115]),
        (3, &[0.12439180512247276, 0.005767530963884255, 0.12817976303939468, 0.2692490131699723, 0.018088181040730997, 0.0681333438108096, 0.011263946035314866, 0.10815314419699375, 0.18709235472007074, 0.07968091790035611]),
        (1, &[0.0891622621457736, 0.07613199438022693, 0.049878412852119566, 0.11646141318552265, 0.025576181103913482, 0.13421907488241067, 0.29211155475672507, 0.0129330102573073, 0.156561233562666, 0.04696486287333472]),
        (3, &[0.036450801387072795, 0.014404241255373295, 0.22053795708273688, 0.008839401003876875, 0.10332610358734298, 0.043141616506497435, 0.1773993328495119, 0.08156643893877998, 0.29983663124864973, 0.014497476140158063]),
        (1, &[0.015319453981303388, 0.1478661364434881, 0.036011400708318556, 0.22488373546797194, 0.0912905859734453, 0.04504947558161989, 0.27755799628918176, 0.006704133243772421, 0.08958117814067494, 0.06573590417022372]),
        (7, &[0.013988616437545197, 0.027508838940099083, 0.02301928092772287, 0.05882576753560619, 0.055749105165028096, 0.06176068813019994, 0.10180914477611688, 0.03539433785053285, 0.43636985572002074, 0.18557436451712817]),
        (6, &[0.12769291623127865, 0.15287324234887395, 0.006445795652280352, 0.07156623706054961, 0.07232370465253145, 0.0032863782222420147, 0.2524500863934814, 0.00986822114207354, 0.06970039359283939, 0.23379302470384977]),
        (0, &[0.051805454988351915, 0.06545417715530764, 0.19350692015297077, 0.020528526648672364, 0.08938377204500951, 0.0624224108793071, 0.17214802429536916, 0.13120485717105337, 0.09491070027955877, 0.11863515638439934]),
        (2, &[0.004441962582811187, 0.1474436514180649, 0.04249526638231037, 0.1969159739018065, 0.07979512605523173, 0.1732583392973261, 0.21010860733714928, 0.08503269547576106, 0.03149724072288276, 0.029011136826656066]),
        (8, &[0.028551334165388645, 0.007830173086819698, 0.10668991189921471, 0.21431177293216375, 0.00671305457715295, 0.23314625395484634, 0.058345558279507985, 0.04723443809023829, 0.08753317885728827, 0.2096443241573792]),
        (9, &[0.13963414843170863, 0.05504156865940099, 0.0964016226141238, 0.14167138178379565, 0.16803578681206477, 0.02171912531063484, 0.03535813534901315, 0.23355469079386926, 0.07060963071333914, 0.03797390953204966]),
        (8, &[0.03658948661081647, 0.09046759049430189, 0.15564473912932802, 0.017142968223712262, 0.019242449438835404, 0.3824001271584891, 0.060706142293082264, 0.12033103314362824, 0.07170995443447131, 0.045765509073335174]),
        (1, &[0.2832043386665522, 0.03286400506199718, 0.03647543178728935, 0.048054424106309376, 0.16534079058960136, 0.11159842271455386, 0.18282543265401835, 0.11535050308976084, 0.01392662984829969, 0.010360021481618105]),
        (9, &[0.14329627567592554, 0.03128241077842907, 0.10183589629264603, 0.0864120775890306, 0.020888641238125505, 0.10054552199155667, 0.021806323319434287, 0.15829160876830844, 0.2366178884955015, 0.09902335585104266]),
        (4, &[0.005961467415177835, 0.014644814886552449, 0.09970668159737865, 0.12520244087357643, 0.07421023899271609, 0.16643546337743495, 0.2546603771078034, 0.056995484656982356, 0.15581567316694506, 0.046367357925432645]),
        (1, &[0.10463388901928274, 0.13704515198721634, 0.09333102574700904, 0.05241979562753389, 0.0700959739083167, 0.009030428377577431, 0.16982731293035233, 0.17434734635523136, 0.06680795713243898, 0.12246111891504113]),
        (7, &[7.624513029135332e-05, 0.03180026427480953, 0.1578934378233394, 0.05447583664672106, 0.05602047030572581, 0.13860607244038342, 0.27162654591289476, 0.17442858322506727, 0.09510886147037627, 0.019963682770391084]),
        (1, &[0.06825613444006821, 0.03191033827260534, 0.22950106357211938, 0.05776001130905835, 0.14095035920597213, 0.09279567294597553, 0.004923005279415914, 0.11908467721873052, 0.11143295942803441, 0.14338577832802013]),
    ];

    /// lm_eval.api.metrics.brier_score.
    #[test]
    fn brier_score_matches_lm_eval() {
        let items = |xs: &[(i64, &[f64])]| -> Vec<ItemValue> {
            xs.iter()
                .map(|&(gold, probs)| ItemValue::GoldProbs {
                    gold,
                    probs: probs.to_vec(),
                })
                .collect()
        };
        let three = items(&[
            (0, &[0.7, 0.2, 0.1]),
            (2, &[0.1, 0.3, 0.6]),
            (1, &[0.25, 0.5, 0.25]),
        ]);
        assert_eq!(
            Aggregation::BrierScore.aggregate(&three).unwrap(),
            0.25833333333333336
        );
        // a negative gold indexes from the end, as numpy does
        let negative = items(&[(-1, &[0.7, 0.3]), (0, &[0.4, 0.6])]);
        assert_eq!(
            Aggregation::BrierScore.aggregate(&negative).unwrap(),
            0.8499999999999999
        );
        let big = items(BRIER_BIG);
        assert_eq!(
            Aggregation::BrierScore.aggregate(&big).unwrap(),
            0.9608768520206935
        );
        let out_of_range = items(&[(-100, &[0.5, 0.5])]);
        assert!(Aggregation::BrierScore.aggregate(&out_of_range).is_err());
        let ragged = items(&[(0, &[0.5, 0.5]), (0, &[1.0])]);
        assert!(Aggregation::BrierScore.aggregate(&ragged).is_err());
    }
}
