import { Initial1764115200000 } from "./0001-initial";
import { ImageFileByPath1764979200000 } from "./0002-image-file-by-path";
import { LeaderLease1796083200000 } from "./0003-leader-lease";
import { ImageNext1796169600000 } from "./0004-image-next";
import { RegionNode1796256000000 } from "./0005-region-node";

/** Every migration, oldest first. TypeORM records which ran in its `migrations` table. */
export const MIGRATIONS = [
  Initial1764115200000,
  ImageFileByPath1764979200000,
  LeaderLease1796083200000,
  ImageNext1796169600000,
  RegionNode1796256000000,
];
