// The region, rack and CLI run from the TypeScript sources through tsx, as `bootstream` ran before the
// compiled build (bench/start.ts compares the two): `node --import tsx bench/tsx-entry.ts region`.
import { main } from "../apps/server/src/cli/main";

process.setSourceMapsEnabled(true);
process.exitCode = await main(process.argv.slice(2));
