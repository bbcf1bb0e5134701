import type { Hash } from "node:crypto";
import * as fs from "node:fs";
import { Writable } from "node:stream";
import type { BandwidthLimiter } from "./bandwidth";

/**
 * Direct I/O wants the file offset, the length and the memory of each write aligned to the device's
 * logical block (512 B here); 4 KiB covers every common device.
 */
const ALIGN = 4096;
/**
 * Bytes staged before one write is issued (a multiple of ALIGN), unless the caller asks for more.
 * The region keeps this default: its staging buffers stay resident between imports, and four of
 * them at 2 MiB put its idle RSS after an import over 100 MB (docs/benchmarks.md, "Issue 15").
 */
export const STAGING_BYTES = 512 * 1024;
/** Fewer, larger direct writes cost less CPU per byte: what a rack agent asks for (rack/sync.ts). */
export const LARGE_STAGING_BYTES = 2 * 1024 * 1024;
/** reserve() offers no room smaller than this: a read that small costs more than the copy it saves. */
const MIN_RESERVE_BYTES = 256 * 1024;
/** A slow link still sees its bytes reach the file (and progress reported) this often. */
const FLUSH_AFTER_MS = 100;

export type PartialWriterOptions = {
  path: string;
  /** Mode the file is created with (the store's; default 0644). */
  mode?: number;
  /** Bytes of the file already verified into `hash`; the file is truncated to this before writing. */
  offset: number;
  /** The file may not grow beyond this; more bytes fail the stream with onOverflow(). */
  limit: number;
  hash: Hash;
  /** Runs after the file is open and before the first byte is written (e.g. record the validator). */
  prepare?: () => Promise<void>;
  /** Called with each batch of bytes once it is written. */
  onWritten?: (bytes: number) => void;
  /** Called with each chunk's length as it arrives (before it is staged and written). */
  onReceived?: (bytes: number) => void;
  onOverflow: () => Error;
  highWaterMark: number;
  /** Bytes wait for this shared cap before they are written (and hashed). */
  bandwidth?: BandwidthLimiter | undefined;
  /** The download's own abort (a stop, a shutdown): a wait for the cap ends with it. */
  signal?: AbortSignal | undefined;
  /** Start a background fdatasync after this many bytes written (see startSync). */
  syncEveryBytes: number;
  /** Write with O_DIRECT where the filesystem takes it (default true; see PartialWriter). */
  directIo?: boolean;
  /** Size of the staging buffer: STAGING_BYTES (default) or LARGE_STAGING_BYTES. */
  stagingBytes?: number;
};

/**
 * The sink the HTTP response streams into: hashes each chunk as it arrives (while it is still in the
 * cache), copies it into a staging buffer and writes the `.partial` a staging buffer at a time.
 *
 * The writes use O_DIRECT. Copying bytes into the page cache was most of a rack's CPU: 41% of its
 * samples in the racks bench against 14% for sha256, and `dd` of 1 GiB costs 2.3 s of kernel CPU on
 * this VM when the pages are fresh (0.25 s when recycled), 0.12 s with O_DIRECT, which hands the
 * staged pages to the device without a copy (docs/benchmarks.md, "Issue 15", "Rack CPU per GB").
 * Durability is unchanged: the file is still fsynced before it is installed. Where the filesystem
 * refuses O_DIRECT (tmpfs) or one of its writes (alignment), the writer falls back to buffered writes
 * of the same staged bytes and says so in `directIo`.
 *
 * Bytes in flight are bounded by construction, whatever the link's speed and whenever the collector
 * runs: one staging buffer from a pool that reuses them, plus the stream's highWaterMark of queued
 * chunks, behind which the socket is paused.
 */
export class PartialWriter extends Writable {
  /** Bytes in the file (offset + what this writer wrote). */
  position: number;
  /** Bytes handed to this writer by the response (including any it could not write). */
  received = 0;
  /** Of `received`, the bytes a socket read straight into staging (reserve()/commit(): no copy). */
  committedBytes = 0;
  /** A write failed after its bytes were hashed: the hash no longer describes the file. */
  hashTainted = false;
  /** The filesystem error that failed the stream, to tell it apart from a network error. */
  localError: Error | null = null;
  /**
   * Why the response stopped early (network error, timeout, abort). The writer then finishes instead
   * of failing, so the caller sees a clean end and must check this.
   */
  interruption: Error | null = null;
  /** The bytes go down with O_DIRECT (false: buffered, as asked or because the filesystem refused). */
  directIo = false;

