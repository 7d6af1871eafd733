//! `punie bench --report FILE`: the figures as a Markdown section, spliced into FILE between two
//! marker lines so the hand-written analysis around it stays. Pure: text in, text out.

use serde_json::Value;

pub(super) const BEGIN: &str =
    "<!-- punie bench --report: generated section, do not edit by hand -->";
pub(super) const END: &str = "<!-- punie bench --report: end -->";

/// What the report says about how its figures were taken.
pub(super) struct ReportContext<'a> {
    /// The command line that produced the figures.
    pub command: &'a str,
    /// The day they were taken, `YYYY-MM-DD` (UTC).
    pub date: &'a str,
    /// The commit, when known.
    pub commit: Option<&'a str>,
    /// Machine-specific directories and how the report names them (`/root/` → `~/`), longest
    /// first: the report says where things are without saying whose machine it was.
    pub places: &'a [(String, String)],
}

/// `text` with each place's directory written its portable way.
fn portable_paths(text: &str, places: &[(String, String)]) -> String {
    places
        .iter()
        .filter(|(dir, _)| !dir.is_empty() && dir != "/")
        .fold(text.to_owned(), |text, (dir, shown)| {
            text.replace(dir.as_str(), shown)
        })
}

/// `document` with the block between the markers replaced by `section` (markers kept), or with
/// the markers and `section` appended when the document has none yet.
pub(super) fn splice(document: &str, section: &str) -> String {
    let block = format!("{BEGIN}\n{}\n{END}", section.trim_end());
    match (document.find(BEGIN), document.find(END)) {
        (Some(begin), Some(end)) if begin < end => {
            format!(
                "{}{block}{}",
                &document[..begin],
                &document[end + END.len()..]
            )
        }
        _ => {
            let separator = if document.is_empty() || document.ends_with("\n\n") {
                ""
            } else if document.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{document}{separator}{block}\n")
        }
    }
}

/// The Markdown section for a `punie bench` report (its JSON form), with the llama.cpp
/// reference's figures from `bench/compare_llamacpp.sh` when given.
pub(super) fn render(report: &Value, reference: Option<&Value>, context: &ReportContext) -> String {
    portable_paths(&render_figures(report, reference, context), context.places)
}

fn render_figures(report: &Value, reference: Option<&Value>, context: &ReportContext) -> String {
    let machine = &report["machine"];
    let mut out = String::from("## Latest `punie bench` run\n\n");
    out.push_str(&format!(
        "Command: `{}`, {}{}. Machine: {} ({} threads, {}), llama.cpp build {}.\n",
        context.command,
        context.date,
        context
            .commit
            .map(|commit| format!(", commit {commit}"))
            .unwrap_or_default(),
        text(&machine["cpu"]),
        machine["threads"],
        text(&machine["os"]),
        text(&machine["build"]),
    ));
    if let Some(engine) = report.get("engine") {
        render_engine(&mut out, engine, reference);
    }
    if let Some(sandbox) = report.get("sandbox") {
        out.push_str("\n### Sandbox\n\n| figure | value |\n|---|---|\n");
        row(
            &mut out,
            "trivial snippet on a warm worker, p50 / p99",
            format!(
                "{} / {} ms",
                sandbox["overhead_p50_ms"], sandbox["overhead_p99_ms"]
            ),
        );
        row(
            &mut out,
            "three `read_file` calls, p50 / p99",
            format!(
                "{} / {} ms",
                sandbox["tool_snippet_p50_ms"], sandbox["tool_snippet_p99_ms"]
            ),
        );
        if sandbox.get("command_jailed_p50_ms").is_some() {
            row(
                &mut out,
                "`true` through the command jail, p50 / p99 (spawned plainly, p50)",
                format!(
                    "{} / {} ms ({} ms)",
                    sandbox["command_jailed_p50_ms"],
                    sandbox["command_jailed_p99_ms"],
                    sandbox["command_unconfined_p50_ms"]
                ),
            );
        }
        if sandbox.get("cancel_compute_p50_ms").is_some() {
            row(
                &mut out,
                "cancel → snippet returned: `while True: pass`, p50 / max",
                format!(
                    "{} / {} ms",
                    sandbox["cancel_compute_p50_ms"], sandbox["cancel_compute_max_ms"]
                ),
            );
            row(
                &mut out,
                "cancel → snippet returned: `run_command('sleep', args=['60'])`, p50 / max",
                format!(
                    "{} / {} ms",
                    sandbox["cancel_command_p50_ms"], sandbox["cancel_command_max_ms"]
                ),
            );
        }
    }
    if let Some(lsp) = report.get("lsp") {
        out.push_str("\n### Language server\n\n| figure | value |\n|---|---|\n");
        row(
            &mut out,
            "`codeAction` while a run streams, p50 / p99",
            format!(
                "{} / {} ms",
                lsp["code_action_p50_ms"], lsp["code_action_p99_ms"]
            ),
        );
        row(
            &mut out,
            "`punie.cancel` to progress `end`",
            format!("{} ms", lsp["cancel_to_end_ms"]),
        );
        row(
            &mut out,
            "RSS of the server (scripted engine)",
            format!("{} MB", lsp["rss_mb"]),
        );
    }
    if let Some(rewrite) = report.get("rewrite") {
        render_rewrite(&mut out, rewrite);
    }
    if let Some(followup) = report.get("followup") {
        render_followup(&mut out, followup);
    }
    if let Some(strategies) = report.get("strategies") {
        render_strategies(&mut out, strategies);
    }
    out
}

