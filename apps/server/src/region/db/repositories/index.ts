import type { EntityManager } from "typeorm";
import type { Database } from "../database";
import { AuditRepository } from "./audit";
import { ImageRepository } from "./images";
import { ImportRunRepository } from "./runs";
import { RackRepository } from "./racks";
import { SelectionRepository } from "./selection";
import { SettingsRepository } from "./settings";
import { SourceRepository } from "./source";
import { TokenRepository } from "./tokens";

export type DatabaseKind = Database["kind"];

/**
 * One repository per aggregate, all bound to one EntityManager: the database's own (reads) or a
 * write's transaction. Services see only these, with domain values in and out; TypeORM, SQL and
 * locking stay in this folder.
 */
export type Tx = {
  tokens: TokenRepository;
  audit: AuditRepository;
  settings: SettingsRepository;
  selection: SelectionRepository;
  source: SourceRepository;
  images: ImageRepository;
  racks: RackRepository;
  runs: ImportRunRepository;
};

function bind(m: EntityManager, kind: DatabaseKind): Tx {
  return {
    tokens: new TokenRepository(m, kind),
    audit: new AuditRepository(m),
    settings: new SettingsRepository(m),
    selection: new SelectionRepository(m),
    source: new SourceRepository(m),
    images: new ImageRepository(m, kind),
    racks: new RackRepository(m, kind),
    runs: new ImportRunRepository(m),
  };
}

/**
 * The region's data. `read` answers outside any transaction; `write` runs one transaction (queued
 * behind every other write on SQLite, fenced by the leader lease on a cluster: see
 * `Database.write`), so a command's change and its audit row commit together or not at all.
 */
export class Repositories {
  readonly read: Tx;

  constructor(private readonly db: Database) {
    this.read = bind(db.manager, db.kind);
  }

  get kind(): DatabaseKind {
    return this.db.kind;
  }

  write<T>(job: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.write((m) => job(bind(m, this.db.kind)));
  }
}

export type { AuditNote } from "./audit";