  private readonly options: PartialWriterOptions;
  private selfFailed = false;
  /** The fd writes go through: O_DIRECT when directIo, else the same as plainFd. */
  private fd: number | null = null;
  /** A buffered fd on the same file: the resume's head, the unaligned tail, the fallback. */
  private plainFd: number | null = null;
  private staging: Buffer | null = null;
  /** File offset of staging[0]; a multiple of ALIGN while directIo. */
  private base: number;
  /** Bytes in staging (from staging[0]); those at file offsets below `position` are already written. */
  private fill = 0;
  private flushTimer: NodeJS.Timeout | null = null;
  /** A write that arrived while the flush timer's write was running. */
  private pendingWrite: (() => void) | null = null;
  private writing = false;
  /** A commit() is waiting for the bandwidth cap or for its full staging buffer to be written. */
  private committing = false;
  /** reserve() handed out the free end of staging: write() may not copy over it until commit(). */
  private reserved = false;
  private syncing = false;
  private syncError: Error | null = null;
  /** A write the flush timer started failed: the next write or the end reports it. */
  private flushError: Error | null = null;
  private unsynced = 0;
  private readonly afterIo: Array<() => void> = [];

  constructor(options: PartialWriterOptions) {
    super({ highWaterMark: options.highWaterMark, decodeStrings: false });
    this.options = options;
    this.position = options.offset;
    this.base = options.offset;
  }

  /**
   * The response side (undici) destroys its sink when the connection fails or the caller aborts.
   * Destroying would throw away the bytes still queued or staged here, which then have to be fetched
   * again; instead they are written out and the file closed, so the `.partial` holds everything that
   * arrived. Our own failures (disk, overflow) still destroy at once.
   */
  override destroy(error?: Error, ...rest: unknown[]): this {
    if (error && !this.selfFailed && !this.destroyed && !this.writableEnded) {
      this.interruption = error;
      this.end();
      return this;
    }
    // Node's internals may pass a callback the public typings do not show; hand everything on.
    return Reflect.apply(Writable.prototype.destroy, this, [error, ...rest]) as this;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    const { path, offset, prepare } = this.options;
    const ready = (): void => {
      if (!prepare) return callback();
      prepare().then(
        () => callback(),
        (prepareErr: Error) => callback(this.fail(prepareErr)),
      );
    };
    // O_CREAT without O_TRUNC, then cut to the verified length: bytes past it (a torn last write) go.
    // Read and write: a direct resume reads its last unaligned block back (readHead).
    fs.open(path, fs.constants.O_RDWR | fs.constants.O_CREAT, this.options.mode ?? 0o644, (err, fd) => {
      if (err) return callback(this.fail(err));
      this.plainFd = fd;
      this.fd = fd;
      this.staging = stagingPool(this.options.stagingBytes ?? STAGING_BYTES).acquire();
      const opened = (): void =>
        this.openDirect((directErr) => {
          if (directErr) return callback(this.fail(directErr));
          this.readHead((headErr) => (headErr ? callback(this.fail(headErr)) : ready()));
        });
      fs.fstat(fd, (statErr, stats) => {
        if (statErr) return callback(this.fail(statErr));
        // Truncate only when needed: on ext4 a truncated-then-rewritten file is flushed synchronously on
        // close (auto_da_alloc), which costs ~0.1 s per 512 MiB right where the download should finish.
        if (stats.size === offset) return opened();
        fs.ftruncate(fd, offset, (truncateErr) =>
          truncateErr ? callback(this.fail(truncateErr)) : opened(),
        );
      });
    });
  }

  /** A second fd with O_DIRECT; a filesystem without it (EINVAL: tmpfs) keeps the buffered one. */
  private openDirect(callback: (error: Error | null) => void): void {
    const direct = fs.constants.O_DIRECT;
    if (this.options.directIo === false || direct === undefined) return callback(null);
    fs.open(this.options.path, fs.constants.O_WRONLY | direct, (err, fd) => {
      if (err) return callback(err.code === "EINVAL" ? null : err);
      this.fd = fd;
      this.directIo = true;
      callback(null);
    });
  }

