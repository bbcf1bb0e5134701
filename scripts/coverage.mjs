// Line coverage of the whole suite, spawned processes included, for `npm test`:
//   node scripts/coverage.mjs clean    empties coverage/ before the suites run
//   node scripts/coverage.mjs report   merges and prints the summary after them
//
// Two sources, one report:
// - in-process code: @vitest/coverage-v8 writes coverage/<suite>/coverage-final.json (istanbul);
// - spawned regions, racks and CLI runs: they run the compiled apps/server/dist (bootstream.js and
//   its chunks) and
//   inherit NODE_V8_COVERAGE (test/helpers/child-coverage.ts), so each writes raw V8 coverage to
//   coverage/children when it exits. Those are merged per function (@bcoe/v8-coverage) and mapped
//   through the bundle's source map onto the TypeScript with ast-v8-to-istanbul, the converter
//   @vitest/coverage-v8 itself uses on the same parser, so both sides count the same statements and
//   istanbul-lib-coverage merges them by location.
// Plain JavaScript so it runs without a build step, like scripts/build-server.mjs.
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { mergeProcessCovs } from "@bcoe/v8-coverage";
import astV8ToIstanbul from "ast-v8-to-istanbul";
import libCoverage from "istanbul-lib-coverage";
import { parseAstAsync } from "vitest/node";

const root = fileURLToPath(new URL("..", import.meta.url));
const coverageDir = path.join(root, "coverage");
const childrenDir = path.join(coverageDir, "children");
// The build: dist/bootstream.js and the chunks it imports (scripts/build-server.mjs).
const distDir = path.join(root, "apps/server/dist");
const distUrl = pathToFileURL(distDir).href + "/";

// The rows of the summary, in this order; a file counts in the first group its path starts with.
const GROUPS = [
  "apps/server/src/region",
  "apps/server/src/rack",
  "apps/server/src/cli",
  "apps/server/src/mirror",
  "apps/server/src/demo",
  "apps/server/src",
  "libs/images",
  "libs/protocol",
  "apps/web/src",
];

/** The directory held to a minimum of line coverage, and the suites that must all have run for it. */
const REGION = "apps/server/src/region";
const SUITES = ["unit", "integration", "browser", "services"];
// COVERAGE_REGION_MIN=0 turns the check off (a partial local run that still has every report).
const REGION_MIN = Number(process.env.COVERAGE_REGION_MIN ?? 85);

/** Only the sources vitest.config.ts's coverage.include names (no tests, no node_modules). */
function isSource(file) {
  const relative = path.relative(root, file).split(path.sep).join("/");
  return (
    /^(libs\/[^/]+\/src|apps\/server\/src|apps\/web\/src)\//.test(relative) &&
    relative.endsWith(".ts") &&
    !relative.endsWith(".test.ts") &&
    !relative.endsWith(".d.ts")
  );
}

async function clean() {
  await rm(coverageDir, { recursive: true, force: true });
  await mkdir(childrenDir, { recursive: true });
}

/** The build's current scripts (entry and chunks) by file URL, with their line lengths. */
async function bundleScripts() {
  const scripts = new Map();
  if (!existsSync(distDir)) return scripts;
  for (const name of await readdir(distDir)) {
    if (!name.endsWith(".js")) continue;
    const file = path.join(distDir, name);
    const code = await readFile(file, "utf8");
    scripts.set(pathToFileURL(file).href, { file, code, lineLengths: code.split("\n").map((l) => l.length) });
  }
  return scripts;
}

/** The spawned processes' coverage of the build, merged per script (entry and chunks). */
async function childrenScripts(scripts) {
  const names = existsSync(childrenDir)
    ? (await readdir(childrenDir)).filter((n) => n.endsWith(".json"))
    : [];
  const merged = new Map();
  let processes = 0;
  let stale = 0;
  // One file at a time: each holds every script the process loaded, node_modules included.
  for (const name of names) {
    const raw = JSON.parse(await readFile(path.join(childrenDir, name), "utf8"));
    const ours = raw.result.filter((entry) => entry.url.startsWith(distUrl));
    if (ours.length === 0) continue;
    // A process that ran another build (offsets would point elsewhere) is left out: a chunk's name
    // carries its content hash, the entry's does not, so the line lengths tell.
    const current = ours.every((entry) => {
      const script = scripts.get(entry.url);
      const cached = raw["source-map-cache"]?.[entry.url]?.lineLengths;
      return (
        script !== undefined &&
        (!cached ||
          (cached.length === script.lineLengths.length &&
            cached.every((n, i) => n === script.lineLengths[i])))
      );
    });
    if (!current) {
      stale += 1;
      continue;
    }
    for (const entry of ours)
      merged.set(entry.url, mergeProcessCovs([merged.get(entry.url) ?? { result: [] }, { result: [entry] }]));
    processes += 1;
  }
  return { merged, processes, stale };
}

