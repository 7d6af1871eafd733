// Writes package.json `contributes.configuration` from settings.decl.json.
// `node scripts/gen-config.mjs --check` exits 1 when package.json is out of date (run by the unit tests too).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export function configurationFrom(decl) {
  const properties = {};
  for (const s of decl.settings) {
    const p = { type: s.type, default: s.default };
    for (const k of ["enum", "enumDescriptions", "minimum", "maximum", "markdownDescription"]) {
      if (s[k] !== undefined) p[k] = s[k];
    }
    p.scope = s.scope ?? "resource";
    properties[`punie.${s.key}`] = p;
  }
  return { title: "Punie", properties };
}

const decl = JSON.parse(readFileSync(join(root, "settings.decl.json"), "utf8"));
const pkgPath = join(root, "package.json");
const pkg = JSON.parse(readFileSync(pkgPath, "utf8"));
const want = configurationFrom(decl);
const same = JSON.stringify(pkg.contributes?.configuration) === JSON.stringify(want);
if (process.argv.includes("--check")) {
  if (!same) {
    console.error("package.json contributes.configuration is out of date: run `npm run gen-config`");
    process.exit(1);
  }
} else if (!same) {
  pkg.contributes = { ...pkg.contributes, configuration: want };
  writeFileSync(pkgPath, JSON.stringify(pkg, null, 2) + "\n");
  console.log("package.json: contributes.configuration updated");
}