  /**
   * Direct writes start on an ALIGN boundary: a resume at an unaligned offset stages the bytes of its
   * last block again from the file, and the first write rewrites them (with the same bytes).
   */
  private readHead(callback: (error: Error | null) => void): void {
    const { offset } = this.options;
    const head = this.directIo ? offset % ALIGN : 0;
    this.base = offset - head;
    if (head === 0) return callback(null);
    fs.read(this.plainFd as number, this.staging as Buffer, 0, head, this.base, (err, bytesRead) => {
      if (err) return callback(err);
      if (bytesRead !== head)
        return callback(new Error(`read ${bytesRead} of the last ${head} bytes of ${this.options.path}`));
      this.fill = head;
      callback(null);
    });
  }

  /**
   * Zero-copy input for downloadFile's HTTP/1.1 client: the free end of the staging buffer, where the
   * next socket read may land (at most `max` bytes), or null when the writer cannot take bytes that
   * way now (bytes queued through write() go first; a commit is running; closed). The caller must
   * commit() what it read there before it writes or reserves again.
   */
  reserve(max: number): Buffer | null {
    const staging = this.staging;
    if (
      staging === null ||
      this.fd === null ||
      this.committing ||
      this.pendingWrite !== null ||
      this.writableLength > 0 ||
      this.destroyed ||
      this.writableEnded
    )
      return null;
    const room = Math.min(staging.length - this.fill, max);
    if (room < MIN_RESERVE_BYTES && room !== max) return null;
    this.reserved = true;
    return staging.subarray(this.fill, this.fill + room);
  }

  /**
   * Takes the bytes a read put at the start of the last reserve() (`bytes` is that region, cut to
   * the read): the same as write() of them, without the copy. Returns true when they are taken;
   * false when the caller must wait for `callback` (the bandwidth cap, a write of staging running,
   * or staging is full and being written) before it reads again. A failure fails the stream (the
   * caller sees it as the sink's error) and returns true.
   */
  commit(bytes: Buffer, callback: (error: Error | null) => void): boolean {
    if (!this.reserved) throw new Error("partial writer: commit() without reserve()");
    this.reserved = false;
    this.committing = true;
    const { bandwidth } = this.options;
    if (!bandwidth || bandwidth.bytesPerSecond === null) return this.accept(bytes, callback);
    bandwidth.take(bytes.length, this.options.signal).then(
      () => {
        if (this.accept(bytes, callback)) this.committed(callback, null);
      },
      (error: Error) => this.committed(callback, error),
    );
    return false;
  }

  /** Runs with `committing` set; returns true when done (committing cleared), false when callback follows. */
  private accept(bytes: Buffer, callback: (error: Error | null) => void): boolean {
    if (this.writing) {
      // The flush timer's write of staging is running: it may move what is staged when it lands.
      this.pendingWrite = () => {
        if (this.accept(bytes, callback)) this.committed(callback, null);
      };
      return false;
    }
    const staging = this.staging;
    const n = bytes.length;
    this.received += n;
    const done = (error: Error | null): true => {
      this.committing = false;
      if (error !== null && !this.destroyed) this.destroy(error);
      return true;
    };
    if (staging === null || this.destroyed) return done(null);
    if (this.base + this.fill + n > this.options.limit) {
      this.selfFailed = true;
      return done(this.options.onOverflow());
    }
    const deferred = this.syncError ?? this.flushError;
    if (deferred) return done(this.fail(deferred));
    // A write by the flush timer since reserve() moved the staged tail to the front: the read landed
    // where the free end was then, at or past where it is now (the bytes there were not touched).
    const at = bytes.byteOffset - staging.byteOffset;
    if (bytes.buffer !== staging.buffer || at < this.fill || at + n > staging.length)
      return done(this.fail(new Error("partial writer: commit() of bytes outside the reserved staging")));
    if (at !== this.fill) staging.copy(staging, this.fill, at, at + n);
    this.options.hash.update(staging.subarray(this.fill, this.fill + n));
    this.options.onReceived?.(n);
    this.committedBytes += n;
    this.fill += n;
    if (this.fill < staging.length) {
      this.committing = false;
      this.armFlushTimer();
      return true;
    }
    this.flush(false, (err) => this.committed(callback, err));
    return false;
  }

