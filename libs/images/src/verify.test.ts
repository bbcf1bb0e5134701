import { describe, expect, it } from "vitest";
import { newImageRecord, type ImageRecord } from "./lifecycle";
import {
  CORRUPT_WARNING,
  IDLE_VERIFY,
  corruptWarning,
  corruptionWarned,
  heldFiles,
  imagesNeeding,
  verifyOutcome,
  verifyRestored,
  verifyStep,
  type HeldFile,
  type VerifyState,
  type VerifyStep,
} from "./verify";
import { verifyPercent, verifySummary } from "./present/verify";

const T0 = "2026-12-02T05:00:00.000Z";
const T1 = "2026-12-02T05:10:00.000Z";
const A = "a".repeat(64);
const B = "b".repeat(64);

const fold = (steps: VerifyStep[], from: VerifyState = IDLE_VERIFY): VerifyState =>
  steps.reduce(verifyStep, from);

describe("verify progress fold", () => {
  it("runs from started through hashed bytes to finished, never beyond its total", () => {
    const state = fold([
      { kind: "started", repair: false, bytesTotal: 100, at: T0 },
      { kind: "hashed", bytes: 60 },
      { kind: "hashed", bytes: 60 },
    ]);
    expect(state).toMatchObject({ running: true, bytesDone: 100, bytesTotal: 100, startedAt: T0 });
    const done = verifyStep(state, { kind: "finished", error: null, at: T1 });
    expect(done).toMatchObject({ running: false, finishedAt: T1, error: null });
  });

  it.each<[string, VerifyStep[], Partial<VerifyState>]>([
    [
      "a corrupt file is listed once, sorted",
      [
        { kind: "corrupt", sha256: B },
        { kind: "corrupt", sha256: A },
        { kind: "corrupt", sha256: B },
      ],
      { corrupt: [A, B] },
    ],
    [
      "a repair moves it from corrupt to repaired",
      [
        { kind: "corrupt", sha256: A },
        { kind: "repaired", sha256: A },
      ],
      { corrupt: [], repaired: [A] },
    ],
    [
      "a dropped file is neither",
      [
        { kind: "corrupt", sha256: A },
        { kind: "dropped", sha256: A },
      ],
      { corrupt: [], repaired: [] },
    ],
    ["a join asking repair turns it on", [{ kind: "joined", repair: true }], { repair: true }],
    [
      "a join without repair never turns it off",
      [
        { kind: "joined", repair: true },
        { kind: "joined", repair: false },
      ],
      { repair: true },
    ],
  ])("%s", (_name, steps, expected) => {
    expect(fold([{ kind: "started", repair: false, bytesTotal: 10, at: T0 }, ...steps])).toMatchObject(
      expected,
    );
  });

  it("ignores steps that do not apply: a second start, bytes or a join or an end while idle", () => {
    const running = fold([{ kind: "started", repair: false, bytesTotal: 10, at: T0 }]);
    expect(verifyStep(running, { kind: "started", repair: true, bytesTotal: 99, at: T1 })).toBe(running);
    expect(verifyStep(IDLE_VERIFY, { kind: "hashed", bytes: 5 })).toBe(IDLE_VERIFY);
    expect(verifyStep(IDLE_VERIFY, { kind: "joined", repair: true })).toBe(IDLE_VERIFY);
    expect(verifyStep(IDLE_VERIFY, { kind: "finished", error: null, at: T1 })).toBe(IDLE_VERIFY);
  });

  it("a new run keeps what earlier runs left corrupt and forgets their repairs", () => {
    const before = fold([
      { kind: "corrupt", sha256: A },
      { kind: "repaired", sha256: B },
    ]);
    expect(verifyStep(before, { kind: "started", repair: false, bytesTotal: 1, at: T1 })).toMatchObject({
      corrupt: [A],
      repaired: [],
      startedAt: T1,
      finishedAt: null,
    });
  });

  it("a restart ends a run it cut and takes the corrupt list from the disk", () => {
    const cut = fold([{ kind: "started", repair: true, bytesTotal: 10, at: T0 }]);
    expect(verifyRestored(cut, [B, A, B])).toMatchObject({
      running: false,
      corrupt: [A, B],
      error: expect.stringMatching(/^interrupted/),
    });
    expect(verifyRestored(null, [])).toEqual(IDLE_VERIFY);
    expect(verifyRestored({ ...IDLE_VERIFY, corrupt: [A] }, [])).toMatchObject({ corrupt: [], error: null });
  });

  it.each<[Partial<VerifyState>, string]>([
    [{}, "clean"],
    [{ repaired: [A] }, "repaired"],
    [{ repaired: [A], corrupt: [B] }, "corrupt"],
  ])("outcome of %j is %s", (patch, outcome) => {
    expect(verifyOutcome({ ...IDLE_VERIFY, ...patch })).toBe(outcome);
  });
});

