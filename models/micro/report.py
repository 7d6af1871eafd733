"""Summarise micro-Punie's greedy first turns on the validation prompts (from `punie models first-turns`).

Usage: python report.py VALIDATION_OUT.jsonl

A turn counts as a well-formed call when it is closed (`</tool_call>` present: the parser also
accepts a call cut off by the token limit) and Punie's parser (`punie::toolcall::parse`) finds
exactly one `execute_code` call with a non-empty `code` and no hard errors; its code "parses" when CPython's
`ast.parse` accepts it (the sandbox's RustPython reads the same grammar).
"""

import ast
import json
import sys


def parses(code: str) -> bool:
    try:
        ast.parse(code)
        return True
    except SyntaxError:
        return False


def main(path: str) -> None:
    rows = [json.loads(l) for l in open(path) if l.strip()]
    expects = sum(r["expects_call"] for r in rows)
    emitted = sum(r["emitted_tool_call_tag"] for r in rows)
    well = [r for r in rows if "</tool_call>" in r["text"] and r["hard_errors"] == 0 and len(r["calls"]) == 1
            and r["calls"][0]["name"] == "execute_code" and (r["calls"][0]["code"] or "").strip()]
    good = [r for r in well if parses(r["calls"][0]["code"])]
    good_expected = sum(r["expects_call"] for r in good)
    stopped = sum(r["finish"] == "Stop" for r in rows)
    print(f"- prompts: {len(rows)}; the data answers {expects} of them with a tool call")
    print(f"- turns that emitted `<tool_call>`: {emitted}")
    print(f"- parsed calls, closed or cut off (any hard error excluded): "
          f"{sum(r['hard_errors'] == 0 and len(r['calls']) >= 1 for r in rows)}")
    print(f"- well-formed calls (closed, one `execute_code` call, non-empty code, no parse error): {len(well)}")
    print(f"- well-formed calls whose code parses (`ast.parse`): **{len(good)}** "
          f"({good_expected} of them on prompts the data answers with a call)")
    print(f"- turns ended by `<|im_end|>` (not the 300-token limit): {stopped}")


if __name__ == "__main__":
    main(sys.argv[1])
