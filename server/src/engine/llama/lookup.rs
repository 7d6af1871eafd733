//! Prompt-lookup drafts: guesses of the next tokens, taken from the prompt and the output so far.
//!
//! A Fix or Refactor answer copies most of the selection, and a follow-up quotes the earlier
//! turns. When the last few generated tokens also occur earlier in the prompt or output, the
//! tokens that followed them there are a good guess for what comes next. The engine evaluates
//! the guess in the same batch as the token it has, samples greedily at every position and keeps
//! the longest agreeing prefix (see `LlamaEngine::generate`): each accepted token is one decode
//! call saved, and the output is exactly what plain greedy decoding gives.
//!
//! A guess is not free: on a CPU a batch of two tokens costs about 1.9 single steps, each
//! further token about half of one (docs/benchmarks.md), since attention runs row by row. So
//! [`PromptLookup`] drafts only when it expects to win: it estimates how likely each guessed token is to be accepted from how long the current
//! match is (the tokens before a 20-token match agreeing is strong evidence of copying; a 2-token
//! match is often a coincidence), learning those rates from its own drafts, and picks the draft
//! length that maximises expected tokens per unit of step cost ([`step_cost`]). An answer with
//! no overlap then drafts rarely and loses little. Pure logic, no IO.

use llama_cpp_2::token::LlamaToken;

/// The longest and shortest n-gram looked up; a match of one token is too often a coincidence.
const MAX_NGRAM: usize = 4;
const MIN_NGRAM: usize = 2;
/// Longest draft: past it, a further token adds more cost than it is likely to save.
const MAX_DRAFT: usize = 32;
/// How far back a match's agreement with the current output is measured.
const MAX_MATCH_LEN: usize = 32;
/// Match lengths (at least) that start a bucket of acceptance statistics, and each bucket's
/// prior acceptance rate per token (worth [`PRIOR_WEIGHT`] observations).
const BUCKETS: [(usize, f64); 4] = [(2, 0.5), (4, 0.7), (8, 0.85), (16, 0.93)];
const PRIOR_WEIGHT: f64 = 4.0;
/// Observations kept per bucket; older ones fade so the rates follow the current stretch of the
/// answer (a copied block, then prose).
const MEMORY: f64 = 48.0;
/// A draft must promise this much more output per unit of cost than a plain step.
const MIN_GAIN: f64 = 1.05;
/// After this many matches of a bucket went undrafted as not worth it, one is drafted anyway:
/// a rate learnt on one stretch of the answer must not stop the lookup for the rest of it. Each
/// such probe that is rejected doubles the wait, up to [`MAX_EXPLORE_EVERY`], so prose full of
/// two-token coincidences ("of the") pays for a probe rarely; one that is accepted resets it.
const EXPLORE_EVERY: usize = 16;
const MAX_EXPLORE_EVERY: usize = 256;

