#!/usr/bin/env python3
"""ACP latency of `punie acp` on a real model, measured from a client's side (stdlib only).

    bench/acp_latency.py [--punie target/debug/punie] [--engine SPEC] [--rounds N]

For each round, a fresh agent on a copy of tests/fixtures/workspace: a first question in a session
of its own, five seconds after the session opens (START_DELAY_S, the user writing it: the agent may
load the model and read its system prompt meanwhile; its time to first token is `start_ttft_ms`),
then in a new session
- a first question about an attached file (like Explain on a selection: most of its prompt is new
  to the engine) and, a second later (READING_TIME_S), a short follow-up: time to the first token
  (`_meta.punie.firstTokenMs` of the response) and the prompt tokens the engine evaluated
  (the rest came from the KV cache), so the follow-up's reuse shows;
- the gap between the model's first token and the first `agent_message_chunk` the client reads
  (client time to the first chunk minus `firstTokenMs`: what Punie adds before streaming);
- a third prompt cancelled once its first chunk arrives: from `session/cancel` to the
  `stopReason: "cancelled"` response.
Prints one JSON object with medians and the raw figures.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import queue
import time

# Between an answer and its follow-up a person reads the answer and types the next question, which
# never takes less; the agent may use the time, as it would in an editor.
READING_TIME_S = 1.0
# Between opening a session and sending its first prompt the user writes it.
START_DELAY_S = 5.0
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Agent:
    def __init__(self, punie, engine, env):
        args = [punie, "acp"] + ([f"--engine={engine}"] if engine else [])
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 0

    def _read(self):
        for line in self.process.stdout:
            self.lines.put((time.monotonic(), json.loads(line)))

    def send(self, message):
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        self.process.stdin.flush()
        return time.monotonic()

    def request(self, method, params):
        self.next_id += 1
        sent = self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return self.next_id, sent

    def wait(self, predicate, timeout=600):
        deadline = time.monotonic() + timeout
        while True:
            at, message = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if "method" in message and "id" in message:
                # Allow every tool call (the benchmark measures latency, not policy).
                reply = {"outcome": {"outcome": "selected", "optionId": "allow_once"}}
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": reply})
            if predicate(message):
                return at, message

    def prompt(self, session, text, cancel_after_first_chunk=False, attach=None):
        blocks = [{"type": "text", "text": text}]
        if attach:
            blocks.append({"type": "resource_link", "uri": "file://" + attach, "name": os.path.basename(attach)})
        request_id, sent = self.request("session/prompt", {"sessionId": session, "prompt": blocks})
        first_chunk_at = None
        cancel_sent = None
        while True:
            at, message = self.wait(lambda m: True)
            update = message.get("params", {}).get("update", {})
            if update.get("sessionUpdate") == "agent_message_chunk" and first_chunk_at is None:
                first_chunk_at = at
                if cancel_after_first_chunk:
                    cancel_sent = self.send(
                        {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session}}
                    )
            if message.get("id") == request_id and "method" not in message:
                return {"sent": sent, "first_chunk_at": first_chunk_at, "cancel_sent": cancel_sent,
                        "answered_at": at, "result": message.get("result"), "error": message.get("error")}

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)


def new_session(agent, workspace):
    request_id, _ = agent.request("session/new", {"cwd": workspace, "mcpServers": []})
    _, response = agent.wait(lambda m: m.get("id") == request_id and "method" not in m)
    return response["result"]["sessionId"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--punie", default=os.path.join(REPO, "target/debug/punie"))
    parser.add_argument("--engine", default="")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = []
    for _ in range(args.rounds):
        workspace = tempfile.mkdtemp()
        sessions = tempfile.mkdtemp()
        shutil.copytree(os.path.join(REPO, "tests/fixtures/workspace"), workspace, dirs_exist_ok=True)
        env = dict(os.environ, PUNIE_SESSION_DIR=sessions, PUNIE_LOG=os.environ.get("PUNIE_LOG", "warn"))
        env.pop("PUNIE_ENGINE", None)
        agent = Agent(args.punie, args.engine, env)
        agent.request("initialize", {"protocolVersion": 1, "clientCapabilities": {}})
        figures = {}
        warm_up = new_session(agent, workspace)
        time.sleep(START_DELAY_S)
        run = agent.prompt(warm_up, "Say hello.")
        figures["start_first_token_ms"] = ((run["result"] or {}).get("_meta", {}).get("punie", {}).get("firstTokenMs"))
        session = new_session(agent, workspace)
        attached = os.path.join(workspace, "src/inventory/models.py")
        for name, text, attach in [("first", "Explain this code in two sentences.", attached),
                                   ("follow_up", "Which class is the most important? One word.", None)]:
            if name == "follow_up":
                time.sleep(READING_TIME_S)
            run = agent.prompt(session, text, attach=attach)
            meta = (run["result"] or {}).get("_meta", {}).get("punie", {})
            first_token_ms = meta.get("firstTokenMs")
            chunk_ms = (run["first_chunk_at"] - run["sent"]) * 1e3 if run["first_chunk_at"] else None
            figures[name] = {
                "first_token_ms": first_token_ms,
                "first_chunk_ms": chunk_ms,
                "chunk_after_token_ms": (chunk_ms - first_token_ms) if chunk_ms and first_token_ms else None,
                "tokens_in": meta.get("tokensIn"),
                "tokens_evaluated": meta.get("tokensEvaluated"),
                "stop": (run["result"] or {}).get("stopReason"),
            }
        run = agent.prompt(session, "Describe every file of this project in detail.", cancel_after_first_chunk=True)
        figures["cancel_ms"] = (run["answered_at"] - run["cancel_sent"]) * 1e3 if run["cancel_sent"] else None
        figures["cancel_stop"] = (run["result"] or {}).get("stopReason")
        agent.close()
        shutil.rmtree(workspace, ignore_errors=True)
        shutil.rmtree(sessions, ignore_errors=True)
        rounds.append(figures)

    def median(values):
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 1) if values else None

    summary = {
        "rounds": len(rounds),
        "reading_time_ms": READING_TIME_S * 1e3,
        "start_delay_ms": START_DELAY_S * 1e3,
        "start_ttft_ms": median(r["start_first_token_ms"] for r in rounds),
        "first_ttft_ms": median(r["first"]["first_token_ms"] for r in rounds),
        "follow_up_ttft_ms": median(r["follow_up"]["first_token_ms"] for r in rounds),
        "follow_up_tokens_evaluated": median(r["follow_up"]["tokens_evaluated"] for r in rounds),
        "follow_up_tokens_in": median(r["follow_up"]["tokens_in"] for r in rounds),
        "chunk_after_first_token_ms": median(
            v for r in rounds for v in (r["first"]["chunk_after_token_ms"], r["follow_up"]["chunk_after_token_ms"])
        ),
        "cancel_to_response_ms": median(r["cancel_ms"] for r in rounds),
        "raw": rounds,
    }
    ratio = None
    if summary["first_ttft_ms"] and summary["follow_up_ttft_ms"]:
        ratio = round(summary["follow_up_ttft_ms"] / summary["first_ttft_ms"], 3)
    summary["follow_up_ttft_ratio"] = ratio
    json.dump(summary, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
