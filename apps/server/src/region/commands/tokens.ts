import type { Handler } from "./types";

export const tokenCreate: Handler<"token:create"> = async ({ role, name }, actor, region) => {
  const token = await region.tokens.create(role, name);
  await region.audit.add(actor.name, "token:create", `${role} token "${name}"`);
  return { token };
};

export const tokenRevoke: Handler<"token:revoke"> = async ({ name }, actor, region) => {
  await region.tokens.revoke(name);
  region.sessions.disconnectToken(name);
  await region.audit.add(actor.name, "token:revoke", `token "${name}"`);
  return {};
};
