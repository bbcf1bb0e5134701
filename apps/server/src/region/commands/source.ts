import { keyringProblem, splitCredentials } from "@bootstream/images";
import { CommandError } from "@bootstream/protocol";
import { ConfigError, parseSourceUrl } from "../../config";
import type { Handler } from "./types";

export const catalogueGet: Handler<"catalogue:get"> = async (_payload, _actor, region) => ({
  catalogue: await region.source.catalogue(),
});

export const sourceUpdate: Handler<"source:update"> = async ({ url, keyring }, actor, region) => {
  // `http://user:pass@host/` — the credentials are kept apart and sent as HTTP Basic; only the
  // URL without them is stored, shown, audited and logged.
  const { url: shown, credentials } = splitCredentials(url);
  let normalised: string;
  try {
    normalised = parseSourceUrl(shown, "url");
  } catch (error) {
    if (error instanceof ConfigError) throw new CommandError("invalid", `boot source ${error.problem}`);
    throw error;
  }
  const armored = keyring?.trim() ? keyring : null;
  const problem = armored === null ? null : await keyringProblem(armored);
  if (problem !== null) throw new CommandError("invalid", problem);
  // The change and its audit row commit together.
  const { entry, ...result } = await region.source.update(normalised, armored, credentials, {
    by: actor.name,
    action: "source:update",
    detail: `${normalised} (${armored ? "signed" : "unsigned"})`,
  });
  region.audit.announce(entry);
  // The images now come from elsewhere: import from the new source (a region that never read a
  // catalogue makes its default selection then). With auto-import off, an admin starts it.
  if (!(await region.selection.initialised()) || (await region.settings.get()).autoImport)
    region.importer.request("manual");
  return result;
};
