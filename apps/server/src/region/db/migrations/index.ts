import { Initial1764115200000 } from "./0001-initial";

/** Every migration, oldest first. TypeORM records which ran in its `migrations` table. */
export const MIGRATIONS = [Initial1764115200000];
