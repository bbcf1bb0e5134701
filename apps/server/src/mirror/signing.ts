import type { PrivateKey } from "openpgp";
import { MirrorOptionsError } from "./options";

// Loaded when a key is first used: an unsigned `mirror sync` never loads openpgp.js (see
// libs/images/src/streams/signature.ts).
const openpgp = () => import("openpgp");

export async function readSigningKey(armored: string): Promise<PrivateKey> {
  const { readPrivateKey } = await openpgp();
  let key: PrivateKey;
  try {
    key = await readPrivateKey({ armoredKey: armored });
  } catch (error) {
    throw new MirrorOptionsError(
      `the signing key is not an armored OpenPGP private key (${(error as Error).message})`,
    );
  }
  if (!key.isDecrypted()) {
    throw new MirrorOptionsError("the signing key is protected by a passphrase; give an unprotected key");
  }
  return key;
}

/** A clearsigned copy of `text`, as upstream's `.sjson` files are. */
export async function clearsign(text: string, key: PrivateKey): Promise<string> {
  const { createCleartextMessage, sign } = await openpgp();
  return sign({ message: await createCleartextMessage({ text }), signingKeys: key });
}

/**
 * A fresh test signing key pair. Legacy EdDSA on curve25519: fast to make and verifiable by
 * gpg as well as openpgp.js, so a mirror signed with it also works for real MAAS tools.
 */
export async function generateSigningKey(
  name = "Bootstream test mirror",
): Promise<{ privateKey: string; publicKey: string }> {
  const { generateKey } = await openpgp();
  const { privateKey, publicKey } = await generateKey({
    type: "ecc",
    curve: "curve25519Legacy",
    userIDs: [{ name }],
    format: "armored",
  });
  return { privateKey, publicKey };
}
