//! CPython 3.11's `random.Random`, reproduced bit for bit.
//!
//! lm-evaluation-harness draws few-shot examples with `random.sample` and
//! bootstraps standard errors with `random.choices`, each from a `Random`
//! seeded with a plain integer. assay must pick the same documents and report
//! the same error bars, so this is the Mersenne Twister exactly as
//! `Modules/_randommodule.c` seeds and runs it, plus the pure-Python
//! `Lib/random.py` algorithms on top. Only what lm-eval uses is here; every
//! method notes the Python it mirrors, and the tests pin values printed by
//! CPython itself.
//!
//! BIG-bench draws with numpy's legacy `np.random.RandomState(seed)` instead:
//! the same generator, seeded the other way (`init_genrand`, not
//! `init_by_array`) and with numpy's own bounded integers. [`NpRandomState`]
//! shares the twister and adds the two draws BIG-bench makes.

use std::collections::HashSet;
use std::fmt;

/// Degree of recurrence and middle word of MT19937, as in `_randommodule.c`.
const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// Requests CPython answers with an exception (or, for `_randbelow(0)`, an
/// endless loop); assay answers with one of these instead of panicking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PyRandomError {
    /// Python: `ValueError: Sample larger than population or is negative`.
    #[error("cannot sample {k} items without replacement from a population of {n}")]
    SampleLargerThanPopulation { k: usize, n: usize },
    /// Python raises `IndexError` from `choices` on an empty population and
    /// loops forever in `_randbelow(0)`.
    #[error("cannot draw from an empty population")]
    EmptyPopulation,
    /// `getrandbits` returns a Python int of any width; assay's returns `u64`.
    #[error("getrandbits({k}) does not fit in 64 bits")]
    TooManyBits { k: u32 },
    /// `choices` scales a 53-bit float by the population size, which stops
    /// being exact above 2**53.
    #[error("population of {n} is too large to draw from through a 53-bit float")]
    PopulationTooLarge { n: usize },
}

/// A Mersenne Twister in the state `random.Random(seed)` would be in.
#[derive(Clone)]
pub struct PyRandom {
    state: [u32; N],
    index: usize,
}

impl fmt::Debug for PyRandom {
    // 624 words of state help nobody reading a debug print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PyRandom")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl PyRandom {
    /// `random.Random(seed)` for a non-negative integer seed.
    pub fn new(seed: u64) -> Self {
        let mut rng = PyRandom {
            state: [0; N],
            index: N + 1,
        };
        rng.seed(seed);
        rng
    }

    /// `random.Random(seed)` for any integer: CPython seeds with `abs(seed)`,
    /// so `-42` and `42` give the same stream.
    pub fn from_int_seed(seed: i64) -> Self {
        Self::new(seed.unsigned_abs())
    }

    /// `rnd.seed(seed)`: restart in place, as lm-eval's bootstrap does.
    pub fn seed(&mut self, seed: u64) {
        // CPython splits abs(seed) into 32-bit words, least significant first,
        // and keeps at least one word so that seed 0 gives the key [0].
        let low = seed as u32;
        let high = (seed >> 32) as u32;
        if high == 0 {
            self.init_by_array(&[low]);
        } else {
            self.init_by_array(&[low, high]);
        }
    }

