#!/usr/bin/env python3
"""Soak of `punie lsp`: many scripted asks with random cancels and edits; RSS over time (stdlib only).

    bench/soak.py [--punie target/debug/punie] [--asks 2000] [--burst 8] [--seed 1]
                  [--max-growth-mb 16] [--json OUT.json]

Drives the real server over stdio, the way an editor would, on a fresh workspace with a scripted
engine (deterministic, no model: what grows here is the server's, not llama.cpp's). Asks come in
bursts of up to 8 (--burst) queued runs, a mix of Explain (a direct answer), Fix (an answer whose code block
becomes a `workspace/applyEdit`), and Ask with a Code Mode snippet that reads a file through the
real sandbox; one ask in five is cancelled at a random moment (`punie.cancel`, or
`window/workDoneProgress/cancel`), and between bursts the open documents are edited (small edits,
and now and then a line added to a 2 MB document, which every ask on it snapshots). The fake
editor answers every server request (progress tokens, edits, permission dialogs: Deny).

Every run must end (one progress `end` and one `punie/answer` each). Reported: the server's RSS
(VmRSS from /proc) sampled after every burst, its growth from the end of a warm-up (the first
tenth of the asks) to the end, notifications per ask, the transcripts' size on disk, wall time.
Exits 1 if a run never ended, the server died, or the RSS grew by more than --max-growth-mb after
the warm-up.
"""

import argparse
import json
import os
import queue
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAIT = 120  # seconds: a guard against a hung server, not a timing


def call(code):
    return f"<tool_call><function=execute_code>\n<parameter=code>\n{code}\n</parameter>\n</function></tool_call>"


# Every run: a Code Mode snippet that reads a file through the real sandbox, then an answer
# with a code block (Fix makes it an edit), streamed slowly enough for cancels to land mid-run.
SCRIPT = {
    "turns": [
        "Let me read it.\n" + call("print(read_file('src/calc.py'))"),
        "The operator is wrong.\n\n```python\ndef add(a, b):\n    return a + b\n```",
    ],
    "chunk_delay_ms": 1,
}


