//! How token sequences become llama.cpp batches that share their prefixes.
//!
//! Sequences come in groups (the options of one multiple-choice document:
//! the requests with the same context). Within a group the sequences form a
//! prefix tree: a token shared by several of them is evaluated once, in one
//! KV cell that carries all their sequence ids (llama.cpp's unified KV cache
//! allows that), and logits are requested only at the positions somebody
//! scores. This is how llama.cpp's `perplexity --multiple-choice` evaluates
//! the endings of a task. Whole groups may be packed into one batch while
//! its distinct tokens fit the KV cache.
//!
//! Groups never share cells, even when their texts share a prefix (few-shot
//! examples), and by default each group gets batches of its own: on some
//! models (Gemma 3 with K-quants) where a sequence's cells sit in the cache,
//! and next to what, moves its log-probabilities by up to tenths of a nat.
//! A group alone in the cache always gets the same layout, so a document's
//! scores depend on that document only, whatever else was in the call.

use std::ops::Range;

/// A raw llama.cpp token id.
pub(crate) type Token = i32;

/// One sequence to feed: its tokens, and the first position whose logits
/// (the prediction of the next token) are needed; logits are needed from
/// there to the end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SequenceShape<'a> {
    pub tokens: &'a [Token],
    /// Sequences share cells only with sequences of the same group.
    pub group: usize,
    pub outputs_from: usize,
    /// KV cells to keep free for this sequence beyond its tokens (room to
    /// generate).
    pub reserve: usize,
}

/// One token evaluated in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub token: Token,
    pub pos: usize,
    /// The batch-local sequence ids (indices into [`Batch::sequences`]) that
    /// contain this token: always a contiguous range, because the sequences
    /// are sorted.
    pub seq_ids: Range<usize>,
    /// Whether the logits after this token are needed.
    pub output: bool,
}

/// A set of sequences evaluated together with the KV cache cleared first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    /// Batch-local sequence id -> index of the sequence in the planner's input.
    pub sequences: Vec<usize>,
    /// The distinct tokens, parents before children.
    pub nodes: Vec<Node>,
    /// For each batch-local sequence, the node whose logits give the
    /// prediction at each position from `outputs_from` to the end.
    pub outputs: Vec<Vec<usize>>,
}

/// A sequence that cannot fit the KV cache even alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLong {
    pub sequence: usize,
    pub cells: usize,
}

/// Lays `shapes` out in batches of at most `capacity` KV cells and
/// `max_sequences` sequences; every sequence is in exactly one batch. With
/// `pack_groups`, consecutive groups share a batch while they fit;
/// otherwise each group has batches of its own.
pub(crate) fn plan(
    shapes: &[SequenceShape],
    capacity: usize,
    max_sequences: usize,
    pack_groups: bool,
) -> Result<Vec<Batch>, TooLong> {
    for (i, shape) in shapes.iter().enumerate() {
        let cells = shape.tokens.len() + shape.reserve;
        if cells > capacity {
            return Err(TooLong { sequence: i, cells });
        }
    }
    let mut order: Vec<usize> = (0..shapes.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&shapes[a], &shapes[b]);
        (x.group, x.tokens, a).cmp(&(y.group, y.tokens, b))
    });

    let mut batches = Vec::new();
    let mut members: Vec<usize> = Vec::new();
    let mut used = 0;
    for &i in &order {
        let shared = members
            .last()
            .map_or(0, |&prev| shared_prefix(&shapes[prev], &shapes[i]));
        let cells = shapes[i].tokens.len() - shared + shapes[i].reserve;
        let new_group = members
            .last()
            .is_some_and(|&prev| shapes[prev].group != shapes[i].group);
        if !members.is_empty()
            && ((new_group && !pack_groups)
                || used + cells > capacity
                || members.len() == max_sequences)
        {
            batches.push(build(shapes, std::mem::take(&mut members)));
            used = shapes[i].tokens.len() + shapes[i].reserve;
        } else {
            used += cells;
        }
        members.push(i);
    }
    if !members.is_empty() {
        batches.push(build(shapes, members));
    }
    Ok(batches)
}