  private committed(callback: (error: Error | null) => void, error: Error | null): void {
    this.committing = false;
    if (error && !this.destroyed) this.destroy(this.fail(error));
    callback(error);
    this.ioSettled();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.throttled([chunk], chunk.length, callback);
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void,
  ): void {
    const buffers = new Array<Buffer>(chunks.length);
    let length = 0;
    for (let i = 0; i < chunks.length; i++) {
      const chunk = (chunks[i] as { chunk: Buffer }).chunk;
      buffers[i] = chunk;
      length += chunk.length;
    }
    this.throttled(buffers, length, callback);
  }

  /** Waits for the bandwidth cap, if any, then writes; the stream's queue (and the socket) waits meanwhile. */
  private throttled(buffers: Buffer[], length: number, callback: (error?: Error | null) => void): void {
    const { bandwidth } = this.options;
    if (!bandwidth || bandwidth.bytesPerSecond === null) return this.writeBuffers(buffers, length, callback);
    bandwidth.take(length, this.options.signal).then(
      () => this.writeBuffers(buffers, length, callback),
      (error: Error) => callback(error),
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.whenIdle(() =>
      this.flush(true, (flushErr) =>
        this.closeFds((err) =>
          callback(flushErr ?? err ?? (this.syncError ? this.fail(this.syncError) : null)),
        ),
      ),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.clearFlushTimer();
    // An abort can land while the threadpool still writes our buffers; close the fd only after that.
    this.whenIdle(() => {
      // Staged bytes that never reached the file were hashed: the hash is ahead of the file.
      if (this.base + this.fill > this.position) this.hashTainted = true;
      this.closeFds((closeErr) => callback(error ?? closeErr));
    });
  }

  private writeBuffers(buffers: Buffer[], length: number, callback: (error?: Error | null) => void): void {
    if (this.committing || this.reserved)
      return callback(new Error("partial writer: write() between reserve() and the end of its commit()"));
    if (this.writing) {
      // The flush timer's write is running: staging is not ours until it lands.
      this.pendingWrite = () => this.writeBuffers(buffers, length, callback);
      return;
    }
    this.received += length;
    const { limit, onOverflow } = this.options;
    if (this.base + this.fill + length > limit) {
      this.selfFailed = true;
      return callback(onOverflow());
    }
    const deferred = this.syncError ?? this.flushError;
    if (deferred) return callback(this.fail(deferred));
    if (this.fd === null || this.staging === null) return callback(new Error("partial file is closed"));
    this.stage(buffers, 0, 0, callback);
  }

  /** Hashes and copies buffers[index] from `from` on into staging, writing staging out each time it fills. */
  private stage(
    buffers: Buffer[],
    index: number,
    from: number,
    callback: (error?: Error | null) => void,
  ): void {
    const staging = this.staging as Buffer;
    const { hash, onReceived } = this.options;
    while (index < buffers.length) {
      const buffer = buffers[index] as Buffer;
      if (from === 0) {
        hash.update(buffer);
        onReceived?.(buffer.length);
      }
      const copied = buffer.copy(staging, this.fill, from);
      this.fill += copied;
      from += copied;
      if (from === buffer.length) {
        index++;
        from = 0;
      }
      if (this.fill === staging.length) {
        return this.flush(false, (err) => (err ? callback(err) : this.stage(buffers, index, from, callback)));
      }
    }
    this.armFlushTimer();
    callback();
  }

  /**
   * Writes the staged bytes not yet in the file. Direct: the whole blocks, the rest moved to the front
   * of staging; `final` writes that rest too, through the buffered fd. Buffered: everything.
   */
  private flush(final: boolean, callback: (error: Error | null) => void): void {
    this.clearFlushTimer();
    const staging = this.staging;
    if (staging === null || this.fd === null) return callback(null);
    const end = this.base + this.fill;
    if (end <= this.position) {
      if (this.fill === staging.length) this.recycle(this.fill);
      return callback(null);
    }
    const blocks = this.directIo ? this.fill - (this.fill % ALIGN) : 0;
    // Less than a block staged: it waits for more, unless this is the end (a buffered tail then).
    if (blocks === 0 && this.directIo && !final) return callback(null);
    const done = (err: Error | null, written: number): void => {
      this.writing = false;
      this.wrote(written);
      if (err) {
        this.hashTainted = true;
        callback(this.fail(err));
      } else {
        callback(null);
      }
      this.ioSettled();
    };
    this.writing = true;
    if (blocks === 0) {
      // Buffered (or a direct tail shorter than a block): everything from `position` on.
      const from = this.position - this.base;
      return writeAll(this.plainFd as number, [staging.subarray(from, this.fill)], this.position, (err) => {
        if (err) return done(err, 0);
        const written = end - this.position;
        this.position = end;
        this.base = end;
        this.fill = 0;
        done(null, written);
      });
    }
    writeAll(this.fd, [staging.subarray(0, blocks)], this.base, (err) => {
      if (err && (err as NodeJS.ErrnoException).code === "EINVAL") {
        // The device wants another alignment than ours: the rest of this file goes down buffered.
        this.writing = false;
        this.fallBackToBuffered();
        return this.flush(final, callback);
      }
      if (err) return done(err, 0);
      const written = this.base + blocks - this.position;
      this.recycle(blocks);
      if (!final || this.base + this.fill <= this.position) return done(null, written);
      const tail = this.base + this.fill - this.position;
      const tailAt = this.position;
      writeAll(
        this.plainFd as number,
        [staging.subarray(tailAt - this.base, this.fill)],
        tailAt,
        (tailErr) => {
          if (tailErr) return done(tailErr, written);
          this.position = tailAt + tail;
          done(null, written + tail);
        },
      );
    });
  }

  /** The first `bytes` of staging are in the file: what follows moves to the front. */
  private recycle(bytes: number): void {
    const staging = this.staging as Buffer;
    this.position = Math.max(this.position, this.base + bytes);
    staging.copy(staging, 0, bytes, this.fill);
    this.fill -= bytes;
    this.base += bytes;
  }

  private wrote(bytes: number): void {
    if (bytes <= 0) return;
    this.unsynced += bytes;
    if (this.unsynced >= this.options.syncEveryBytes) this.startSync(this.plainFd as number);
    this.options.onWritten?.(bytes);
  }

  private fallBackToBuffered(): void {
    const directFd = this.fd;
    this.fd = this.plainFd;
    this.directIo = false;
    // Nothing was written through it that the buffered fd does not see; a failed close loses nothing.
    if (directFd !== null && directFd !== this.plainFd) fs.close(directFd, () => undefined);
  }

  /** A slow link: what is staged goes to the file (and into the progress) within FLUSH_AFTER_MS. */
  private armFlushTimer(): void {
    if (this.flushTimer !== null || this.base + this.fill <= this.position) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      if (
        this.writing ||
        this.syncing ||
        this.committing ||
        this.fd === null ||
        this.writableFinished ||
        this.destroyed
      )
        return;
      this.flush(false, (err) => {
        if (err) this.flushError ??= err;
        const pending = this.pendingWrite;
        this.pendingWrite = null;
        pending?.();
      });
    }, FLUSH_AFTER_MS);
    this.flushTimer.unref();
  }

