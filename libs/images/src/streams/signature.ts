import type { PublicKey } from "openpgp";
import { SourceError, errorMessage } from "./source-error";

// openpgp.js is ~2.3 MB of source (~8 MB of a process's memory once loaded): it is loaded on the first
// keyring or signature, so a rack agent, an unsigned mirror sync or a region that has not yet read a
// signed source never holds it.
const openpgp = () => import("openpgp");

/** Public keys a signed source must be signed with, read once per source read. */
export type Keyring = { readonly keys: readonly PublicKey[]; readonly keyIds: ReadonlySet<string> };

const CLEARSIGN_HEADER = "-----BEGIN PGP SIGNED MESSAGE-----";

export async function readKeyring(armored: string): Promise<Keyring> {
  const { readKeys } = await openpgp();
  let keys;
  try {
    keys = await readKeys({ armoredKeys: armored });
  } catch (error) {
    throw new SourceError(`the keyring is not an armored OpenPGP public key (${errorMessage(error)})`, {
      cause: error,
    });
  }
  // source:update and BOOT_SOURCE_KEYRING refuse private keys (keyringProblem); a keyring stored
  // by an older version may still hold one: only its public half is ever used.
  const publicKeys = keys.map((key) => key.toPublic());
  const keyIds = new Set(publicKeys.flatMap((key) => key.getKeyIDs().map((id) => id.toHex())));
  return { keys: publicKeys, keyIds };
}

const PRIVATE_KEY_HEADER = /-----BEGIN PGP PRIVATE KEY BLOCK-----/;
export const PRIVATE_KEYRING_MESSAGE =
  "the keyring holds a private (secret) key: give only the public key (`gpg --armor --export KEYID`), and treat the private key as leaked if it was sent anywhere";

/**
 * Why an armored keyring must not be stored, or null: a private key pasted as the keyring is
 * refused outright rather than stored (it would sit in the database and in backups).
 */
export async function keyringProblem(armored: string): Promise<string | null> {
  if (PRIVATE_KEY_HEADER.test(armored)) return PRIVATE_KEYRING_MESSAGE;
  const { readKeys } = await openpgp();
  try {
    const keys = await readKeys({ armoredKeys: armored });
    if (keys.some((key) => key.isPrivate())) return PRIVATE_KEYRING_MESSAGE;
  } catch {
    return null; // not a keyring at all: reading the source says so (`source-error`)
  }
  return null;
}

/**
 * The signed text of a clearsigned document, once a signature by a key in the keyring verifies.
 * `shown` names the document in the error.
 */
export async function verifyClearsigned(text: string, keyring: Keyring, shown: string): Promise<string> {
  if (!text.trimStart().startsWith(CLEARSIGN_HEADER)) {
    throw new SourceError(`${shown}: missing signature (not an OpenPGP clearsigned document)`);
  }
  const { readCleartextMessage, verify } = await openpgp();
  let verification;
  try {
    const message = await readCleartextMessage({ cleartextMessage: text });
    verification = await verify({ message, verificationKeys: [...keyring.keys] });
  } catch (error) {
    throw new SourceError(`${shown}: malformed signature (${errorMessage(error)})`, { cause: error });
  }
  const signatures = [...verification.signatures];
  if (signatures.length === 0) throw new SourceError(`${shown}: missing signature`);
  const failures: string[] = [];
  // One good signature by a key we trust is enough: upstream may sign with an old and a new key.
  for (const signature of signatures) {
    try {
      await signature.verified;
      return verification.data;
    } catch (error) {
      failures.push(errorMessage(error));
    }
  }
  const signers = signatures.map((signature) => signature.keyID.toHex());
  if (!signers.some((id) => keyring.keyIds.has(id))) {
    throw new SourceError(`${shown}: signed by unknown key ${signers.join(", ")} (not in the keyring)`);
  }
  throw new SourceError(`${shown}: bad signature (${failures.join("; ")})`);
}