async function childrenCoverage() {
  const scripts = await bundleScripts();
  const { merged, processes, stale } = await childrenScripts(scripts);
  const map = libCoverage.createCoverageMap({});
  for (const [url, cov] of merged) {
    const functions = cov.result[0]?.functions ?? [];
    const { file, code } = scripts.get(url);
    if (functions.length === 0 || !existsSync(`${file}.map`)) continue;
    const sourceMap = JSON.parse(await readFile(`${file}.map`, "utf8"));
    sourceMap.sources = sourceMap.sources.map((source) => new URL(source, url).href);
    const converted = await astV8ToIstanbul({
      code,
      sourceMap,
      ast: await parseAstAsync(code),
      coverage: { url, functions },
      wrapperLength: 0,
    });
    map.merge(converted);
  }
  map.filter((file) => isSource(file) && existsSync(file));
  return { map, processes, stale };
}

async function inProcessCoverage() {
  const map = libCoverage.createCoverageMap({});
  const suites = [];
  for (const entry of await readdir(coverageDir, { withFileTypes: true })) {
    const file = path.join(coverageDir, entry.name, "coverage-final.json");
    if (!entry.isDirectory() || !existsSync(file)) continue;
    map.merge(JSON.parse(await readFile(file, "utf8")));
    suites.push(entry.name);
  }
  return { map, suites };
}

function percent(covered, total) {
  return total === 0 ? "   -  " : `${((100 * covered) / total).toFixed(1).padStart(5)}%`;
}

async function report() {
  if (!existsSync(coverageDir))
    throw new Error("no coverage/: run the suites with COVERAGE=1 first (npm test)");
  const inProcess = await inProcessCoverage();
  const children = await childrenCoverage();
  const map = libCoverage.createCoverageMap({});
  map.merge(inProcess.map);
  map.merge(children.map);
  map.filter((file) => isSource(file));
  await writeFile(path.join(coverageDir, "coverage-final.json"), JSON.stringify(map.toJSON()));

  const rows = new Map(GROUPS.map((group) => [group, { files: 0, covered: 0, total: 0 }]));
  const all = { files: 0, covered: 0, total: 0 };
  for (const file of map.files()) {
    const relative = path.relative(root, file).split(path.sep).join("/");
    const group = GROUPS.find((g) => relative.startsWith(`${g}/`));
    const lines = map.fileCoverageFor(file).toSummary().lines;
    for (const row of group ? [rows.get(group), all] : [all]) {
      row.files += 1;
      row.covered += lines.covered;
      row.total += lines.total;
    }
  }
  const width = Math.max(...GROUPS.map((g) => g.length)) + 2;
  const out = [
    "",
    `Line coverage: in-process (${inProcess.suites.join(", ") || "none"}) + ${children.processes} spawned processes` +
      (children.stale ? ` (${children.stale} of another build left out)` : ""),
    `${"directory".padEnd(width)}${"files".padStart(6)}${"lines".padStart(14)}${"covered".padStart(9)}`,
  ];
  const line = (name, row) =>
    `${name.padEnd(width)}${String(row.files).padStart(6)}${`${row.covered}/${row.total}`.padStart(14)}${percent(row.covered, row.total).padStart(9)}`;
  for (const [group, row] of rows)
    if (row.files > 0) out.push(line(group === "apps/server/src" ? "apps/server/src (other)" : group, row));
  out.push(line("total", all), "");
  process.stdout.write(out.join("\n") + "\n");

  // The one figure the project holds itself to, on a line of its own for CI's log.
  const region = rows.get(REGION);
  const figure = region.total ? (100 * region.covered) / region.total : 0;
  const missing = SUITES.filter((suite) => !inProcess.suites.includes(suite));
  const verdict = missing.length
    ? `not checked: suite(s) ${missing.join(", ")} did not run`
    : children.processes === 0
      ? "not checked: no spawned process wrote coverage"
      : figure >= REGION_MIN
        ? "ok"
        : "BELOW THE MINIMUM";
  process.stdout.write(
    `Region line coverage (${REGION}): ${figure.toFixed(1)}% (${region.covered}/${region.total} lines; minimum ${REGION_MIN}% when every suite ran: ${verdict})\n`,
  );
  if (verdict === "BELOW THE MINIMUM") process.exitCode = 1;
}

const command = process.argv[2];
if (command === "clean") await clean();
else if (command === "report") await report();
else {
  process.stderr.write("usage: node scripts/coverage.mjs clean|report\n");
  process.exit(2);
}