  private clearFlushTimer(): void {
    if (this.flushTimer === null) return;
    clearTimeout(this.flushTimer);
    this.flushTimer = null;
  }

  /**
   * The file must be fsynced before it is installed. Left to the end, that is one long stall writing
   * the whole file back (~0.2 s per 512 MiB here); started every syncEveryBytes it overlaps the
   * download, the final fsync has little left to do, and dirty page cache per download stays bounded.
   * A failure is not left for the final fsync to find: Linux reports a writeback error once and may
   * then call the pages clean, so the next fsync could succeed over lost bytes.
   */
  private startSync(fd: number): void {
    if (this.syncing) return;
    this.syncing = true;
    this.unsynced = 0;
    fs.fdatasync(fd, (err) => {
      this.syncing = false;
      if (err) this.syncError ??= err;
      this.ioSettled();
    });
  }

  private whenIdle(fn: () => void): void {
    if (this.writing || this.syncing || this.committing) this.afterIo.push(fn);
    else fn();
  }

  private ioSettled(): void {
    if (this.writing || this.syncing || this.committing) return;
    for (const fn of this.afterIo.splice(0)) fn();
  }

  private closeFds(callback: (error?: Error | null) => void): void {
    const fds = [this.fd, this.plainFd].filter(
      (fd, i, all): fd is number => fd !== null && all.indexOf(fd) === i,
    );
    this.fd = null;
    this.plainFd = null;
    if (this.staging !== null) stagingPool(this.staging.length).release(this.staging);
    this.staging = null;
    let first: Error | null = null;
    let left = fds.length;
    if (left === 0) return callback();
    for (const fd of fds) {
      fs.close(fd, (err) => {
        first ??= err;
        if (--left === 0) callback(first ? this.fail(first) : null);
      });
    }
  }

