//! Context management: what the model sees when the conversation or a tool output is larger
//! than its context window. Pure: tokens are counted by functions the caller passes in (the
//! model's own vocabulary, or an estimate), and prompts measured by rendering them.
//!
//! Every model turn has a [`Budget`]: the prompt may take the context minus the room kept for
//! the reply. When a conversation outgrows it, [`fit`] frees room from the oldest end, and only
//! there, so the prefix of what is kept stays byte-identical and the engine's KV cache is reused
//! up to the first change:
//!
//! 1. tool outputs of earlier questions are condensed to a one-line note, oldest first;
//! 2. then earlier exchanges (a question and everything up to the next question) are dropped
//!    whole, oldest first;
//! 3. only if that is not enough, outputs of this question's earlier turns are condensed,
//!    oldest first, the newest one never.
//!
//! The system prompt and the current question are never touched. Steps 1 and 2 go on to
//! [`Budget::low_water`], below the limit, so the next few turns fit without trimming again
//! (each trim makes the engine evaluate everything after the first change). A tool output that
//! alone does not fit is cut in the middle by [`cut_output`], with a note that says how much
//! was cut and how to print the rest.

use crate::prompt::{Message, Role};

/// What a condensed tool output says instead of itself.
pub(crate) const CONDENSED_OUTPUT: &str = "[output dropped to fit the model's context]";

/// The token budget of one model turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    pub n_ctx: usize,
    /// Tokens kept for the reply: the per-turn cap, but at most half the context.
    pub reply: usize,
}

impl Budget {
    pub(crate) fn new(n_ctx: usize, max_tokens: usize) -> Budget {
        Budget {
            n_ctx,
            reply: max_tokens.min(n_ctx / 2),
        }
    }

    /// The most a prompt may take and leave the reply its room.
    pub(crate) fn prompt_limit(&self) -> usize {
        self.n_ctx - self.reply
    }

    /// Where dropping history stops: a quarter below the limit.
    pub(crate) fn low_water(&self) -> usize {
        self.prompt_limit() * 3 / 4
    }
}

/// What [`fit`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Trim {
    /// Messages removed (whole earlier exchanges).
    pub dropped: usize,
    /// Tool outputs replaced by [`CONDENSED_OUTPUT`].
    pub condensed: usize,
    pub tokens_before: usize,
    pub tokens_after: usize,
}

impl Trim {
    pub(crate) fn changed_anything(&self) -> bool {
        self.dropped + self.condensed > 0
    }
}

/// Makes the prompt of `messages` fit `budget`, as the module doc says. `question` is the index
/// of the current question; it is updated when earlier messages are dropped. `measure` gives
/// the exact token count of the prompt for some messages; `count` the tokens of one text.
pub(crate) fn fit(
    messages: &mut Vec<Message>,
    question: &mut usize,
    budget: Budget,
    measure: &mut dyn FnMut(&[Message]) -> usize,
    count: &dyn Fn(&str) -> usize,
) -> Trim {
    let before = measure(messages);
    let mut trim = Trim {
        tokens_before: before,
        tokens_after: before,
        ..Trim::default()
    };
    if before <= budget.prompt_limit() {
        return trim;
    }
    let mut history_step = |messages: &mut Vec<Message>, trim: &mut Trim| {
        let history = first_after_system(messages)..*question;
        if let Some(idx) = condensable(messages, history.clone()) {
            trim.condensed += 1;
            return Some(condense(&mut messages[idx], count));
        }
        if history.is_empty() {
            return None;
        }
        // The oldest exchange: up to the next question.
        let end = (history.start + 1..history.end)
            .find(|&idx| messages[idx].role == Role::User)
            .unwrap_or(history.end);
        let saved = messages[history.start..end]
            .iter()
            .map(|m| count(&m.content) + MESSAGE_OVERHEAD)
            .sum();
        messages.drain(history.start..end);
        *question -= end - history.start;
        trim.dropped += end - history.start;
        Some(saved)
    };
    trim.tokens_after = shrink(
        messages,
        &mut trim,
        before,
        budget.low_water(),
        measure,
        &mut history_step,
    );
    let latest_tool = messages.iter().rposition(|m| m.role == Role::Tool);
    let mut current_step = |messages: &mut Vec<Message>, trim: &mut Trim| {
        let earlier = *question + 1..latest_tool.unwrap_or(*question + 1);
        let idx = condensable(messages, earlier)?;
        trim.condensed += 1;
        Some(condense(&mut messages[idx], count))
    };
    let tokens = trim.tokens_after;
    if tokens > budget.prompt_limit() {
        trim.tokens_after = shrink(
            messages,
            &mut trim,
            tokens,
            budget.prompt_limit(),
            measure,
            &mut current_step,
        );
    }
    trim
}