/// The cost of a decode call of `n` tokens relative to one of a single token, as measured on
/// the CPU of docs/benchmarks.md (SmolLM2, 2 threads, 1,500 cached tokens, `q8_0` keys and f16
/// values): two tokens cost 1.9 steps, each further token about 0.47 of one, since llama.cpp's
/// CPU kernels for quantized weights do the dequantizing work again for every row, and its
/// flash attention goes over the whole cache for every row. A fixed curve rather than the step
/// times of the moment keeps the drafts, and so the engine's work, a function of the tokens
/// alone: the same prompt gives the same drafts on a busy machine and in tests.
fn step_cost(n: usize) -> f64 {
    if n <= 1 {
        1.0
    } else {
        1.42 + 0.466 * (n - 1) as f64
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PromptLookup {
    /// Per bucket: draft tokens accepted and draft positions examined (accepted ones plus the
    /// first rejected one).
    accepted: [f64; BUCKETS.len()],
    examined: [f64; BUCKETS.len()],
    /// Per bucket: matches not drafted since the last draft, and how many make a probe due.
    skipped: [usize; BUCKETS.len()],
    explore_every: [usize; BUCKETS.len()],
    /// The draft awaiting feedback.
    pending: Option<Pending>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    bucket: usize,
    /// Drafted only to re-measure the bucket's rate, not because it was expected to pay.
    probe: bool,
}

/// How a generation's drafts fared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LookupStats {
    /// Decode calls that verified a draft.
    pub drafts: usize,
    /// Draft tokens evaluated, and those that matched the model's own choice.
    pub drafted_tokens: usize,
    pub accepted_tokens: usize,
}

impl Default for PromptLookup {
    fn default() -> PromptLookup {
        PromptLookup {
            accepted: BUCKETS.map(|(_, prior)| prior * PRIOR_WEIGHT),
            examined: [PRIOR_WEIGHT; BUCKETS.len()],
            skipped: [0; BUCKETS.len()],
            explore_every: [EXPLORE_EVERY; BUCKETS.len()],
            pending: None,
        }
    }
}

impl PromptLookup {
    /// A draft of at most `limit` tokens to evaluate after `history`, or nothing.
    pub(crate) fn draft<'h>(
        &mut self,
        history: &'h [LlamaToken],
        limit: usize,
    ) -> &'h [LlamaToken] {
        self.pending = None;
        let Some((continuation, match_len)) = find_match(history) else {
            return &[];
        };
        let bucket = BUCKETS
            .iter()
            .rposition(|&(min_len, _)| match_len >= min_len)
            .unwrap_or(0);
        let p = self.accepted[bucket] / self.examined[bucket];
        let max_len = continuation.len().min(limit).min(MAX_DRAFT);
        // Expected tokens out of a step with a draft of `k`: the sampled one, plus each draft
        // token, accepted with probability p if all before it were.
        let mut best = (0, 1.0);
        let mut expected = 1.0;
        let mut p_all = 1.0;
        for k in 1..=max_len {
            p_all *= p;
            expected += p_all;
            let gain = expected / step_cost(1 + k);
            if gain > best.1 {
                best = (k, gain);
            }
        }
        let probe = best.1 < MIN_GAIN;
        if probe && self.skipped[bucket] < self.explore_every[bucket] {
            self.skipped[bucket] += 1;
            return &[];
        }
        self.skipped[bucket] = 0;
        self.pending = Some(Pending { bucket, probe });
        // A draft that is not worth its cost is a probe: as short as still tells something.
        let len = if best.0 == 0 { max_len.min(2) } else { best.0 };
        &continuation[..len]
    }

    /// What became of the last draft: `accepted` of its `drafted` tokens matched.
    pub(crate) fn feedback(&mut self, drafted: usize, accepted: usize) {
        let Some(Pending { bucket, probe }) = self.pending.take() else {
            return;
        };
        if probe {
            self.explore_every[bucket] = if accepted == drafted {
                EXPLORE_EVERY
            } else {
                (self.explore_every[bucket] * 2).min(MAX_EXPLORE_EVERY)
            };
        }
        let examined = accepted + usize::from(accepted < drafted);
        self.accepted[bucket] += accepted as f64;
        self.examined[bucket] += examined as f64;
        if self.examined[bucket] > MEMORY {
            self.accepted[bucket] /= 2.0;
            self.examined[bucket] /= 2.0;
        }
    }
}