fn render_engine(out: &mut String, engine: &Value, reference: Option<&Value>) {
    out.push_str(&format!(
        "\n### Engine\n\nModel `{}`; weights repacked: {}; flash attention: {}; KV cache: {}; decode threads: {}. Workload: INTERFACES.md §4, medians of {} repetitions.\n\n",
        text(&engine["model"]),
        engine["repack_weights"],
        text(&engine["flash_attention"]),
        text(&engine["cache_type"]),
        text(&engine["decode_threads"]),
        engine["workload"]["repetitions"],
    ));
    out.push_str("| figure | value |\n|---|---|\n");
    row(out, "load", format!("{} ms", engine["load_ms"]));
    row(out, "prefill", format!("{} tok/s", engine["prefill_tok_s"]));
    row(out, "decode", format!("{} tok/s", engine["decode_tok_s"]));
    row(
        out,
        "time to first token, cold",
        format!("{} ms", engine["ttft_cold_ms"]),
    );
    row(
        out,
        &format!(
            "time to first token, warm ({} new tokens evaluated)",
            engine["warm_tokens_evaluated"]
        ),
        format!(
            "{} ms ({})",
            engine["ttft_warm_ms"],
            percent(&engine["ttft_warm_ms"], &engine["ttft_cold_ms"])
        ),
    );
    if let Some(contention) = engine.get("contention") {
        render_contention(out, contention);
    }
    if let Some(reference) = reference {
        render_anchors(out, reference);
    }
}