  private fail(err: Error): Error {
    this.selfFailed = true;
    this.localError ??= err;
    return err;
  }
}

/**
 * Staging buffers, reused from one download to the next so their memory never waits for the garbage
 * collector during a run (dropIdleStaging lets them go once the runs are over). Direct writes need ALIGN-aligned memory, which a Buffer (malloc'ed) does not promise;
 * WebAssembly memory is mmap'ed, so it starts on a page. One memory holds SLAB_SLOTS buffers.
 */
const SLAB_SLOTS = 8;
const WASM_PAGE = 64 * 1024;

class StagingPool {
  private readonly free: Buffer[] = [];
  /** Buffers writers hold now. */
  private out = 0;

  constructor(private readonly bytes: number) {}

  acquire(): Buffer {
    this.out++;
    const buffer = this.free.pop();
    if (buffer !== undefined) return buffer;
    const bytes = this.bytes;
    const pages = (SLAB_SLOTS * bytes) / WASM_PAGE;
    const slab =
      typeof WebAssembly === "object"
        ? Buffer.from(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer)
        : Buffer.allocUnsafeSlow(SLAB_SLOTS * bytes);
    for (let i = SLAB_SLOTS - 1; i > 0; i--) this.free.push(slab.subarray(i * bytes, (i + 1) * bytes));
    return slab.subarray(0, bytes);
  }

  release(buffer: Buffer): void {
    this.out--;
    this.free.push(buffer);
  }

  /**
   * Forgets the free buffers, their memory going back with the next collection of their slab; not
   * while a writer holds one: its slab stays alive anyway, and the next acquire would map another.
   */
  drop(): void {
    if (this.out === 0) this.free.length = 0;
  }
}

const pools = new Map<number, StagingPool>();

/** Staging comes in the two sizes there are pools for: a RangeError otherwise (the caller's bug). */
export function checkStagingBytes(bytes: number): void {
  if (bytes !== STAGING_BYTES && bytes !== LARGE_STAGING_BYTES)
    throw new RangeError(`stagingBytes must be STAGING_BYTES or LARGE_STAGING_BYTES, got ${bytes}`);
}

/**
 * Lets go of the staging buffers of every pool no download draws on now, for the garbage collector
 * to return (the region once an import is over, a rack after a sync): kept, they stay resident
 * until the next run.
 */
export function dropIdleStaging(): void {
  for (const pool of pools.values()) pool.drop();
}

/** One pool per staging size. */
function stagingPool(bytes: number): StagingPool {
  checkStagingBytes(bytes);
  let pool = pools.get(bytes);
  if (pool === undefined) {
    pool = new StagingPool(bytes);
    pools.set(bytes, pool);
  }
  return pool;
}

/** pwritev until every byte is down: a regular file may still take a short write (e.g. near ENOSPC). */
function writeAll(
  fd: number,
  buffers: Buffer[],
  position: number,
  callback: (err: Error | null) => void,
): void {
  fs.writev(fd, buffers, position, (err, written) => {
    if (err) return callback(err);
    let rest = written;
    let index = 0;
    while (index < buffers.length && rest >= (buffers[index] as Buffer).length) {
      rest -= (buffers[index] as Buffer).length;
      index++;
    }
    if (index === buffers.length) return callback(null);
    if (written === 0) return callback(Object.assign(new Error("write made no progress"), { code: "EIO" }));
    const remaining = buffers.slice(index);
    remaining[0] = (remaining[0] as Buffer).subarray(rest);
    writeAll(fd, remaining, position + written, callback);
  });
}