/// What followed the earlier occurrence of the longest suffix of `history` (2 to 4 tokens)
/// that agrees with the history furthest back, and how far (the match length, at most
/// [`MAX_MATCH_LEN`]); of equals, the latest. The furthest agreement, not the latest occurrence:
/// code repeats short runs of tokens (indentation, `self.`), and the latest of them is more often
/// a coincidence than the copied stretch an answer is following.
fn find_match(history: &[LlamaToken]) -> Option<(&[LlamaToken], usize)> {
    let len = history.len();
    for n in (MIN_NGRAM..=MAX_NGRAM).rev() {
        if len <= n {
            continue;
        }
        let suffix = &history[len - n..];
        let mut best: Option<(usize, usize)> = None;
        // Occurrences that end before the history does, latest first.
        for start in (0..len - n).rev() {
            if &history[start..start + n] != suffix {
                continue;
            }
            let end = start + n;
            let match_len = history[..end]
                .iter()
                .rev()
                .zip(history.iter().rev())
                .take(MAX_MATCH_LEN)
                .take_while(|(a, b)| a == b)
                .count();
            if best.is_none_or(|(_, longest)| match_len > longest) {
                best = Some((end, match_len));
            }
            if match_len == MAX_MATCH_LEN {
                break;
            }
        }
        if let Some((end, match_len)) = best {
            return Some((&history[end..], match_len));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(ids: &[i32]) -> Vec<LlamaToken> {
        ids.iter().map(|&id| LlamaToken(id)).collect()
    }

    #[test]
    fn finds_what_followed_a_match_of_the_longest_suffix() {
        // "1 2 3 4 5 6 … 9 2 3": the suffix "2 3" occurred at 1; "4 5 6 …" followed.
        let history = tokens(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 2, 3]);
        let (continuation, match_len) = find_match(&history).unwrap();
        assert_eq!(&continuation[..3], tokens(&[4, 5, 6]).as_slice());
        assert_eq!(match_len, 2);
        // A longer suffix wins over a later, shorter one: "7 2 3" matches at 0, "2 3" at 6.
        let history = tokens(&[7, 2, 3, 40, 41, 9, 2, 3, 50, 7, 2, 3]);
        let (continuation, match_len) = find_match(&history).unwrap();
        assert_eq!(&continuation[..2], tokens(&[40, 41]).as_slice());
        assert_eq!(match_len, 3);
    }

    #[test]
    fn the_occurrence_that_agrees_furthest_back_wins_over_the_latest() {
        // "1 2 3 4" follows "10 11 12" first and "20 21" later; the history ends as the first.
        let history = tokens(&[
            10, 11, 12, 1, 2, 3, 4, 50, 20, 21, 1, 2, 3, 4, 60, 10, 11, 12, 1, 2, 3, 4,
        ]);
        let (continuation, match_len) = find_match(&history).unwrap();
        assert_eq!(continuation[0], LlamaToken(50));
        assert_eq!(match_len, 7);
        // Of equal agreement, the latest.
        let history = tokens(&[9, 1, 2, 3, 4, 50, 8, 1, 2, 3, 4, 60, 7, 1, 2, 3, 4]);
        assert_eq!(find_match(&history).unwrap().0[0], LlamaToken(60));
    }

    #[test]
    fn the_match_length_counts_agreement_before_the_ngram() {
        // 10 11 12 13 | 20 | 10 11 12 13: the 4-gram matches, and nothing before it agrees.
        let history = tokens(&[10, 11, 12, 13, 20, 10, 11, 12, 13]);
        assert_eq!(find_match(&history).unwrap().1, 4);
        // A copied stretch: everything before the n-gram agrees too.
        let copied: Vec<i32> = (0..40).chain(100..101).chain(0..30).collect();
        assert_eq!(find_match(&tokens(&copied)).unwrap().1, 30);
    }

    #[test]
    fn no_match_no_draft() {
        assert!(find_match(&tokens(&[1, 2, 3, 4, 5])).is_none());
        // Only the last token repeats: a one-token match is not used.
        assert!(find_match(&tokens(&[5, 1, 2, 3, 5])).is_none());
        assert!(find_match(&[]).is_none());
        let mut lookup = PromptLookup::default();
        assert!(lookup.draft(&tokens(&[1, 2, 1, 2]), 0).is_empty());
    }

    #[test]
    fn drafts_only_when_the_cost_is_worth_it() {
        let copied: Vec<i32> = (0..40).chain(100..101).chain(0..30).collect();
        let copied = tokens(&copied);
        let coincidence = tokens(&[7, 8, 1, 2, 3, 4, 5, 6, 9, 7, 8]);
        let mut lookup = PromptLookup::default();
        // A long copy is worth a draft, a coincidence is not.
        assert!(lookup.draft(&copied, 64).len() >= 3);
        assert!(lookup.draft(&coincidence, 64).is_empty());
        // Never more than asked for.
        assert_eq!(lookup.draft(&copied, 2).len(), 2);
    }

    #[test]
    fn rejections_teach_it_to_stop_and_acceptances_to_go_on() {
        let copied: Vec<i32> = (0..40).chain(100..101).chain(0..30).collect();
        let copied = tokens(&copied);
        let mut lookup = PromptLookup::default();
        for _ in 0..10 {
            let drafted = lookup.draft(&copied, 64).len();
            if drafted == 0 {
                break;
            }
            lookup.feedback(drafted, 0);
        }
        assert!(lookup.draft(&copied, 64).is_empty());
        // Feedback without a draft changes nothing.
        lookup.feedback(5, 5);
        // Until an occasional short probe asks again.
        let skipped = (0..100)
            .take_while(|_| lookup.draft(&copied, 64).is_empty())
            .count();
        assert!(skipped < EXPLORE_EVERY);
        assert_eq!(
            lookup.pending,
            Some(Pending {
                bucket: BUCKETS.len() - 1,
                probe: true
            })
        );
        // A rejected probe doubles the wait for the next one.
        lookup.feedback(2, 0);
        let skipped = (0..100)
            .take_while(|_| lookup.draft(&copied, 64).is_empty())
            .count();
        assert_eq!(skipped, 2 * EXPLORE_EVERY);

        let mut lookup = PromptLookup::default();
        for _ in 0..10 {
            let drafted = lookup.draft(&copied, 64).len();
            lookup.feedback(drafted, drafted);
        }
        assert_eq!(lookup.draft(&copied, 64).len(), MAX_DRAFT);
    }
}