class Server:
    def __init__(self, punie):
        env = dict(os.environ, PUNIE_LOG="warn")
        env.pop("PUNIE_ENGINE", None)
        self.process = subprocess.Popen(
            [punie, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=tempfile.gettempdir(), env=env)
        self.messages = queue.Queue()
        self.notifications = 0
        self.next_id = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        stream = self.process.stdout
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    self.messages.put(None)
                    return
                line = line.strip()
                if not line:
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            self.messages.put(json.loads(stream.read(length)))

    def send(self, message):
        body = json.dumps(message).encode()
        with self.lock:
            self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.process.stdin.flush()

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return self.next_id

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def answer(self, message):
        method = message["method"]
        if method == "window/showMessageRequest":
            result = {"title": "Deny"}
        elif method == "workspace/applyEdit":
            result = {"applied": True}
        elif method == "workspace/configuration":
            result = [None]
        else:
            result = None
        self.send({"jsonrpc": "2.0", "id": message["id"], "result": result})

    def rss_kb(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def uri(path):
    return "file://" + path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--punie", default=os.path.join(REPO, "target/debug/punie"))
    parser.add_argument("--asks", type=int, default=2000)
    parser.add_argument("--burst", type=int, default=8, help="the most asks queued at once")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-growth-mb", type=float, default=16.0,
                        help="the RSS may grow this much after the warm-up")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    root = tempfile.mkdtemp(prefix="punie-soak-")
    scripts = tempfile.mkdtemp(prefix="punie-soak-scripts-")
    try:
        return soak(args, rng, root, scripts)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(scripts, ignore_errors=True)


def soak(args, rng, root, scripts):
    os.makedirs(os.path.join(root, "src"))
    calc = "def add(a, b):\n    return a - b\n"
    with open(os.path.join(root, "src/calc.py"), "w") as f:
        f.write(calc)
    big = "".join(f"value_{n} = {n}  # a long module that every ask on it snapshots\n" for n in range(30000))
    with open(os.path.join(root, "src/big.py"), "w") as f:
        f.write(big)
    script = os.path.join(scripts, "soak.json")
    with open(script, "w") as f:
        json.dump(SCRIPT, f)
    engine = "scripted:" + script

    server = Server(args.punie)
    started = time.monotonic()
    init = server.request("initialize", {
        "processId": None, "rootUri": uri(root),
        "workspaceFolders": [{"uri": uri(root), "name": "soak"}],
        "capabilities": {"window": {"workDoneProgress": True}, "experimental": {"punieAnswer": True},
                         "workspace": {"applyEdit": True}},
        "initializationOptions": {"engine": engine},
    })
    pending_responses = {init: None}

    docs = {"src/calc.py": {"text": calc, "version": 1}, "src/big.py": {"text": big, "version": 1}}
    runs = {}          # run id -> punie.ask's result
    by_token = {}      # progress token -> run id
    ended = set()
    answered = set()
    statuses = {}
    samples = []

    def pump(until, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while not until():
            try:
                message = server.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise SystemExit(f"timed out: {len(runs) - len(ended)} runs not ended")
            if message is None:
                raise SystemExit("the server exited")
            if "method" in message and "id" in message:
                server.answer(message)
            elif "method" in message:
                server.notifications += 1
                params = message.get("params") or {}
                if message["method"] == "$/progress" and params.get("value", {}).get("kind") == "end":
                    run_id = by_token.get(json.dumps(params["token"]))
                    if run_id:
                        ended.add(run_id)
                elif message["method"] == "punie/answer":
                    answered.add(params["runId"])
                    statuses[params.get("status")] = statuses.get(params.get("status"), 0) + 1
            elif "id" in message:
                pending_responses[message["id"]] = message

    pump(lambda: pending_responses[init] is not None)
    server.notify("initialized", {})
    for path, doc in docs.items():
        server.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri(os.path.join(root, path)), "languageId": "python", "version": 1, "text": doc["text"]}})
    asked = 0
    warm_up = max(1, args.asks // 10)
    rss_after_warm_up = None
    while asked < args.asks:
        burst = []
        for _ in range(min(rng.randint(1, args.burst), args.asks - asked)):
            path = "src/big.py" if rng.random() < 0.1 else "src/calc.py"
            instruction = rng.choice(["explain", "fix", "ask", "ask"])
            arguments = {"uri": uri(os.path.join(root, path)),
                         "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}},
                         "instruction": instruction}
            if instruction == "ask":
                arguments["question"] = f"What does this do? ({asked})"
            request_id = server.request("workspace/executeCommand", {"command": "punie.ask", "arguments": [arguments]})
            pending_responses[request_id] = None
            burst.append(request_id)
            asked += 1
        pump(lambda: all(pending_responses[r] is not None for r in burst))
        burst_runs = []
        for request_id in burst:
            response = pending_responses.pop(request_id)
            result = response.get("result") or {}
            if "runId" not in result:
                raise SystemExit(f"punie.ask failed: {response}")
            runs[result["runId"]] = result
            if "token" in result:
                by_token[json.dumps(result["token"])] = result["runId"]
            burst_runs.append(result)
        # Cancel one in five at a random moment, by command or by the progress token.
        for result in burst_runs:
            if rng.random() < 0.2:
                time.sleep(rng.random() * 0.02)
                if rng.random() < 0.5 or "token" not in result:
                    cancel = server.request("workspace/executeCommand",
                                            {"command": "punie.cancel", "arguments": [{"runId": result["runId"]}]})
                    pending_responses[cancel] = None
                else:
                    server.notify("window/workDoneProgress/cancel", {"token": result["token"]})
        # Edit while the runs go: a line in calc.py, now and then one in the big document.
        for path in ["src/calc.py"] + (["src/big.py"] if rng.random() < 0.2 else []):
            doc = docs[path]
            doc["version"] += 1
            line = rng.randint(0, 2)
            server.notify("textDocument/didChange", {
                "textDocument": {"uri": uri(os.path.join(root, path)), "version": doc["version"]},
                "contentChanges": [{"range": {"start": {"line": line, "character": 0},
                                              "end": {"line": line, "character": 0}},
                                    "text": f"# edit {doc['version']}\n"}]})
        ids = [r["runId"] for r in burst_runs]
        with_progress = [r["runId"] for r in burst_runs if "token" in r]
        pump(lambda: all(i in answered for i in ids) and all(i in ended for i in with_progress))
        for key in [k for k, v in pending_responses.items() if v is not None]:
            pending_responses.pop(key)
        rss = server.rss_kb()
        samples.append({"asks": asked, "rss_kb": rss, "seconds": round(time.monotonic() - started, 1),
                        "notifications": server.notifications})
        if rss_after_warm_up is None and asked >= warm_up:
            rss_after_warm_up = rss

    shutdown = server.request("shutdown", None)
    pending_responses[shutdown] = None
    pump(lambda: pending_responses[shutdown] is not None)
    server.notify("exit", None)
    server.process.wait(timeout=10)
    transcripts = os.path.join(root, ".punie/transcripts")
    names = os.listdir(transcripts) if os.path.isdir(transcripts) else []
    transcript_bytes = sum(os.path.getsize(os.path.join(transcripts, f)) for f in names)
    # Runs whose snippet ran in the sandbox and read the file, among the transcripts kept.
    snippets_ok = 0
    for name in names:
        with open(os.path.join(transcripts, name)) as f:
            snippets_ok += any('"event":"tool_result"' in line and '"ok":true' in line for line in f)
    final = samples[-1]["rss_kb"]
    report = {
        "asks": asked,
        "runs_ended": len(ended),
        "runs_answered": len(answered),
        "statuses": statuses,
        "seconds": round(time.monotonic() - started, 1),
        "rss_mb": {
            "after_warm_up": round(rss_after_warm_up / 1024, 1),
            "final": round(final / 1024, 1),
            "max": round(max(s["rss_kb"] for s in samples) / 1024, 1),
            "growth_after_warm_up": round((final - rss_after_warm_up) / 1024, 1),
            "bound_on_growth": args.max_growth_mb,
        },
        "notifications_per_ask": round(server.notifications / asked, 1),
        "transcripts_mb": round(transcript_bytes / 1024 / 1024, 1),
        "transcript_files": len(names),
        "kept_transcripts_with_a_snippet_that_ran": snippets_ok,
        "exit_code": server.process.returncode,
        "samples": samples[:: max(1, len(samples) // 40)],
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    if len(answered) != asked:
        print(f"{asked - len(answered)} runs never answered", file=sys.stderr)
        return 1
    if (final - rss_after_warm_up) / 1024 > args.max_growth_mb:
        print(f"the RSS grew by more than {args.max_growth_mb} MB after the warm-up", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
