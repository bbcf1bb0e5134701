import type { Handler } from "./types";

// The audit row goes in the token's own transaction: a token never exists without its record.

export const tokenCreate: Handler<"token:create"> = async ({ role, name }, actor, region) => {
  const { token, also: entry } = await region.tokens.create(role, name, (m) =>
    region.audit.record(m, actor.name, "token:create", `${role} token "${name}"`),
  );
  region.audit.announce(entry);
  return { token };
};

export const tokenRevoke: Handler<"token:revoke"> = async ({ name }, actor, region) => {
  const entry = await region.tokens.revoke(name, (m) =>
    region.audit.record(m, actor.name, "token:revoke", `token "${name}"`),
  );
  region.sessions.disconnectToken(name);
  region.audit.announce(entry);
  return {};
};
