import * as assert from "node:assert/strict";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BootstrapError, checkVersion, expand, findServer, which, type Env } from "../../src/bootstrap";

const env = (files: string[], pathVar = "/usr/bin:/opt/punie/bin"): Env => ({
  exists: (p) => files.includes(p), pathVar, platform: "linux", home: "/home/me",
});

describe("bootstrap: finding the binary", () => {
  it("prefers the setting, expanding ~ and ${workspaceFolder}", () => {
    assert.equal(findServer("~/bin/punie", "/ext", env(["/home/me/bin/punie", "/opt/punie/bin/punie"])), "/home/me/bin/punie");
    assert.equal(expand("${workspaceFolder}/target/debug/punie", env([]), "/ws"), "/ws/target/debug/punie");
  });

  it("a setting that points nowhere is an error naming the setting", () => {
    assert.throws(() => findServer("/nope/punie", "/ext", env(["/opt/punie/bin/punie"])), (e: Error) =>
      e instanceof BootstrapError && /punie\.serverPath/.test(e.message) && /\/nope\/punie/.test(e.message));
  });

  it("then the bundled binary, then PATH", () => {
    assert.equal(findServer("", "/ext", env(["/ext/server/punie", "/opt/punie/bin/punie"])), "/ext/server/punie");
    assert.equal(findServer(undefined, "/ext", env(["/opt/punie/bin/punie"])), "/opt/punie/bin/punie");
    assert.equal(which("punie", env(["/opt/punie/bin/punie"], "")), undefined);
  });

  it("says how to install when nothing is found", () => {
    assert.throws(() => findServer("", "/ext", env([])), (e: Error) =>
      /not found/.test(e.message) && /cargo install --path server/.test(e.message) && /punie\.serverPath/.test(e.message));
  });
});

describe("bootstrap: punie --version", () => {
  const dir = mkdtempSync(join(tmpdir(), "punie-boot-"));
  it("returns the first line", async () => {
    const p = join(dir, "ok");
    writeFileSync(p, "#!/bin/sh\necho 'punie 0.1.0'\n");
    chmodSync(p, 0o755);
    assert.equal(await checkVersion(p), "punie 0.1.0");
  });
  it("reports a failing binary with its stderr", async () => {
    const p = join(dir, "bad");
    writeFileSync(p, "#!/bin/sh\necho 'error: libfoo.so missing' >&2\nexit 3\n");
    chmodSync(p, 0o755);
    await assert.rejects(checkVersion(p), (e: Error) => e instanceof BootstrapError && /libfoo\.so missing/.test(e.message));
  });
});
