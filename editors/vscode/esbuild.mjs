// Bundles the extension (dist/extension.js) and, with --tests, the unit and extension-host tests (out/).
import * as esbuild from "esbuild";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const tsFiles = (dir) => !existsSync(dir) ? [] :
  readdirSync(dir, { recursive: true, withFileTypes: false }).filter((f) => f.endsWith(".ts")).map((f) => join(dir, f));

const production = process.argv.includes("--production");
const tests = process.argv.includes("--tests");

const common = { bundle: true, platform: "node", format: "cjs", target: "node20", external: ["vscode"], logLevel: "warning" };

if (tests) {
  await esbuild.build({
    ...common,
    entryPoints: [...tsFiles("test/unit"), ...tsFiles("test/e2e/ext")],
    outdir: "out/test",
    outbase: "test",
    sourcemap: "inline",
  });
} else {
  await esbuild.build({
    ...common,
    entryPoints: ["src/extension.ts"],
    outfile: "dist/extension.js",
    minify: production,
    sourcemap: production ? false : "linked",
  });
}