describe("verify wording", () => {
  it.each<[Partial<VerifyState>, RegExp]>([
    [{}, /^never verified$/],
    [
      { running: true, bytesTotal: 4 * 1024 ** 3, bytesDone: 1024 ** 3 },
      /^verifying 1\.0 GiB of 4\.0 GiB \(25%\)$/,
    ],
    [
      { running: true, repair: true, bytesTotal: 10, bytesDone: 0, corrupt: [A] },
      /^verifying and repairing .*, 1 corrupt file out of service$/,
    ],
    [{ startedAt: T0, finishedAt: T1 }, /^verified \d{4}-\d\d-\d\d \d\d:\d\d: clean$/],
    [
      { startedAt: T0, finishedAt: T1, corrupt: [A, B] },
      /: 2 corrupt files out of service \(run verify --repair\)$/,
    ],
    [
      { startedAt: T0, finishedAt: T1, repaired: [A], error: "could not repair 1 file(s): x" },
      /: 1 file repaired; could not repair/,
    ],
    // A repair that failed does not advise the repair again: it says why it failed.
    [
      { startedAt: T0, finishedAt: T1, repair: true, corrupt: [A], error: "could not repair 1 file(s): x" },
      /: 1 corrupt file out of service; could not repair 1 file\(s\): x$/,
    ],
    // A repair run cut short still advises the repair.
    [
      {
        startedAt: T0,
        finishedAt: T1,
        repair: true,
        corrupt: [A],
        error: "interrupted: the region is stopping",
      },
      /: 1 corrupt file out of service \(run verify --repair\); interrupted/,
    ],
  ])("%j reads %s", (patch, line) => {
    expect(verifySummary({ ...IDLE_VERIFY, ...patch })).toMatch(line);
  });

  it("percent: an empty store is done when idle, nothing while it starts", () => {
    expect(verifyPercent(IDLE_VERIFY)).toBe(100);
    expect(verifyPercent({ ...IDLE_VERIFY, running: true })).toBe(0);
    expect(verifyPercent({ ...IDLE_VERIFY, running: true, bytesTotal: 3, bytesDone: 2 })).toBe(66);
  });
});

describe("corrupt files → image warnings", () => {
  const held = (patch: Partial<ImageRecord> = {}): ImageRecord => ({
    ...newImageRecord(
      "ubuntu/noble/amd64",
      { os: "ubuntu", release: "noble", arch: "amd64", title: "24.04 LTS" },
      T0,
    ),
    version: "20250601",
    state: "synced",
    ...patch,
  });
  const files: HeldFile[] = [
    { imageId: "ubuntu/noble/amd64", version: "20250601", sha256: A, path: "noble/amd64/20250601/squashfs" },
    { imageId: "ubuntu/noble/amd64", version: "20250701", sha256: B, path: "noble/amd64/20250701/squashfs" },
    {
      imageId: "ubuntu/jammy/amd64",
      version: "20250601",
      sha256: A,
      path: "jammy/amd64/20250601/ga/boot-kernel",
    },
  ];

  it("names the held version's paths per image; other versions and images not holding it are left out", () => {
    const versions = new Map([
      ["ubuntu/noble/amd64", "20250601"],
      ["ubuntu/jammy/amd64", null],
    ]);
    expect(imagesNeeding(new Set([A, B]), versions, files)).toEqual(
      new Map([["ubuntu/noble/amd64", ["noble/amd64/20250601/squashfs"]]]),
    );
    expect(imagesNeeding(new Set(), versions, files).size).toBe(0);
  });

  it.each<[string, [string, string | null][], string[]]>([
    ["the held version's files only, not an update's", [["ubuntu/noble/amd64", "20250601"]], [A]],
    ["the update's once it is the held version", [["ubuntu/noble/amd64", "20250701"]], [B]],
    [
      "a file two images hold, once",
      [
        ["ubuntu/noble/amd64", "20250601"],
        ["ubuntu/jammy/amd64", "20250601"],
      ],
      [A],
    ],
    ["nothing for an image that holds nothing", [["ubuntu/jammy/amd64", null]], []],
    ["nothing for an image the registry does not know", [], []],
  ])("lists the files a verify must find in the store: %s", (_name, versions, expected) => {
    expect([...heldFiles(new Map(versions), files)]).toEqual(expected);
  });

  it.each<[string, Partial<ImageRecord>, string[], string | null | "unchanged"]>([
    ["warns a held image", {}, ["x/squashfs"], corruptWarning(["x/squashfs"])],
    ["keeps the same warning", { warning: corruptWarning(["x/squashfs"]) }, ["x/squashfs"], "unchanged"],
    ["takes its own warning back once repaired", { warning: corruptWarning(["x/squashfs"]) }, [], null],
    [
      "leaves another warning alone",
      { warning: "not offered by http://m/; keeping 20250601" },
      [],
      "unchanged",
    ],
    [
      "does not warn an image that holds nothing",
      { state: "queued", version: null },
      ["x/squashfs"],
      "unchanged",
    ],
  ])("%s", (_name, patch, paths, warning) => {
    const next = corruptionWarned(held(patch), paths, T1);
    if (warning === "unchanged") expect(next).toBeNull();
    else expect(next).toMatchObject({ warning, updatedAt: T1 });
  });

  it("the warning names at most three files and says how to repair", () => {
    const text = corruptWarning(["a/1", "b/2", "c/3", "d/4"]);
    expect(text.startsWith(CORRUPT_WARNING)).toBe(true);
    expect(text).toBe(
      `${CORRUPT_WARNING}: 1, 2, 3 and 1 more; not served until repaired (bootstream verify --repair)`,
    );
  });
});