    fn init_genrand(&mut self, s: u32) {
        let mt = &mut self.state;
        mt[0] = s;
        for i in 1..N {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        self.index = N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let mt = &mut self.state;
        let mut i = 1;
        let mut j = 0;
        for _ in 0..N.max(key.len()) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        // MSB set so the state is never all zeros.
        mt[0] = 0x8000_0000;
    }

    /// `genrand_uint32`: the next tempered 32-bit output.
    fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    fn twist(&mut self) {
        let mt = &mut self.state;
        let mag01 = |y: u32| if y & 1 == 0 { 0 } else { MATRIX_A };
        for kk in 0..N {
            let y = (mt[kk] & UPPER_MASK) | (mt[(kk + 1) % N] & LOWER_MASK);
            mt[kk] = mt[(kk + M) % N] ^ (y >> 1) ^ mag01(y);
        }
        self.index = 0;
    }

    /// `getrandbits(k)` for `k <= 64`. Up to 32 bits come from the top of one
    /// word; wider requests fill 32-bit words from the least significant end,
    /// dropping the low bits of the last one.
    pub fn getrandbits(&mut self, k: u32) -> Result<u64, PyRandomError> {
        match k {
            0 => Ok(0),
            1..=32 => Ok(u64::from(self.next_u32() >> (32 - k))),
            33..=64 => {
                let low = u64::from(self.next_u32());
                let high = u64::from(self.next_u32() >> (64 - k));
                Ok(low | (high << 32))
            }
            _ => Err(PyRandomError::TooManyBits { k }),
        }
    }

    /// `random()`: a float in [0, 1) built from 53 random bits.
    pub fn random(&mut self) -> f64 {
        // Two separate statements: C sequences these draws a first, b second.
        let a = self.next_u32() >> 5;
        let b = self.next_u32() >> 6;
        (f64::from(a) * 67_108_864.0 + f64::from(b)) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `_randbelow_with_getrandbits(n)`: uniform in [0, n) by rejection.
    ///
    /// CPython 3.11 spins forever on `n == 0` (`getrandbits(0)` is 0, which is
    /// never below 0); this returns an error instead.
    pub fn randbelow(&mut self, n: usize) -> Result<usize, PyRandomError> {
        if n == 0 {
            return Err(PyRandomError::EmptyPopulation);
        }
        let k = usize::BITS - n.leading_zeros();
        loop {
            // k <= usize::BITS <= 64, so neither the draw nor the cast can fail.
            let r = self.getrandbits(k)? as usize;
            if r < n {
                return Ok(r);
            }
        }
    }

    /// The indices `random.sample(range(n), k)` returns, in order, so that
    /// `sample(population, k)` is `population[i]` for each index.
    ///
    /// CPython picks between two algorithms by comparing `n` to the memory a
    /// set of `k` items would take; both draw differently, so the threshold
    /// is reproduced exactly.
    pub fn sample_indices(&mut self, n: usize, k: usize) -> Result<Vec<usize>, PyRandomError> {
        if k > n {
            return Err(PyRandomError::SampleLargerThanPopulation { k, n });
        }
        let mut setsize: u128 = 21;
        if k > 5 {
            // `4 ** ceil(log(k * 3, 4))`: math.log(x, 4) is log(x) / log(4) in
            // doubles, so compute it the same way rather than with integers.
            let exponent = ((k as u128 * 3) as f64).ln() / 4f64.ln();
            let exponent = exponent.ceil() as u32;
            setsize = setsize.saturating_add(4u128.checked_pow(exponent).unwrap_or(u128::MAX));
        }
        let mut result = Vec::with_capacity(k);
        if n as u128 <= setsize {
            // Partial Fisher-Yates: unselected items live in pool[..n - i].
            let mut pool: Vec<usize> = (0..n).collect();
            for i in 0..k {
                let j = self.randbelow(n - i)?;
                result.push(pool[j]);
                pool[j] = pool[n - i - 1];
            }
        } else {
            let mut selected = HashSet::with_capacity(k);
            for _ in 0..k {
                let mut j = self.randbelow(n)?;
                while selected.contains(&j) {
                    j = self.randbelow(n)?;
                }
                selected.insert(j);
                result.push(j);
            }
        }
        Ok(result)
    }

    /// The indices `random.choices(range(n), k=k)` returns (no weights):
    /// `floor(random() * n)` per draw, with replacement.
    pub fn choices_indices(&mut self, n: usize, k: usize) -> Result<Vec<usize>, PyRandomError> {
        if k == 0 {
            return Ok(Vec::new());
        }
        if n == 0 {
            return Err(PyRandomError::EmptyPopulation);
        }
        // Below 2**53 the scaled draw is exact enough that floor(..) < n always.
        if n as u64 > 1u64 << 53 {
            return Err(PyRandomError::PopulationTooLarge { n });
        }
        let n_float = n as f64;
        Ok((0..k)
            .map(|_| (self.random() * n_float).floor() as usize)
            .collect())
    }
}

/// numpy's legacy `np.random.RandomState(seed)` for an integer seed, as
/// `numpy/random/mtrand.pyx` and `src/distributions` run it. numpy keeps this
/// stream fixed across versions, so the draws below are those of any numpy
/// BIG-bench ran with.
#[derive(Debug, Clone)]
pub struct NpRandomState {
    mt: PyRandom,
}

impl NpRandomState {
    /// `RandomState(seed)`: `mt19937_seed`, which is `init_genrand(seed)`.
    pub fn new(seed: u32) -> Self {
        let mut mt = PyRandom {
            state: [0; N],
            index: N + 1,
        };
        mt.init_genrand(seed);
        NpRandomState { mt }
    }

    /// `random_interval(max)`: uniform in `[0, max]` by masking to the
    /// smallest covering power of two and rejecting values above `max`.
    fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for shift in [1, 2, 4, 8, 16, 32] {
            mask |= mask >> shift;
        }
        loop {
            let value = if max <= u64::from(u32::MAX) {
                u64::from(self.mt.next_u32()) & mask
            } else {
                // `next_uint64` of MT19937: high word first.
                let high = u64::from(self.mt.next_u32());
                ((high << 32) | u64::from(self.mt.next_u32())) & mask
            };
            if value <= max {
                return value;
            }
        }
    }

    /// `permutation(n)`: `arange(n)` shuffled in place by `shuffle`, which
    /// swaps position `i` with `random_interval(i)` for `i = n-1 .. 1`.
    /// `choice(n, k, replace=False)` is the first `k` of it.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut items: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.interval(i as u64) as usize;
            items.swap(i, j);
        }
        items
    }

    /// `randint(0, n)` (and so `choice(population)` of `n` items): the
    /// masked draw of `random_bounded_uint64_fill`, which makes no draw when
    /// `n == 1`.
    pub fn randint_below(&mut self, n: usize) -> Result<usize, PyRandomError> {
        if n == 0 {
            return Err(PyRandomError::EmptyPopulation);
        }
        Ok(self.interval(n as u64 - 1) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every expected value below was printed by CPython 3.11.7, e.g.
    // `r = random.Random(s); [r.getrandbits(k) for k in (1, 5, 32, 33, 64)]`.
    const SEEDS: [u64; 5] = [0, 1, 42, 1234, (1 << 40) + 7];

    #[test]
    fn getrandbits_matches_cpython() {
        let expected: [[u64; 5]; 5] = [
            [1, 12, 3255389356, 3823568514, 4776171008201404212],
            [0, 18, 3639700191, 7740669488, 4705193143269049553],
            [1, 3, 107420369, 3184935163, 4117511471858006928],
            [1, 24, 1892932127, 501869158, 16804540376168033093],
            [1, 23, 3500038837, 8323356347, 10521851240000246337],
        ];
        for (seed, want) in SEEDS.iter().zip(expected) {
            let mut rng = PyRandom::new(*seed);
            let got: Vec<u64> = [1, 5, 32, 33, 64]
                .iter()
                .map(|&k| rng.getrandbits(k).unwrap())
                .collect();
            assert_eq!(got, want, "seed {seed}");
        }
    }

    #[test]
    fn getrandbits_rejects_more_than_64_bits() {
        assert_eq!(
            PyRandom::new(0).getrandbits(65),
            Err(PyRandomError::TooManyBits { k: 65 })
        );
    }

    #[test]
    fn random_matches_cpython() {
        let expected: [[f64; 3]; 5] = [
            [0.8444218515250481, 0.7579544029403025, 0.420571580830845],
            [0.13436424411240122, 0.8474337369372327, 0.763774618976614],
            [
                0.6394267984578837,
                0.025010755222666936,
                0.27502931836911926,
            ],
            [0.9664535356921388, 0.4407325991753527, 0.007491470058587191],
            [0.6137037779936511, 0.8149162973309487, 0.9450115087592873],
        ];
        for (seed, want) in SEEDS.iter().zip(expected) {
            let mut rng = PyRandom::new(*seed);
            let got = [rng.random(), rng.random(), rng.random()];
            assert_eq!(got, want, "seed {seed}");
        }
    }

    #[test]
    fn randbelow_matches_cpython() {
        // r._randbelow(n) for n in (1, 2, 7, 100, 10**6, 2**40 + 3)
        let expected: [[usize; 6]; 5] = [
            [0, 1, 0, 33, 536110, 891145273829],
            [0, 0, 2, 15, 519501, 991110786884],
            [0, 0, 5, 35, 256787, 305901360862],
            [0, 0, 0, 11, 955227, 183365414236],
            [0, 1, 4, 16, 541919, 797660323531],
        ];
        for (seed, want) in SEEDS.iter().zip(expected) {
            let mut rng = PyRandom::new(*seed);
            let got: Vec<usize> = [1, 2, 7, 100, 1_000_000, (1 << 40) + 3]
                .iter()
                .map(|&n| rng.randbelow(n).unwrap())
                .collect();
            assert_eq!(got, want, "seed {seed}");
        }
        assert_eq!(
            PyRandom::new(0).randbelow(0),
            Err(PyRandomError::EmptyPopulation)
        );
    }

    #[test]
    fn negative_seed_and_reseed_match_cpython() {
        // Random(-42).getrandbits(32) == Random(42).getrandbits(32) == 2746317213
        assert_eq!(
            PyRandom::from_int_seed(-42).getrandbits(32).unwrap(),
            2746317213
        );
        assert_eq!(
            PyRandom::from_int_seed(i64::MIN).getrandbits(32),
            PyRandom::new(1 << 63).getrandbits(32)
        );
        let mut rng = PyRandom::new(5);
        rng.random();
        rng.seed(42);
        assert_eq!(rng.getrandbits(32).unwrap(), 2746317213);
    }

    /// One generator per seed draws, in order: sample(range(5), 3),
    /// sample(range(1000), 5), sample(range(100), 26), sample(range(7), 7),
    /// choices(range(10), k=8), choices(range(50), k=6). CPython's draws are
    /// in tests/fixtures/python_random_draws.json.
    #[test]
    fn sample_and_choices_match_cpython() {
        let expected: Vec<serde_json::Value> = serde_json::from_str(include_str!(
            "../../tests/fixtures/python_random_draws.json"
        ))
        .unwrap();
        assert_eq!(expected.len(), SEEDS.len());
        let list =
            |v: &serde_json::Value| -> Vec<usize> { serde_json::from_value(v.clone()).unwrap() };
        for (seed, want) in SEEDS.iter().zip(&expected) {
            assert_eq!(want["seed"], *seed);
            let mut rng = PyRandom::new(*seed);
            let draws = [
                ("s5_3", rng.sample_indices(5, 3)),
                ("s1000_5", rng.sample_indices(1000, 5)),
                ("s100_26", rng.sample_indices(100, 26)),
                ("s7_7", rng.sample_indices(7, 7)),
                ("c10_8", rng.choices_indices(10, 8)),
                ("c50_6", rng.choices_indices(50, 6)),
            ];
            for (name, drawn) in draws {
                assert_eq!(drawn.unwrap(), list(&want[name]), "seed {seed}, {name}");
            }
        }
    }

    #[test]
    fn sample_switches_algorithm_where_cpython_does() {
        // k = 5 keeps setsize at 21: n = 21 takes the pool branch, n = 22 the
        // set branch, and with seed 2 the two differ from the third draw on.
        assert_eq!(
            PyRandom::new(2).sample_indices(21, 5).unwrap(),
            [1, 2, 19, 11, 5]
        );
        assert_eq!(
            PyRandom::new(2).sample_indices(22, 5).unwrap(),
            [1, 2, 11, 5, 21]
        );
        // k = 300 gives setsize 21 + 4**5 = 1045: pool branch at n = 1000 and
        // set branch at n = 1046. Checked by first and last picks and by
        // sum(i * (pos + 1)) over the whole sample.
        let weighted =
            |xs: &[usize]| -> usize { xs.iter().enumerate().map(|(pos, i)| i * (pos + 1)).sum() };
        let pool = PyRandom::new(3).sample_indices(1000, 300).unwrap();
        assert_eq!(
            pool[..10],
            [243, 606, 557, 133, 378, 937, 618, 485, 640, 594]
        );
        assert_eq!(pool[295..], [297, 429, 581, 419, 852]);
        assert_eq!(weighted(&pool), 23380209);
        let set = PyRandom::new(3).sample_indices(1046, 300).unwrap();
        assert_eq!(set[..10], [487, 267, 757, 970, 134, 26, 960, 531, 479, 392]);
        assert_eq!(set[295..], [332, 196, 1019, 907, 381]);
        assert_eq!(weighted(&set), 22787953);
    }

    #[test]
    fn long_choices_match_cpython() {
        // Random(9).choices(range(1000), k=1000) crosses a state twist.
        let picks = PyRandom::new(9).choices_indices(1000, 1000).unwrap();
        let weighted: usize = picks.iter().enumerate().map(|(pos, i)| i * (pos + 1)).sum();
        assert_eq!(weighted, 242319180);
    }

    #[test]
    fn impossible_requests_are_errors() {
        let mut rng = PyRandom::new(0);
        assert_eq!(
            rng.sample_indices(3, 4),
            Err(PyRandomError::SampleLargerThanPopulation { k: 4, n: 3 })
        );
        assert_eq!(rng.sample_indices(0, 0).unwrap(), Vec::<usize>::new());
        assert_eq!(
            rng.choices_indices(0, 1),
            Err(PyRandomError::EmptyPopulation)
        );
        assert_eq!(rng.choices_indices(0, 0).unwrap(), Vec::<usize>::new());
    }

    /// Printed by numpy 2.4 (legacy stream), e.g.
    /// `[np.random.RandomState(42).permutation(n).tolist() for n in range(1, 8)]`.
    #[test]
    fn permutation_matches_numpy() {
        let expected: [&[usize]; 7] = [
            &[0],
            &[1, 0],
            &[0, 1, 2],
            &[1, 3, 0, 2],
            &[1, 4, 2, 0, 3],
            &[0, 1, 5, 2, 4, 3],
            &[0, 1, 5, 2, 4, 3, 6],
        ];
        for (n, want) in (1..).zip(expected) {
            assert_eq!(NpRandomState::new(42).permutation(n), want, "n = {n}");
        }
        assert_eq!(
            NpRandomState::new(u32::MAX).permutation(20),
            [11, 17, 19, 15, 1, 5, 8, 16, 13, 18, 14, 9, 10, 6, 0, 4, 7, 12, 2, 3]
        );
    }

    /// `r = RandomState(42)`: `r.permutation(9)`, `r.choice(['a','b','c'])`,
    /// `r.permutation(5)`, `r.randint(0, 1000)`, `r.choice(10, 3, replace=False)`,
    /// `r.randint(0, 1)`, `r.permutation(3)`; and `RandomState(0).randint(0, 7)`
    /// ten times.
    #[test]
    fn draws_interleave_like_numpy() {
        let mut r = NpRandomState::new(42);
        assert_eq!(r.permutation(9), [7, 1, 5, 0, 8, 2, 4, 3, 6]);
        assert_eq!(r.randint_below(3).unwrap(), 2);
        assert_eq!(r.permutation(5), [3, 1, 0, 4, 2]);
        assert_eq!(r.randint_below(1000).unwrap(), 871);
        assert_eq!(r.permutation(10)[..3], [0, 8, 6]);
        assert_eq!(r.randint_below(1).unwrap(), 0);
        assert_eq!(r.permutation(3), [1, 2, 0]);
        let mut r = NpRandomState::new(0);
        let got: Vec<usize> = (0..10).map(|_| r.randint_below(7).unwrap()).collect();
        assert_eq!(got, [4, 5, 0, 3, 3, 3, 1, 3, 5, 2]);
        assert!(r.randint_below(0).is_err());
    }
}
