//! Few-shot samplers that draw exactly the documents lm-eval draws.
//!
//! lm-eval keeps one `random.Random(seed)` per task and draws from it once per
//! evaluated document, in document order, so the examples for document *i*
//! depend on every draw before it. Reproducing its prompts therefore means
//! reproducing CPython's generator and `Random.sample`, and making the same
//! draws in the same order, including the extra draw it makes when the
//! evaluated document could be among the examples.
//!
//! BIG-bench `task.json` tasks use their own sampler (`bigbench`), which
//! replays json_task.py's `make_nshot_dataset` with numpy's generator.

use serde_json::Value;

use crate::data::bigbench::BIG_BENCH_SEED;
use crate::data::Doc;
use crate::python::random::{NpRandomState, PyRandom};

/// How few-shot examples are chosen (`fewshot_config.sampler`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerKind {
    /// `random.Random(seed).sample(pool, n)`.
    Default,
    /// The first `n` documents of the pool, in order.
    FirstN,
    /// BIG-bench's `make_nshot_dataset`: one `RandomState(42)` for the task;
    /// per evaluated document, `choice(others, n, replace=False)` over the
    /// pool without that document, then `choice(targets)` for each example
    /// drawn. The example's `targets` is narrowed to the target drawn, which
    /// is the one the prompt shows (lm-eval shows a list's first item).
    BigBench,
}

pub struct Sampler {
    kind: SamplerKind,
    pool: Vec<Doc>,
    rng: PyRandom,
    np_rng: NpRandomState,
}

impl Sampler {
    /// `indices` (lm-eval's `fewshot_indices`) narrows the pool for the
    /// default sampler only, as in lm-eval.
    pub fn new(
        kind: SamplerKind,
        pool: Vec<Doc>,
        indices: Option<&[usize]>,
        seed: u64,
    ) -> Result<Sampler, String> {
        let pool = match (kind, indices) {
            (SamplerKind::Default, Some(idx)) => idx
                .iter()
                .map(|&i| {
                    pool.get(i).cloned().ok_or_else(|| {
                        format!(
                            "fewshot_indices: index {i} is outside the {} few-shot documents",
                            pool.len()
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            _ => pool,
        };
        Ok(Sampler {
            kind,
            pool,
            rng: PyRandom::new(seed),
            np_rng: NpRandomState::new(BIG_BENCH_SEED),
        })
    }

    /// The `n` examples for one evaluated document. `exclude` is that
    /// document when it may be drawn as its own example.
    pub fn sample(&mut self, n: usize, exclude: Option<&Doc>) -> Result<Vec<Doc>, String> {
        if n == 0 {
            return Ok(vec![]);
        }
        match self.kind {
            SamplerKind::BigBench => self.sample_like_big_bench(n, exclude),
            SamplerKind::FirstN => {
                let pool: Vec<&Doc> = self.pool.iter().filter(|d| Some(*d) != exclude).collect();
                if n > pool.len() {
                    return Err(format!(
                        "{n} few-shot examples requested but only {} are available",
                        pool.len()
                    ));
                }
                Ok(pool[..n].iter().map(|d| (*d).clone()).collect())
            }
            SamplerKind::Default => {
                if self.pool.is_empty() {
                    return Err("no documents available for few-shot sampling".into());
                }
                let exclude = exclude.filter(|d| !d.is_empty());
                let draw =
                    |rng: &mut PyRandom, pool: &[&Doc], k: usize| -> Result<Vec<Doc>, String> {
                        let idx = rng.sample_indices(pool.len(), k).map_err(|_| {
                            format!(
                                "{k} few-shot examples requested but only {} are available",
                                pool.len()
                            )
                        })?;
                        Ok(idx.into_iter().map(|i| pool[i].clone()).collect())
                    };
                let all: Vec<&Doc> = self.pool.iter().collect();
                let Some(eval_doc) = exclude else {
                    return draw(&mut self.rng, &all, n);
                };
                let mut res: Vec<Doc> = draw(&mut self.rng, &all, n + 1)?
                    .into_iter()
                    .filter(|d| d != eval_doc)
                    .take(n)
                    .collect();
                if res.len() < n {
                    let others: Vec<&Doc> = self.pool.iter().filter(|d| *d != eval_doc).collect();
                    res = draw(&mut self.rng, &others, n)?;
                }
                Ok(res)
            }
        }
    }

    fn sample_like_big_bench(
        &mut self,
        n: usize,
        exclude: Option<&Doc>,
    ) -> Result<Vec<Doc>, String> {
        let others: Vec<&Doc> = self.pool.iter().filter(|d| Some(*d) != exclude).collect();
        if others.len() < n {
            return Err(format!(
                "{n} few-shot examples requested but the task has only {} other examples",
                others.len()
            ));
        }
        let chosen: Vec<usize> = self.np_rng.permutation(others.len())[..n].to_vec();
        let mut out = Vec::with_capacity(n);
        for i in chosen {
            let mut example = others[i].clone();
            if let Some(Value::Array(targets)) = example.get("targets") {
                let k = self
                    .np_rng
                    .randint_below(targets.len())
                    .map_err(|_| "a few-shot example has an empty `targets` list".to_string())?;
                let target = targets[k].clone();
                example.insert("targets".into(), Value::Array(vec![target]));
            }
            out.push(example);
        }
        Ok(out)
    }
}
