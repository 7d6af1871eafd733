import * as assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { SERVER_KEYS, SETTINGS, serverSettings, needsRestart } from "../../src/config";

describe("config", () => {
  it("builds the nested initializationOptions of INTERFACES §2 from the defaults", () => {
    const pkg = JSON.parse(readFileSync("package.json", "utf8"));
    const props = pkg.contributes.configuration.properties;
    const s = serverSettings((k) => props[`punie.${k}`]?.default);
    assert.deepEqual(s, {
      untrustedWorkspace: false,
      maxTurns: 8,
      toolPolicy: { read_file: "allow", write_file: "ask", run_command: "ask" },
      sandbox: { timeoutMs: 10000, memoryMb: 256, outputKb: 256 },
    });
  });

  it("passes the engine and profile when set and leaves out unset values", () => {
    const s = serverSettings((k) => ({ engine: " scripted:/tmp/t.json ", profile: "generic", maxTurns: 3 } as Record<string, unknown>)[k]);
    assert.deepEqual(s, { untrustedWorkspace: false, engine: "scripted:/tmp/t.json", profile: "generic", maxTurns: 3 });
  });

  it("leaves the profile to the model unless one is chosen", () => {
    const props = JSON.parse(readFileSync("package.json", "utf8")).contributes.configuration.properties;
    assert.equal(props["punie.profile"].default, "");
    assert.deepEqual(props["punie.profile"].enum, ["", "punie-phase22", "punie-typed", "generic"]);
  });

  it("never sends the client-only settings", () => {
    assert.ok(!SERVER_KEYS.includes("serverPath"));
    assert.ok(!SERVER_KEYS.includes("trace.server"));
    const s = serverSettings((k) => (k === "serverPath" ? "/x/punie" : undefined));
    assert.deepEqual(s, { untrustedWorkspace: false });
  });

  it("an untrusted workspace asks the server for every write and command", () => {
    assert.deepEqual(serverSettings((k) => (k === "maxTurns" ? 3 : undefined), false), { untrustedWorkspace: true, maxTurns: 3 });
    // Sent when trusted too: the server merges key by key, so trust granted later clears it.
    assert.deepEqual(serverSettings(() => undefined, true), { untrustedWorkspace: false });
  });

  it("what decides the program, the engine and the tool policy is the user's, not a workspace's", () => {
    const pkg = JSON.parse(readFileSync("package.json", "utf8"));
    const props = pkg.contributes.configuration.properties;
    assert.equal(props["punie.serverPath"].scope, "machine");
    assert.equal(props["punie.engine"].scope, "machine");
    for (const tool of ["read_file", "write_file", "run_command"]) assert.equal(props[`punie.toolPolicy.${tool}`].scope, "application");
    const untrusted = pkg.capabilities.untrustedWorkspaces;
    assert.equal(untrusted.supported, "limited");
    assert.match(untrusted.description, /asks before every write and every command/);
    for (const key of untrusted.restrictedConfigurations) assert.ok(props[key], key);
    for (const [key, prop] of Object.entries(props) as [string, { scope: string }][]) {
      if (prop.scope === "resource") assert.ok(untrusted.restrictedConfigurations.includes(key) || key === "punie.trace.server", `${key} is read from an untrusted workspace`);
    }
  });

  it("restarts only for serverPath", () => {
    assert.equal(needsRestart((s) => s === "punie.serverPath"), true);
    assert.equal(needsRestart((s) => s === "punie.engine"), false);
  });

  it("declares every setting of package.json, and only those", () => {
    const props = JSON.parse(readFileSync("package.json", "utf8")).contributes.configuration.properties;
    assert.deepEqual(SETTINGS.map((s) => `punie.${s.key}`), Object.keys(props));
  });

  it("contributes every setting the issue names, each with a description", () => {
    const props = JSON.parse(readFileSync("package.json", "utf8")).contributes.configuration.properties;
    for (const k of ["serverPath", "engine", "profile", "maxTurns", "toolPolicy.read_file", "toolPolicy.write_file",
      "toolPolicy.run_command", "sandbox.timeoutMs", "sandbox.memoryMb", "sandbox.outputKb"]) {
      assert.ok(props[`punie.${k}`], k);
      assert.ok(props[`punie.${k}`].markdownDescription.length > 20, k);
    }
  });
});
