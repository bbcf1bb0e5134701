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
  // No keyring given: the one stored stays (as MAAS keeps a boot source's keyring), so moving to a
  // mirror of the same signed stream keeps it verified; an empty one says the new source is unsigned.
  const kept = keyring === undefined;
  const armored = kept ? await region.source.storedKeyring() : keyring.trim() ? keyring : null;
  const problem = armored === null || kept ? null : await keyringProblem(armored);
  if (problem !== null) throw new CommandError("invalid", problem);
  // The change and its audit row commit together.
  const { entry, ...result } = await region.source
    .update(normalised, armored, credentials, {
      by: actor.name,
      action: "source:update",
      detail: `${normalised} (${armored ? "signed" : "unsigned"}${kept && armored ? ", keyring kept" : ""})`,
    })
    .catch((error: unknown) => {
      if (!(kept && armored && error instanceof CommandError && error.code === "source-error")) throw error;
      throw new CommandError(
        "source-error",
        `${error.message} (checked against the keyring kept from the last source; for an unsigned source send an empty keyring: bootstream source set URL --keyring none)`,
      );
    });
  region.audit.announce(entry);
  // The images now come from elsewhere: import from the new source (a region that never read a
  // catalogue makes its default selection then). With auto-import off, an admin starts it.
  if (!(await region.selection.initialised()) || (await region.settings.get()).autoImport)
    region.importer.request("manual");
  return result;
};
