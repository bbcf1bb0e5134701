import type { Handler } from "./types";

// The audit row goes in the token's own transaction: a token never exists without its record.

export const tokenCreate: Handler<"token:create"> = async ({ role, name }, actor, region) => {
  const { token, entry } = await region.tokens.create(role, name, {
    by: actor.name,
    action: "token:create",
    detail: `${role} token "${name}"`,
  });
  region.audit.announce(entry);
  return { token };
};

export const tokenRevoke: Handler<"token:revoke"> = async ({ name }, actor, region) => {
  const entry = await region.tokens.revoke(name, {
    by: actor.name,
    action: "token:revoke",
    detail: `token "${name}"`,
  });
  region.sessions.disconnectToken(name);
  region.audit.announce(entry);
  return {};
};