/// Tokens a message costs beyond its content (role markers, separators), for planning.
const MESSAGE_OVERHEAD: usize = 4;

/// Applies `step` until the estimate says `target` is reached, measures, and repeats while the
/// measure is above it and steps remain. Returns the last measure.
fn shrink(
    messages: &mut Vec<Message>,
    trim: &mut Trim,
    mut tokens: usize,
    target: usize,
    measure: &mut dyn FnMut(&[Message]) -> usize,
    step: &mut dyn FnMut(&mut Vec<Message>, &mut Trim) -> Option<usize>,
) -> usize {
    while tokens > target {
        let mut estimate = tokens;
        let mut stepped = false;
        while estimate > target {
            match step(messages, trim) {
                Some(saved) => {
                    estimate = estimate.saturating_sub(saved);
                    stepped = true;
                }
                None => break,
            }
        }
        if !stepped {
            break;
        }
        tokens = measure(messages);
    }
    tokens
}

fn first_after_system(messages: &[Message]) -> usize {
    usize::from(messages.first().is_some_and(|m| m.role == Role::System))
}

/// The oldest tool output in `range` that condensing would shorten.
fn condensable(messages: &[Message], range: std::ops::Range<usize>) -> Option<usize> {
    range.into_iter().find(|&idx| {
        messages[idx].role == Role::Tool && messages[idx].content.len() > CONDENSED_OUTPUT.len()
    })
}

/// Replaces a tool output by the note; returns the tokens saved.
fn condense(message: &mut Message, count: &dyn Fn(&str) -> usize) -> usize {
    let saved = count(&message.content).saturating_sub(count(CONDENSED_OUTPUT));
    message.content = CONDENSED_OUTPUT.to_owned();
    saved
}

/// A tool output cut to fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cut {
    /// The beginning, the note, the end.
    pub text: String,
    pub kept_chars: usize,
    pub total_chars: usize,
}

/// `output` cut to at most `max_tokens`, or `None` if it fits: about two thirds from the
/// beginning and one third from the end (a file starts with what it is, a command ends with
/// its summary), at line breaks where there are some, with a note between them that says which
/// lines were cut and how to print them.
pub(crate) fn cut_output(
    output: &str,
    max_tokens: usize,
    count: &dyn Fn(&str) -> usize,
) -> Option<Cut> {
    let total_tokens = count(output);
    if total_tokens <= max_tokens {
        return None;
    }
    let total_lines = output.lines().count();
    // The note with the largest numbers it can hold, to budget for it.
    let note_tokens = count(&cut_note(
        total_lines,
        total_lines,
        total_lines,
        output.len(),
    ));
    // The line breaks around the note, and tokens that merge differently where pieces join.
    let room = max_tokens.saturating_sub(note_tokens + 4);
    let head_end = fitting_prefix(output, room * 2 / 3, total_tokens, count);
    let tail_start = fitting_suffix(
        &output[head_end..],
        room - room * 2 / 3,
        total_tokens,
        count,
    ) + head_end;
    let (head, tail) = (&output[..head_end], &output[tail_start..]);
    let first_cut = head.lines().count() + 1;
    let last_cut = total_lines - tail.lines().count();
    let note = cut_note(first_cut, last_cut, total_lines, tail_start - head_end);
    let mut text = String::with_capacity(head.len() + note.len() + tail.len() + 2);
    text.push_str(head);
    if !head.is_empty() && !head.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&note);
    text.push('\n');
    text.push_str(tail);
    Some(Cut {
        kept_chars: head.chars().count() + tail.chars().count(),
        total_chars: output.chars().count(),
        text,
    })
}

/// The note in place of lines `first`..=`last` of `total` (`bytes` bytes).
fn cut_note(first: usize, last: usize, total: usize, bytes: usize) -> String {
    format!(
        "[… lines {first}-{last} of {total} ({bytes} bytes) cut here to fit the model's context. \
         To see them, print less at a time: a range, e.g. \
         print('\\n'.join(read_file(path).splitlines()[{}:{}])), or the lines that matter, e.g. \
         print('\\n'.join(l for l in read_file(path).splitlines() if 'word' in l)) …]",
        first.saturating_sub(1),
        (first + 99).min(last),
    )
}

/// The end of the longest prefix of `text` within `max_tokens`, at a line break if one is in
/// its last fifth, else at a character boundary.
fn fitting_prefix(
    text: &str,
    max_tokens: usize,
    total_tokens: usize,
    count: &dyn Fn(&str) -> usize,
) -> usize {
    let end = fitting_len(text.len(), max_tokens, total_tokens, |len| {
        count(&text[..floor_char(text, len)])
    });
    let end = floor_char(text, end);
    match text[..end].rfind('\n') {
        Some(newline) if newline + 1 >= end - end / 5 => newline + 1,
        _ => end,
    }
}