/// Lays out one batch of sorted sequences as a prefix tree.
fn build(shapes: &[SequenceShape], sequences: Vec<usize>) -> Batch {
    let n = sequences.len();
    // shared[k]: tokens sequence k has in common with sequence k - 1.
    let shared: Vec<usize> = (0..n)
        .map(|k| match k {
            0 => 0,
            _ => shared_prefix(&shapes[sequences[k - 1]], &shapes[sequences[k]]),
        })
        .collect();

    let mut nodes = Vec::new();
    let mut outputs = Vec::with_capacity(n);
    let mut path: Vec<usize> = Vec::new(); // node index per position of the current sequence
    for (k, &i) in sequences.iter().enumerate() {
        let shape = shapes[i];
        path.truncate(shared[k]);
        for pos in shared[k]..shape.tokens.len() {
            // The sequences after k that still share this position.
            let mut last = k;
            while last + 1 < n && shared[last + 1] > pos {
                last += 1;
            }
            path.push(nodes.len());
            nodes.push(Node {
                token: shape.tokens[pos],
                pos,
                seq_ids: k..last + 1,
                output: false,
            });
        }
        let wanted: Vec<usize> = path[shape.outputs_from.min(path.len())..].to_vec();
        for &node in &wanted {
            nodes[node].output = true;
        }
        outputs.push(wanted);
    }
    Batch {
        sequences,
        nodes,
        outputs,
    }
}

/// How many leading tokens two sequences can share: none across groups.
fn shared_prefix(a: &SequenceShape, b: &SequenceShape) -> usize {
    if a.group != b.group {
        return 0;
    }
    a.tokens
        .iter()
        .zip(b.tokens)
        .take_while(|(x, y)| x == y)
        .count()
}

