// Signed sources: index.sjson and product .sjson files, verified against the keyring given.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCleartextMessage, generateKey, readPrivateKey, sign } from "openpgp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  UBUNTU_KEY_FILE,
  UPSTREAM_PATHS,
  writeSampleSource,
} from "../../../../test/fixtures/streams/sample-source";
import { startLoopbackServer } from "../../../../test/fixtures/streams/loopback-server";
import { readSource } from "./read-source";
import { readKeyring, verifyClearsigned } from "./signature";
import { SourceError } from "./source-error";

type KeyPair = { privateKey: string; publicKey: string };

async function newKey(name: string): Promise<KeyPair> {
  return generateKey({ type: "ecc", curve: "curve25519Legacy", userIDs: [{ name }], format: "armored" });
}

async function clearsign(text: string, key: KeyPair): Promise<string> {
  const signingKeys = await readPrivateKey({ armoredKey: key.privateKey });
  return sign({ message: await createCleartextMessage({ text }), signingKeys });
}

let dir: string;
let url: string;
let signer: KeyPair;
let stranger: KeyPair;
const sjson = (path: string) => join(dir, path.replace(/\.json$/, ".sjson"));

/** Signs every sample document next to its .json, as upstream publishes both. */
async function signSamples(): Promise<void> {
  for (const path of Object.values(UPSTREAM_PATHS)) {
    await writeFile(sjson(path), await clearsign(await readFile(join(dir, path), "utf8"), signer));
  }
}

async function refusal(keyring: string): Promise<SourceError> {
  const error = await readSource({ url, keyring }).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(SourceError);
  return error as SourceError;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "bootstream-signed-"));
  url = await writeSampleSource(dir);
  [signer, stranger] = await Promise.all([newKey("Mirror signer"), newKey("Somebody else")]);
  await signSamples();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("readSource with a keyring", () => {
  it("reads and verifies the .sjson documents, though the index names .json paths", async () => {
    const signed = await readSource({ url, keyring: signer.publicKey });
    const unsigned = await readSource({ url });
    expect(signed.signed).toBe(true);
    expect(signed.catalogue).toEqual(unsigned.catalogue);
    expect(signed.images).toEqual(unsigned.images);
  });

  it("follows an index.sjson that names .sjson product files, as upstream's does", async () => {
    const index = JSON.parse(await readFile(join(dir, UPSTREAM_PATHS.index), "utf8")) as {
      index: Record<string, { path: string }>;
    };
    for (const entry of Object.values(index.index)) entry.path = entry.path.replace(/\.json$/, ".sjson");
    const original = await readFile(sjson(UPSTREAM_PATHS.index), "utf8");
    await writeFile(sjson(UPSTREAM_PATHS.index), await clearsign(JSON.stringify(index), signer));
    try {
      const signed = await readSource({ url, keyring: signer.publicKey });
      expect(signed.images).toHaveLength(6);
    } finally {
      await writeFile(sjson(UPSTREAM_PATHS.index), original);
    }
  });

  it("reads over HTTP too", async () => {
    const routes: Record<string, string> = {};
    for (const path of Object.values(UPSTREAM_PATHS)) {
      const signedPath = path.replace(/\.json$/, ".sjson");
      routes[signedPath] = await readFile(join(dir, signedPath), "utf8");
    }
    const server = await startLoopbackServer(routes);
    try {
      const signed = await readSource({ url: server.url, keyring: signer.publicKey });
      expect(signed.images).toHaveLength(6);
      expect(server.requests.every((path) => path.endsWith(".sjson"))).toBe(true);
    } finally {
      await server.close();
    }
  });

  it("refuses a document signed by a key not in the keyring, naming the file", async () => {
    const error = await refusal(stranger.publicKey);
    expect(error.message).toMatch(
      /streams\/v1\/index\.sjson: signed by unknown key [0-9a-f]{16} \(not in the keyring\)/,
    );
  });

  it("refuses an index.sjson with one byte changed: bad signature", async () => {
    const path = sjson(UPSTREAM_PATHS.index);
    const original = await readFile(path, "utf8");
    await writeFile(path, original.replace('"index:1.0"', '"index:1.1"'));
    try {
      const error = await refusal(signer.publicKey);
      expect(error.message).toMatch(/index\.sjson: bad signature \(Signed digest did not match\)/);
    } finally {
      await writeFile(path, original);
    }
  });

  it("refuses a product file without a signature, naming that file", async () => {
    const path = sjson(UPSTREAM_PATHS.centos);
    const original = await readFile(path, "utf8");
    await writeFile(path, await readFile(join(dir, UPSTREAM_PATHS.centos), "utf8"));
    try {
      const error = await refusal(signer.publicKey);
      expect(error.message).toContain(
        "com.ubuntu.maas:stable:centos-bases-download.sjson: missing signature",
      );
    } finally {
      await writeFile(path, original);
    }
  });

  it("refuses a keyring that is not a key", async () => {
    expect((await refusal("not a key")).message).toMatch(/^the keyring is not an armored OpenPGP public key/);
    const signedText = await readFile(sjson(UPSTREAM_PATHS.index), "utf8");
    expect((await refusal(signedText)).message).toMatch(/^the keyring is not an armored OpenPGP public key/);
  });

  it("verifies against the bundled Ubuntu key: a key it reads, which did not sign our samples", async () => {
    const ubuntu = await readKeyring(await readFile(UBUNTU_KEY_FILE, "utf8"));
    expect([...ubuntu.keyIds]).toContain("7ff3f408476cf100");
    const text = await readFile(sjson(UPSTREAM_PATHS.index), "utf8");
    await expect(verifyClearsigned(text, ubuntu, "index.sjson")).rejects.toThrow(/signed by unknown key/);
  });

  it("accepts a private key as the keyring, using only its public half", async () => {
    const signed = await readSource({ url, keyring: signer.privateKey });
    expect(signed.signed).toBe(true);
  });
});