/// The start of the longest suffix of `text` within `max_tokens`, after a line break if one
/// is in its first fifth.
fn fitting_suffix(
    text: &str,
    max_tokens: usize,
    total_tokens: usize,
    count: &dyn Fn(&str) -> usize,
) -> usize {
    let len = fitting_len(text.len(), max_tokens, total_tokens, |len| {
        count(&text[ceil_char(text, text.len() - len)..])
    });
    let start = ceil_char(text, text.len() - len);
    let window_end = floor_char(text, start + (text.len() - start) / 5);
    match text[start..window_end].find('\n') {
        Some(newline) => start + newline + 1,
        None => start,
    }
}

/// The largest length (in bytes, up to `len`) whose piece `tokens_of` counts within
/// `max_tokens`: a guess from the text's average bytes per token, then a few corrections.
fn fitting_len(
    len: usize,
    max_tokens: usize,
    total_tokens: usize,
    tokens_of: impl Fn(usize) -> usize,
) -> usize {
    if max_tokens == 0 {
        return 0;
    }
    let mut fits = 0;
    let mut guess = (len * max_tokens / total_tokens.max(1)).min(len);
    for _ in 0..8 {
        let tokens = tokens_of(guess);
        if tokens <= max_tokens {
            fits = fits.max(guess);
            if guess == len || tokens * 20 >= max_tokens * 19 {
                break;
            }
            guess = (guess * max_tokens / tokens.max(1)).min(len);
        } else {
            guess = guess * max_tokens / tokens * 19 / 20;
        }
    }
    fits
}

fn floor_char(text: &str, mut idx: usize) -> usize {
    while !text.is_char_boundary(idx) {
        idx -= 1;
    }
    idx
}