/// Splits a batch's nodes into runs for one `llama_decode` call each: at most
/// `max_tokens` tokens and at most `max_outputs` logit rows per run.
pub(crate) fn decode_runs(
    nodes: &[Node],
    max_tokens: usize,
    max_outputs: usize,
) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut outputs = 0;
    for (i, node) in nodes.iter().enumerate() {
        let extra = usize::from(node.output);
        if i > start && (i - start == max_tokens || outputs + extra > max_outputs) {
            runs.push(start..i);
            start = i;
            outputs = 0;
        }
        outputs += extra;
    }
    if start < nodes.len() {
        runs.push(start..nodes.len());
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(tokens: &[Token], outputs_from: usize) -> SequenceShape<'_> {
        SequenceShape {
            tokens,
            group: 0,
            outputs_from,
            reserve: 0,
        }
    }

    #[test]
    fn options_of_a_document_share_the_context() {
        // Context [1, 5, 6], options [7] and [8, 9]: fed as ctx + option[..-1].
        let a = [1, 5, 6];
        let b = [1, 5, 6, 8];
        let batches = plan(&[shape(&a, 2), shape(&b, 2)], 100, 8, true).unwrap();
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        assert_eq!(batch.sequences, vec![0, 1]);
        let tokens: Vec<Token> = batch.nodes.iter().map(|n| n.token).collect();
        assert_eq!(tokens, vec![1, 5, 6, 8]);
        assert_eq!(batch.nodes[0].seq_ids, 0..2);
        assert_eq!(batch.nodes[2].seq_ids, 0..2);
        assert_eq!(batch.nodes[3].seq_ids, 1..2);
        // The last context token's logits are computed once, used by both.
        assert_eq!(batch.outputs, vec![vec![2], vec![2, 3]]);
        assert_eq!(batch.nodes.iter().filter(|n| n.output).count(), 2);
    }

    #[test]
    fn nested_prefixes_and_duplicates() {
        let s0 = [1, 2, 3, 4];
        let s1 = [1, 2, 3, 4]; // a duplicate costs no cells
        let s2 = [1, 2, 9];
        let s3 = [7];
        let shapes = [shape(&s2, 0), shape(&s0, 3), shape(&s3, 0), shape(&s1, 1)];
        let batches = plan(&shapes, 100, 8, true).unwrap();
        let batch = &batches[0];
        assert_eq!(batch.sequences, vec![1, 3, 0, 2]);
        let cells: Vec<(Token, usize, Range<usize>)> = batch
            .nodes
            .iter()
            .map(|n| (n.token, n.pos, n.seq_ids.clone()))
            .collect();
        assert_eq!(
            cells,
            vec![
                (1, 0, 0..3),
                (2, 1, 0..3),
                (3, 2, 0..2),
                (4, 3, 0..2),
                (9, 2, 2..3),
                (7, 0, 3..4),
            ]
        );
        assert_eq!(batch.outputs[0], vec![3]);
        assert_eq!(batch.outputs[1], vec![1, 2, 3]);
        assert_eq!(batch.outputs[2], vec![0, 1, 4]);
        assert_eq!(batch.outputs[3], vec![5]);
    }

    #[test]
    fn groups_never_share_cells() {
        let doc0 = [1, 2, 3, 4];
        let doc1 = [1, 2, 3, 5];
        let other = SequenceShape {
            group: 1,
            ..shape(&doc1, 3)
        };
        let batches = plan(&[other, shape(&doc0, 3), shape(&doc0, 2)], 100, 8, true).unwrap();
        let batch = &batches[0];
        // Group 0 first (its two sequences share everything), then group 1
        // with cells of its own even for the common tokens 1, 2, 3.
        assert_eq!(batch.sequences, vec![1, 2, 0]);
        assert_eq!(batch.nodes.len(), 8);
        assert!(batch.nodes[..4].iter().all(|n| n.seq_ids == (0..2)));
        assert!(batch.nodes[4..].iter().all(|n| n.seq_ids == (2..3)));
        // Unpacked, each group has a batch of its own.
        let batches = plan(&[other, shape(&doc0, 3), shape(&doc0, 2)], 100, 8, false).unwrap();
        let members: Vec<Vec<usize>> = batches.iter().map(|b| b.sequences.clone()).collect();
        assert_eq!(members, vec![vec![1, 2], vec![0]]);
    }

    #[test]
    fn packing_respects_capacity_and_sequence_count() {
        let seqs: Vec<Vec<Token>> = (0..6).map(|i| vec![i, i, i]).collect();
        let shapes: Vec<SequenceShape> = seqs.iter().map(|s| shape(s, 2)).collect();
        let by_cells = plan(&shapes, 7, 64, true).unwrap();
        assert_eq!(
            by_cells
                .iter()
                .map(|b| b.sequences.len())
                .collect::<Vec<_>>(),
            [2, 2, 2]
        );
        let by_count = plan(&shapes, 100, 4, true).unwrap();
        assert_eq!(
            by_count
                .iter()
                .map(|b| b.sequences.len())
                .collect::<Vec<_>>(),
            [4, 2]
        );
        let long = [1, 2, 3, 4];
        assert_eq!(
            plan(&[shape(&long, 0)], 3, 4, true),
            Err(TooLong {
                sequence: 0,
                cells: 4
            })
        );
    }

    #[test]
    fn reserve_counts_against_capacity() {
        let a = [1, 2];
        let b = [1, 3];
        let shapes = [
            SequenceShape {
                tokens: &a,
                group: 0,
                outputs_from: 1,
                reserve: 3,
            },
            SequenceShape {
                tokens: &b,
                group: 0,
                outputs_from: 1,
                reserve: 3,
            },
        ];
        // a: 2 + 3 cells, b: 1 new + 3 cells.
        assert_eq!(plan(&shapes, 9, 8, true).unwrap().len(), 1);
        assert_eq!(plan(&shapes, 8, 8, true).unwrap().len(), 2);
    }

    #[test]
    fn decode_runs_bound_tokens_and_outputs() {
        let node = |output| Node {
            token: 0,
            pos: 0,
            seq_ids: 0..1,
            output,
        };
        let nodes: Vec<Node> = [false, true, true, true, false, true, false]
            .into_iter()
            .map(node)
            .collect();
        assert_eq!(decode_runs(&nodes, 3, 10), vec![0..3, 3..6, 6..7]);
        assert_eq!(decode_runs(&nodes, 100, 2), vec![0..3, 3..7]);
        assert_eq!(
            decode_runs(&nodes, 1, 1),
            (0..7).map(|i| i..i + 1).collect::<Vec<_>>()
        );
    }
}
