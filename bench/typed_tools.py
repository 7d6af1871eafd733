#!/usr/bin/env python3
"""Cost of one typed-tool call through `punie sandbox` (stdlib only).

    bench/typed_tools.py [--punie target/debug/punie] [--runs N]

On a copy of tests/fixtures/typed made a git repository with one commit and one uncommitted
change (as the e2e tests make it), each snippet runs N times with `--allow-commands` and `PATH`
with the set-up's .venv/bin first; the figure is the median of the result's `elapsed_ms`
(the snippet's run in the sandbox, every program it ran in the jail included; not the start of
`punie` itself). Prints a markdown table for docs/typed-tools.md. Run it under /work/bin/heavy
so that nothing else competes for the cores.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SNIPPETS = [
    ("`x = 1` (no tool)", "x = 1"),
    ("`ruff_check('.')`", "ruff_check('.')"),
    ("`typecheck('.')` (ty)", "typecheck('.')"),
    ("`pytest_run('tests')`", "pytest_run('tests')"),
    ("`git_status('.')`", "git_status('.')"),
    ("`git_diff('.')`", "git_diff('.')"),
    ("`git_log('.')`", "git_log('.')"),
    ("`document_symbols(...)` (ty server: start, index, answer)",
     "document_symbols('src/geometry/shapes.py')"),
    ("five `find_references(...)` (ty server, one start)",
     "for _ in range(5):\n    find_references('src/geometry/report.py', 5, 29, 'Square')"),
    ("`cst_rename(...)` (in-process)", "cst_rename('src/geometry/shapes.py', 'Square', 'Box')"),
]


def git(workspace, *args):
    subprocess.run(
        ["git", "-c", "user.name=Bench", "-c", "user.email=bench@punie.invalid", *args],
        cwd=workspace, check=True, stdout=subprocess.DEVNULL)


def fixture(parent):
    workspace = os.path.join(parent, "ws")
    shutil.copytree(os.path.join(REPO, "tests/fixtures/typed"), workspace)
    git(workspace, "init", "-q", "-b", "main")
    git(workspace, "add", ".")
    git(workspace, "commit", "-q", "-m", "Shapes and a report")
    with open(os.path.join(workspace, "src/geometry/report.py"), "a") as report:
        report.write('\n\nUNIT = "cm"\n')
    return workspace


def elapsed_ms(punie, workspace, code, env):
    out = subprocess.run(
        [punie, "sandbox", "--allow-commands", "--workspace", workspace],
        input=code.encode(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        check=True)
    res = json.loads(out.stdout)
    if not res["ok"]:
        sys.exit(f"{code!r} failed: {res['error']}")
    return res["elapsed_ms"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--punie", default=os.path.join(REPO, "target/debug/punie"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ)
    env["PATH"] = os.path.join(REPO, ".venv/bin") + os.pathsep + env.get("PATH", "")
    with tempfile.TemporaryDirectory() as parent:
        workspace = fixture(parent)
        print("| snippet | median | min | max |")
        print("|---|---|---|---|")
        for label, code in SNIPPETS:
            times = [elapsed_ms(args.punie, workspace, code, env) for _ in range(args.runs)]
            print(f"| {label} | {statistics.median(times):.0f} ms | {min(times):.0f} ms "
                  f"| {max(times):.0f} ms |")


if __name__ == "__main__":
    main()