fn ceil_char(text: &str, mut idx: usize) -> usize {
    while !text.is_char_boundary(idx) {
        idx += 1;
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One token a word (and one a line break), like a real vocabulary roughly.
    fn words(text: &str) -> usize {
        text.split_whitespace().count() + text.matches('\n').count()
    }

    /// The prompt: each message's words plus [`MESSAGE_OVERHEAD`].
    fn prompt_tokens(messages: &[Message]) -> usize {
        messages
            .iter()
            .map(|m| words(&m.content) + MESSAGE_OVERHEAD)
            .sum()
    }

    fn text(n_words: usize, tag: &str) -> String {
        vec![tag; n_words].join(" ")
    }

    /// system, then `exchanges` earlier exchanges (question, call, an output of `output` words,
    /// an answer of 60), then the current question.
    fn conversation(exchanges: usize, output: usize) -> (Vec<Message>, usize) {
        let mut messages = vec![Message::system(text(20, "sys"))];
        for n in 0..exchanges {
            messages.push(Message::user(text(10, &format!("q{n}"))));
            messages.push(Message::assistant(text(10, "call")));
            messages.push(Message::tool(text(output, &format!("out{n}"))));
            messages.push(Message::assistant(text(60, &format!("a{n}"))));
        }
        messages.push(Message::user(text(10, "now")));
        let question = messages.len() - 1;
        (messages, question)
    }

    fn run_fit(messages: &mut Vec<Message>, question: &mut usize, budget: Budget) -> (Trim, usize) {
        let mut measures = 0;
        let trim = fit(
            messages,
            question,
            budget,
            &mut |m| {
                measures += 1;
                prompt_tokens(m)
            },
            &words,
        );
        (trim, measures)
    }

    #[test]
    fn a_prompt_that_fits_is_left_alone() {
        let (mut messages, mut question) = conversation(2, 200);
        let before = messages.clone();
        let (trim, measures) = run_fit(&mut messages, &mut question, Budget::new(4096, 1024));
        assert_eq!((trim.changed_anything(), measures), (false, 1));
        assert_eq!(messages, before);
    }

    #[test]
    fn old_outputs_are_condensed_first_then_old_exchanges_dropped() {
        // 10 exchanges of ~150 tokens: ~1500 tokens; limit 1000, low water 750. Condensing the
        // outputs frees ~450, not enough.
        let (mut messages, mut question) = conversation(10, 50);
        let budget = Budget {
            n_ctx: 1100,
            reply: 100,
        };
        let (trim, measures) = run_fit(&mut messages, &mut question, budget);
        assert!(trim.tokens_after <= budget.low_water(), "{trim:?}");
        assert!(
            trim.tokens_after > budget.low_water() / 2,
            "not more than needed: {trim:?}"
        );
        assert_eq!(trim.tokens_after, prompt_tokens(&messages));
        assert!(measures <= 3, "{measures} measures");
        // The system prompt and the question are kept, and the question is where it says.
        assert_eq!(messages[0].content, text(20, "sys"));
        assert_eq!(messages[question].content, text(10, "now"));
        assert_eq!(question, messages.len() - 1);
        // Every output was condensed before any exchange was dropped; what is left is whole
        // exchanges, the newest.
        let outputs: Vec<&str> = messages
            .iter()
            .filter(|m| m.role == Role::Tool)
            .map(|m| m.content.as_str())
            .collect();
        assert!(
            outputs.iter().all(|o| *o == CONDENSED_OUTPUT),
            "{outputs:?}"
        );
        assert!(trim.dropped > 0 && trim.dropped % 4 == 0, "{trim:?}");
        let first_question = &messages[1].content;
        let kept_from = 10 - trim.dropped / 4;
        assert_eq!(first_question, &text(10, &format!("q{}", 10 - kept_from)));
    }

    #[test]
    fn this_questions_earlier_outputs_go_last_and_the_newest_never() {
        let (mut messages, mut question) = conversation(1, 200);
        messages.push(Message::assistant(text(10, "call")));
        messages.push(Message::tool(text(300, "first")));
        messages.push(Message::assistant(text(10, "call")));
        messages.push(Message::tool(text(300, "second")));
        let budget = Budget {
            n_ctx: 600,
            reply: 100,
        };
        let (trim, _) = run_fit(&mut messages, &mut question, budget);
        assert!(trim.tokens_after <= budget.prompt_limit(), "{trim:?}");
        let tools: Vec<&str> = messages
            .iter()
            .filter(|m| m.role == Role::Tool)
            .map(|m| m.content.as_str())
            .collect();
        // The earlier exchange is gone, the first output of this question condensed, the
        // newest whole.
        assert_eq!(tools, [CONDENSED_OUTPUT, text(300, "second").as_str()]);
        assert_eq!(messages[question].content, text(10, "now"));
        assert_eq!(question, 1);
    }

    #[test]
    fn what_cannot_be_trimmed_is_left_for_the_caller_to_report() {
        let mut messages = vec![
            Message::system(text(20, "sys")),
            Message::user(text(900, "huge")),
        ];
        let mut question = 1;
        let budget = Budget::new(1000, 100);
        let (trim, _) = run_fit(&mut messages, &mut question, budget);
        assert!(!trim.changed_anything());
        assert!(trim.tokens_after > budget.prompt_limit());
    }

    #[test]
    fn budgets_keep_half_the_context_for_the_prompt_at_least() {
        assert_eq!(Budget::new(8192, 1024).prompt_limit(), 7168);
        assert_eq!(Budget::new(1024, 1024).prompt_limit(), 512);
        assert_eq!(Budget::new(8192, 1024).low_water(), 5376);
    }

    #[test]
    fn a_long_output_keeps_its_beginning_and_end_and_says_what_was_cut() {
        let output: String = (1..=1000).map(|n| format!("line {n}\n")).collect();
        let cut = cut_output(&output, 300, &words).unwrap();
        assert!(words(&cut.text) <= 300, "{} tokens", words(&cut.text));
        assert!(
            words(&cut.text) >= 250,
            "most of the room is used: {}",
            words(&cut.text)
        );
        assert!(cut.text.starts_with("line 1\nline 2\n"));
        assert!(cut.text.ends_with("line 999\nline 1000\n"));
        let note = cut.text.lines().find(|l| l.starts_with("[…")).unwrap();
        let head_lines = cut
            .text
            .lines()
            .take_while(|l| !l.starts_with("[…"))
            .count();
        let tail_lines = cut.text.lines().count() - head_lines - 1;
        let (first, last) = (head_lines + 1, 1000 - tail_lines);
        assert!(
            note.starts_with(&format!("[… lines {first}-{last} of 1000 (")),
            "{note}"
        );
        assert!(
            note.contains(&format!("splitlines()[{}:{}]", first - 1, first + 99)),
            "{note}"
        );
        assert!(
            head_lines > 2 * tail_lines - 5,
            "two thirds from the start: {head_lines}/{tail_lines}"
        );
        assert_eq!(cut.total_chars, output.len());
        assert_eq!(cut.kept_chars, cut.text.len() - note.len() - 1);
        assert_eq!(cut_output("short", 300, &words), None);
    }

    #[test]
    fn a_long_line_is_cut_at_character_boundaries() {
        let output = "é ".repeat(5000);
        let cut = cut_output(&output, 100, &words).unwrap();
        assert!(words(&cut.text) <= 100);
        assert!(cut.text.starts_with("é é"));
    }
}