/// Punie against llama.cpp of the same version (the anchor the goal is judged on) and the older
/// llama-cpp-python build (history), per condition, as `bench/compare_llamacpp.sh` summarizes
/// them.
fn render_anchors(out: &mut String, reference: &Value) {
    out.push_str(&format!(
        "\nAgainst llama.cpp (`bench/compare_llamacpp.sh`, {} interleaved rounds, medians): the same-version anchor is {} through its C API with Punie's settings (flash attention {}, KV cache {}) and {} threads; Punie threads: {}.\n",
        reference["rounds"],
        text(&reference["same_version_engine"]),
        text(&reference["settings"]["flash_attention"]),
        text(&reference["settings"]["cache_type"]),
        reference["anchor_threads"],
        text(&reference["threads"]),
    ));
    for (condition, title) in [
        ("quiet", "quiet machine"),
        ("busy", "one competing busy process"),
    ] {
        let Some(figures) = reference.get(condition) else {
            continue;
        };
        out.push_str(&format!(
            "\n{title}:\n\n| | prefill tok/s | decode tok/s | ratio prefill | ratio decode |\n|---|---|---|---|---|\n"
        ));
        for (punie, anchor, label, anchor_label) in [
            (
                "punie",
                "same_version",
                "Punie, defaults",
                "llama.cpp same version, weights repacked",
            ),
            (
                "punie_no_repack",
                "same_version_no_repack",
                "Punie, `PUNIE_REPACK_WEIGHTS=0`",
                "llama.cpp same version, not repacked",
            ),
        ] {
            let (punie, anchor) = (&figures[punie], &figures[anchor]);
            out.push_str(&format!(
                "| {label} | {} | {} | {} | {} |\n| {anchor_label} | {} | {} | | |\n",
                punie["prefill"],
                punie["decode"],
                ratio(&punie["prefill"], &anchor["prefill"]),
                ratio(&punie["decode"], &anchor["decode"]),
                anchor["prefill"],
                anchor["decode"],
            ));
        }
        if let Some(history) = figures.get("reference") {
            out.push_str(&format!(
                "| {} (history: older llama.cpp, its default attention, not repacked); Punie defaults / it | {} | {} | {} | {} |\n",
                text(&reference["reference_engine"]),
                history["prefill"],
                history["decode"],
                ratio(&figures["punie"]["prefill"], &history["prefill"]),
                ratio(&figures["punie"]["decode"], &history["decode"]),
            ));
        }
    }
}

/// Decode with the default thread choice against every fixed count, quiet and busy
/// (`punie bench --contention`).
fn render_contention(out: &mut String, contention: &Value) {
    let fixed: Vec<String> = contention["quiet"]
        .as_object()
        .into_iter()
        .flat_map(|figures| figures.keys())
        .filter_map(|key| key.strip_suffix("_decode_tok_s")?.strip_prefix("threads_"))
        .map(str::to_owned)
        .collect();
    out.push_str(&format!(
        "\nDecode under contention (`--contention`): decode tok/s with the default thread choice and with each fixed count, on a quiet machine and with {} competing busy process started by the benchmark, medians of {} interleaved rounds.\n\n| condition | default (threads it settled on) |",
        contention["busy_processes"], contention["rounds"],
    ));
    for n in &fixed {
        out.push_str(&format!(" {n} thread{} |", if n == "1" { "" } else { "s" }));
    }
    out.push_str(" default / best fixed |\n|---|---|");
    out.push_str(&"---|".repeat(fixed.len() + 1));
    out.push('\n');
    for condition in ["quiet", "busy"] {
        let figures = &contention[condition];
        let settled: Vec<String> = figures["default_settled_threads"]
            .as_array()
            .into_iter()
            .flatten()
            .map(Value::to_string)
            .collect();
        out.push_str(&format!(
            "| {condition} | {} ({}) |",
            figures["default_decode_tok_s"],
            settled.join(", ")
        ));
        for n in &fixed {
            out.push_str(&format!(
                " {} |",
                figures[format!("threads_{n}_decode_tok_s")]
            ));
        }
        out.push_str(&format!(" {} |\n", figures["default_vs_best_fixed"]));
    }
}

