// The benchmarks' runner: `npm run bench` lists them, `npm run bench -- NAME [ARGS…]` runs one,
// `npm run bench -- all` runs them all in turn. Figures and how to read them: docs/benchmarks.md.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
// Generous, but bounded: a bench that hangs is stopped.
const TIMEOUT_MS = 30 * 60 * 1000;

const BENCHES = {
  "parse-products": {
    file: "bench/parse-products.ts",
    about: "issue 3: read a 20,000-product (~50 MB) simplestreams source; time and peak RSS",
  },
  download: {
    file: "bench/download.ts",
    about: "the downloader alone (downloadFile) against curl -o (+ sha256sum), one file over loopback",
  },
  import: {
    file: "bench/import.ts",
    about: "issue 4: a real region importing 4 images (1088 MiB) against curl -o (+ sha256sum); peak RSS",
  },
  start: {
    file: "bench/start.ts",
    about: "issue 15: region start to /healthz 200 and idle RSS of region and rack, compiled vs tsx",
  },
  memory: {
    file: "bench/memory.ts",
    about: "issue 15: region RSS idle, at an import's peak and after it, as shipped vs node on the script",
  },
  racks: {
    file: "bench/racks.ts",
    about: "issue 5: three real racks syncing ~1 GiB from the region at once against one curl; region CPU",
  },
  "mirror-sync": {
    file: "bench/mirror-sync.ts",
    about: "issue 14: bootstream mirror sync of ~1 GiB over loopback against curl -o + sha256sum; peak RSS",
  },
  "dashboard-scale": {
    file: "bench/dashboard-scale.ts",
    about: "the dashboard with 500 images and live progress in Chromium: frames/s and blocking time vs idle",
  },
  flood: {
    file: "bench/flood.ts",
    about: "issue 12: /healthz latency while one viewer token and one address flood the region, vs idle",
  },
  sockets: {
    file: "bench/sockets.ts",
    about: "issue 6: 1,000 viewers on the region against a bare Socket.IO server; latency, memory, CPU",
  },
};
const ALL = [
  "import",
  "start",
  "memory",
  "racks",
  "sockets",
  "parse-products",
  "download",
  "dashboard-scale",
];

function usage() {
  const width = Math.max(...Object.keys(BENCHES).map((name) => name.length));
  const lines = Object.entries(BENCHES).map(([name, b]) => `  ${name.padEnd(width)}  ${b.about}`);
  process.stdout.write(
    `usage: npm run bench -- NAME [ARGS…]   (or: npm run bench -- all)\n\n${lines.join("\n")}\n\n` +
      "Each takes its own flags (see the comment at the top of its file). Figures: docs/benchmarks.md\n",
  );
}

function runOne(name, args) {
  const bench = BENCHES[name];
  process.stdout.write(`\n=== ${name}: ${bench.about}\n\n`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", bench.file, ...args], {
      cwd: ROOT,
      stdio: "inherit",
    });
    const timer = setTimeout(() => {
      process.stderr.write(`${name}: still running after ${TIMEOUT_MS / 60000} min; stopping it\n`);
      child.kill("SIGTERM");
    }, TIMEOUT_MS);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}

const [name, ...args] = process.argv.slice(2);
if (name === undefined || name === "list" || name === "--help" || name === "-h") {
  usage();
} else if (name === "all") {
  // Flags differ between benches: `all` runs each with its defaults.
  if (args.length) process.stderr.write(`all: ignoring ${args.join(" ")} (run one bench to pass flags)\n`);
  const failed = [];
  for (const each of ALL) if ((await runOne(each, [])) !== 0) failed.push(each);
  if (failed.length) {
    process.stderr.write(`\nfailed: ${failed.join(", ")}\n`);
    process.exitCode = 1;
  }
} else if (Object.hasOwn(BENCHES, name)) {
  process.exitCode = await runOne(name, args);
} else {
  process.stderr.write(`unknown bench "${name}"\n\n`);
  usage();
  process.exitCode = 2;
}
