#!/usr/bin/env node
// A stand-in for `punie lsp` that follows INTERFACES §2 just far enough to develop and self-test the
// end-to-end harness while the real server is being written (run-e2e.sh --mock). The e2e run that
// counts uses the real binary. Scripted engine only; tool calls: read_file and write_file.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

if (process.argv[2] === "--version") { console.log("punie 0.0.0-mock"); process.exit(0); }
if (process.argv[2] !== "lsp") { console.error("usage: mock-punie lsp"); process.exit(2); }

let buf = Buffer.alloc(0), nextId = 1;
const pending = new Map(), docs = new Map(), runs = new Map();
let settings = {}, root = process.cwd(), runSeq = 0;
const send = (m) => { const s = JSON.stringify({ jsonrpc: "2.0", ...m }); process.stdout.write(`Content-Length: ${Buffer.byteLength(s)}\r\n\r\n${s}`); };
const request = (method, params) => new Promise((res) => { const id = nextId++; pending.set(id, res); send({ id, method, params }); });
const notify = (method, params) => send({ method, params });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

process.stdin.on("data", (d) => {
  buf = Buffer.concat([buf, d]);
  for (;;) {
    const h = buf.indexOf("\r\n\r\n"); if (h < 0) return;
    const len = Number(/Content-Length: (\d+)/i.exec(buf.slice(0, h).toString())[1]);
    if (buf.length < h + 4 + len) return;
    const msg = JSON.parse(buf.slice(h + 4, h + 4 + len).toString()); buf = buf.slice(h + 4 + len);
    handle(msg).catch((e) => console.error("mock:", e));
  }
});
process.stdin.on("end", () => process.exit(0));

const merge = (a, b) => { for (const [k, v] of Object.entries(b ?? {})) a[k] = v && typeof v === "object" && !Array.isArray(v) ? merge(a[k] ?? {}, v) : v; return a; };
const docText = (uri) => docs.get(uri) ?? readFileSync(fileURLToPath(uri), "utf8");
const offset = (text, pos) => { const lines = text.split("\n"); let o = 0; for (let i = 0; i < pos.line; i++) o += lines[i].length + 1; return o + pos.character; };

async function handle(m) {
  if (m.id !== undefined && !m.method) { pending.get(m.id)?.(m.result ?? null); pending.delete(m.id); return; }
  const p = m.params;
  switch (m.method) {
    case "initialize":
      settings = merge({}, p.initializationOptions);
      root = p.workspaceFolders?.[0] ? fileURLToPath(p.workspaceFolders[0].uri) : root;
      return send({ id: m.id, result: { capabilities: { textDocumentSync: 2, codeActionProvider: true, executeCommandProvider: { commands: ["punie.ask", "punie.cancel"] } }, serverInfo: { name: "punie-mock" } } });
    case "initialized": { const [c] = await request("workspace/configuration", { items: [{ section: "punie" }] }); if (c) merge(settings, c); return; }
    case "workspace/didChangeConfiguration": { const [c] = await request("workspace/configuration", { items: [{ section: "punie" }] }); if (c) merge(settings, c); return; }
    case "textDocument/didOpen": docs.set(p.textDocument.uri, p.textDocument.text); return;
    case "textDocument/didChange": {
      let t = docs.get(p.textDocument.uri) ?? "";
      for (const c of p.contentChanges) t = c.range ? t.slice(0, offset(t, c.range.start)) + c.text + t.slice(offset(t, c.range.end)) : c.text;
      docs.set(p.textDocument.uri, t); return;
    }
    case "textDocument/codeAction": {
      const arg = (instruction) => ({ uri: p.textDocument.uri, range: p.range, instruction });
      const acts = [["Ask Punie: Explain", "explain", "refactor"], ["Ask Punie: Fix", "fix", "quickfix"], ["Ask Punie: Write tests", "tests", "refactor"], ["Ask Punie: Refactor", "refactor", "refactor.rewrite"], ["Ask Punie…", "ask", "refactor"]];
      return send({ id: m.id, result: acts.map(([title, ins, kind]) => ({ title, kind, command: { title, command: "punie.ask", arguments: [arg(ins)] } })) });
    }
    case "workspace/executeCommand": {
      if (m.params.command === "punie.cancel") { const r = runs.get(p.arguments[0].runId); if (r && !r.done) { r.cancelled = true; return send({ id: m.id, result: { cancelled: true } }); } return send({ id: m.id, result: { cancelled: false } }); }
      const a = p.arguments[0]; const runId = `run-${++runSeq}`; const token = p.workDoneToken ?? `tok-${runSeq}`;
      runs.set(runId, { cancelled: false, done: false });
      send({ id: m.id, result: { runId, token } });
      return run(runId, token, a);
    }
    case "window/workDoneProgress/cancel": for (const r of runs.values()) r.cancelled = true; return;
    case "shutdown": return send({ id: m.id, result: null });
    case "exit": process.exit(0);
    default: if (m.id !== undefined) send({ id: m.id, error: { code: -32601, message: `mock: ${m.method}` } });
  }
}