/// Prompt-lookup decoding against plain greedy decoding (`--only rewrite`).
fn render_rewrite(out: &mut String, rewrite: &Value) {
    let control = &rewrite["no_overlap"];
    out.push_str(&format!(
        "\n### Prompt-lookup decoding\n\nModel `{}`, KV cache {}; {} Fix/Refactor tasks over `bench/rewrite/` and {} questions with no overlap, each greedy with and without prompt lookup, interleaved, medians of {} repetitions; lookup active: {}; output identical both ways: **{}**.\n\n",
        text(&rewrite["model"]),
        text(&rewrite["cache_type"]),
        rewrite["tasks"],
        control["tasks"],
        rewrite["repetitions"],
        rewrite["lookup_active"],
        rewrite["identical"],
    ));
    out.push_str("| workload | plain decode tok/s | lookup decode tok/s | speedup | acceptance (accepted / drafted) | drafts | tokens generated |\n|---|---|---|---|---|---|---|\n");
    for (label, figures) in [("rewrite", rewrite), ("no overlap", control)] {
        out.push_str(&format!(
            "| {label} | {} | {} | **{}** | {} ({} drafted) | {} | {} |\n",
            figures["plain_decode_tok_s"],
            figures["lookup_decode_tok_s"],
            figures["speedup"],
            figures["acceptance"],
            figures["drafted_tokens"],
            figures["drafts"],
            figures["generated_tokens"],
        ));
    }
}

/// Time to first token of a follow-up over LSP (`--only followup`).
fn render_followup(out: &mut String, followup: &Value) {
    out.push_str(&format!(
        "\n### Follow-up time to first token (language server)\n\n`punie lsp` driven over stdio, {} fresh servers: after a warm-up question, \"Ask Punie…\" on a whole file of `bench/rewrite/`, then a follow-up in the same conversation; client: from `punie.ask` to the first `$/progress` with text (50 ms ticks); engine: the transcript's time to first token.\n\n| | first question | follow-up | ratio |\n|---|---|---|---|\n",
        followup["rounds"],
    ));
    row(
        out,
        "prompt tokens evaluated (of the prompt)",
        format!(
            "{} of {} | {} of {} | |",
            followup["first_tokens_evaluated"],
            followup["first_prompt_tokens"],
            followup["followup_tokens_evaluated"],
            followup["followup_prompt_tokens"],
        ),
    );
    row(
        out,
        "time to first token, engine",
        format!(
            "{} ms | {} ms | **{}**",
            followup["engine_first_ttft_ms"],
            followup["engine_followup_ttft_ms"],
            followup["engine_ratio"],
        ),
    );
    row(
        out,
        "time to first token, client",
        format!(
            "{} ms | {} ms | {}",
            followup["first_ttft_ms"], followup["followup_ttft_ms"], followup["ratio"],
        ),
    );
}

fn render_strategies(out: &mut String, strategies: &Value) {
    let totals = &strategies["totals"];
    out.push_str(&format!(
        "\n### Code Mode vs tool-per-turn\n\nTask 9 multi-step queries, scripted transcripts of both strategies; tokens by `{}`; modelled seconds at the rates of {}: prefill {} tok/s, decode {} tok/s; wall time replayed on `{}`, medians of {} interleaved repetitions.\n\n",
        text(&strategies["model_tokenizer"]),
        text(&strategies["rates"]["what"]),
        strategies["rates"]["prefill_tok_s"],
        strategies["rates"]["decode_tok_s"],
        text(&strategies["replay_engine"]),
        strategies["repetitions"],
    ));
    out.push_str("| query | turns CM / TPT | modelled s with reuse | modelled s without | wall ms (replay) | ratio wall |\n|---|---|---|---|---|---|\n");
    for query in strategies["queries"].as_array().into_iter().flatten() {
        let (cm, tpt) = (&query["code_mode"], &query["tool_per_turn"]);
        out.push_str(&format!(
            "| {} | {} / {} | {} / {} | {} / {} | {} / {} | {} |\n",
            text(&query["id"]),
            cm["turns"],
            tpt["turns"],
            cm["model_s_reuse"],
            tpt["model_s_reuse"],
            cm["model_s_no_reuse"],
            tpt["model_s_no_reuse"],
            cm["wall_ms_median"],
            tpt["wall_ms_median"],
            query["ratio_wall"],
        ));
    }
    out.push_str(&format!(
        "\n**Ratio Code Mode / tool-per-turn: {} modelled with KV reuse, {} without, {} measured wall time** (target ≤ 0.5).\n",
        totals["ratio_model_reuse"], totals["ratio_model_no_reuse"], totals["ratio_wall"],
    ));
}

fn row(out: &mut String, label: &str, value: String) {
    out.push_str(&format!("| {label} | {value} |\n"));
}

/// A JSON string without its quotes; other values as JSON.
fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

fn ratio(value: &Value, base: &Value) -> String {
    match (value.as_f64(), base.as_f64()) {
        (Some(value), Some(base)) if base > 0.0 => format!("{:.2}", value / base),
        _ => "n/a".to_owned(),
    }
}

fn percent(value: &Value, base: &Value) -> String {
    match (value.as_f64(), base.as_f64()) {
        (Some(value), Some(base)) if base > 0.0 => format!("{:.0}% of cold", 100.0 * value / base),
        _ => "n/a".to_owned(),
    }
}

/// `YYYY-MM-DD` of a Unix time (UTC), by the days-to-civil algorithm (no calendar crate needed
/// for one date).
pub(super) fn utc_date(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn splice_appends_once_then_replaces_between_the_markers() {
        let document = "# Benchmarks\n\nHand-written.\n";
        let first = splice(document, "## Latest\n\nold figures\n");
        assert_eq!(
            first,
            format!("# Benchmarks\n\nHand-written.\n\n{BEGIN}\n## Latest\n\nold figures\n{END}\n")
        );
        let with_more_text = format!("{first}\n## Notes written later\n");
        let second = splice(&with_more_text, "## Latest\n\nnew figures");
        assert!(second.contains("new figures") && !second.contains("old figures"));
        assert!(second.starts_with("# Benchmarks\n\nHand-written.\n"));
        assert!(second.ends_with("\n## Notes written later\n"));
        assert_eq!(second.matches(BEGIN).count(), 1);
    }

    #[test]
    fn dates_are_civil_utc_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_795_651_200), "2026-11-26");
    }

    #[test]
    fn render_names_the_command_and_the_figures() {
        let report = json!({
            "machine": {"cpu": "Test CPU", "threads": 2, "os": "linux x86_64", "build": "native (AVX2+FMA)"},
            "engine": {"model": "m.gguf", "repack_weights": true, "flash_attention": "off", "load_ms": 120.0,
                       "prefill_tok_s": 500.0, "decode_tok_s": 100.0, "ttft_cold_ms": 1000.0, "ttft_warm_ms": 150.0,
                       "warm_tokens_evaluated": 50, "workload": {"repetitions": 5}},
            "sandbox": {"overhead_p50_ms": 0.07, "overhead_p99_ms": 0.24, "tool_snippet_p50_ms": 0.4, "tool_snippet_p99_ms": 0.7},
        });
        let reference = json!({"rounds": 3, "threads": "default", "anchor_threads": 2,
                               "settings": {"flash_attention": "on", "cache_type": "q8_0"},
                               "same_version_engine": "llama.cpp of llama-cpp-sys-2 0.1.160",
                               "reference_engine": "llama-cpp-python 0.3.36",
                               "quiet": {"punie": {"prefill": 500.0, "decode": 100.0}, "punie_no_repack": {"prefill": 200.0, "decode": 75.0},
                                         "same_version": {"prefill": 500.0, "decode": 50.0}, "same_version_no_repack": {"prefill": 250.0, "decode": 75.0},
                                         "reference": {"prefill": 250.0, "decode": 40.0}}});
        let context = ReportContext {
            command: "punie bench",
            date: "2026-11-26",
            commit: Some("abc1234"),
            places: &[],
        };
        let markdown = render(&report, Some(&reference), &context);
        assert!(markdown.contains("Command: `punie bench`, 2026-11-26, commit abc1234."));
        assert!(markdown.contains(
            "| time to first token, warm (50 new tokens evaluated) | 150.0 ms (15% of cold) |"
        ));
        assert!(markdown.contains("| Punie, defaults | 500.0 | 100.0 | 1.00 | 2.00 |"));
        assert!(
            markdown.contains("| Punie, `PUNIE_REPACK_WEIGHTS=0` | 200.0 | 75.0 | 0.80 | 1.00 |")
        );
        assert!(markdown.contains("Punie defaults / it | 250.0 | 40.0 | 2.00 | 2.50 |"));
        assert!(!markdown.contains("one competing busy process:"));
        assert!(
            markdown.contains("| trivial snippet on a warm worker, p50 / p99 | 0.07 / 0.24 ms |")
        );
        assert!(!markdown.contains("### Language server"));
    }

    #[test]
    fn render_has_contention_rewrite_and_followup_tables() {
        let condition = |default: f64, settled: u64| {
            json!({"default_decode_tok_s": default, "threads_1_decode_tok_s": 80.0, "threads_2_decode_tok_s": 120.0,
                   "default_vs_best_fixed": default / 120.0, "default_settled_threads": [settled, settled]})
        };
        let report = json!({
            "machine": {"cpu": "Test CPU", "threads": 2, "os": "linux x86_64", "build": "native (AVX2+FMA)"},
            "engine": {"model": "m.gguf", "workload": {"repetitions": 5},
                       "contention": {"quiet": condition(120.0, 2), "busy": condition(80.0, 1), "busy_processes": 1, "rounds": 3}},
            "rewrite": {"model": "m.gguf", "cache_type": "q8_0", "tasks": 4, "repetitions": 5, "lookup_active": true, "identical": true,
                        "plain_decode_tok_s": 100.0, "lookup_decode_tok_s": 200.0, "speedup": 2.0, "acceptance": 0.8,
                        "drafts": 10, "drafted_tokens": 50, "generated_tokens": 400,
                        "no_overlap": {"tasks": 2, "plain_decode_tok_s": 100.0, "lookup_decode_tok_s": 99.0, "speedup": 0.99,
                                       "acceptance": 0.0, "drafts": 0, "drafted_tokens": 0, "generated_tokens": 300}},
            "followup": {"rounds": 3, "first_ttft_ms": 900.0, "followup_ttft_ms": 120.0, "ratio": 0.133,
                         "engine_first_ttft_ms": 850.0, "engine_followup_ttft_ms": 70.0, "engine_ratio": 0.082,
                         "first_prompt_tokens": 700, "first_tokens_evaluated": 500,
                         "followup_prompt_tokens": 900, "followup_tokens_evaluated": 30},
        });
        let context = ReportContext {
            command: "punie bench",
            date: "2026-12-06",
            commit: None,
            places: &[],
        };
        let markdown = render(&report, None, &context);
        assert!(markdown.contains(
            "| condition | default (threads it settled on) | 1 thread | 2 threads | default / best fixed |\n|---|---|---|---|---|\n"
        ), "{markdown}");
        assert!(
            markdown.contains("| busy | 80.0 (1, 1) | 80.0 | 120.0 | "),
            "{markdown}"
        );
        assert!(
            markdown
                .contains("| rewrite | 100.0 | 200.0 | **2.0** | 0.8 (50 drafted) | 10 | 400 |")
        );
        assert!(
            markdown.contains("| time to first token, engine | 850.0 ms | 70.0 ms | **0.082** |")
        );
        assert!(
            markdown
                .contains("| prompt tokens evaluated (of the prompt) | 500 of 700 | 30 of 900 | |")
        );
    }

    #[test]
    fn machine_specific_paths_are_written_portably() {
        let places = [
            ("/root/src/punie/".to_owned(), String::new()),
            ("/root/".to_owned(), "~/".to_owned()),
            ("/tmp/".to_owned(), "$TMPDIR/".to_owned()),
        ];
        let text = "`punie bench --reference /tmp/t.json`; Model `/root/.local/m.gguf`; `/root/src/punie/models/micro/x.gguf`";
        assert_eq!(
            portable_paths(text, &places),
            "`punie bench --reference $TMPDIR/t.json`; Model `~/.local/m.gguf`; `models/micro/x.gguf`"
        );
    }
}