async function run(runId, token, a) {
  const st = runs.get(runId);
  const prog = (value) => notify("$/progress", { token, value });
  prog({ kind: "begin", title: "Punie", cancellable: true, message: "generating" });
  let spec = String(settings.engine ?? "").replace(/^scripted:/, "");
  let turns = [], delay = 0;
  try { const j = JSON.parse(readFileSync(spec.startsWith("/") ? spec : join(process.cwd(), spec), "utf8")); turns = Array.isArray(j) ? j : j.turns; delay = j.chunk_delay_ms ?? 0; }
  catch (e) { prog({ kind: "end", message: `failed: engine ${spec}: ${e.message}` }); return notify("punie/answer", { runId, uri: a.uri, range: a.range, markdown: String(e.message), status: "failed" }); }
  let answer = "";
  for (const turn of turns) {
    prog({ kind: "report", message: "generating" });
    for (let i = 0; i < turn.length && delay; i += 8) { if (st.cancelled) break; await sleep(delay); }
    if (st.cancelled) break;
    const call = /<tool_call><function=execute_code>\n<parameter=code>\n([\s\S]*?)\n<\/parameter>\n<\/function><\/tool_call>/.exec(turn);
    if (!call) { answer = turn; continue; }
    const w = /write_file\('([^']*)', '([^']*)'\)/.exec(call[1]);
    const r = /read_file\('([^']*)'\)/.exec(call[1]);
    if (r) prog({ kind: "report", message: `read_file ${r[1]}` });
    if (w) {
      prog({ kind: "report", message: `write_file ${w[1]}` });
      const policy = settings.toolPolicy?.write_file ?? "ask";
      const pick = policy === "allow" ? { title: "Allow" } : policy === "deny" ? null : await request("window/showMessageRequest", { type: 2, message: `Punie wants to write_file ${w[1]}`, actions: [{ title: "Allow" }, { title: "Allow for this session" }, { title: "Deny" }] });
      if (!pick || pick.title === "Deny") prog({ kind: "report", message: "write_file failed: PermissionError: denied by the user" });
    }
  }
  if (!st.cancelled && (a.instruction === "fix" || a.instruction === "refactor")) {
    const code = /```[a-z]*\n([\s\S]*?)```/.exec(answer);
    if (code) await request("workspace/applyEdit", { label: "Punie: Fix", edit: { changes: { [a.uri]: [{ range: a.range, newText: code[1] }] } } });
  }
  st.done = true;
  const status = st.cancelled ? "cancelled" : "done";
  prog({ kind: "end", message: status });
  notify("punie/answer", { runId, uri: a.uri, range: a.range, markdown: answer || "(no answer)", status });
}
