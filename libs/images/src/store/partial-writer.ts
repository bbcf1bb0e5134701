import type { Hash } from "node:crypto";
import * as fs from "node:fs";
import { Writable } from "node:stream";
import type { BandwidthLimiter } from "./bandwidth";

// Linux IOV_MAX: one writev takes at most this many buffers.
const MAX_IOV = 1024;

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
  onOverflow: () => Error;
  highWaterMark: number;
  /** Bytes wait for this shared cap before they are written (and hashed). */
  bandwidth?: BandwidthLimiter | undefined;
  /** Start a background fdatasync after this many bytes written (see startSync). */
  syncEveryBytes: number;
};

/**
 * The sink the HTTP response streams into: appends to the `.partial` and feeds the same bytes to the
 * incremental hash, with writev batching so a fast link costs one syscall and one callback per
 * batch rather than per socket read. The hash runs on this thread while the threadpool writes the
 * same buffers, so disk and CPU overlap.
 */
export class PartialWriter extends Writable {
  /** Bytes in the file (offset + what this writer wrote). */
  position: number;
  /** Bytes handed to this writer by the response (including any it could not write). */
  received = 0;
  /** A write failed after its bytes were hashed: the hash no longer describes the file. */
  hashTainted = false;
  /** The filesystem error that failed the stream, to tell it apart from a network error. */
  localError: Error | null = null;
  /**
   * Why the response stopped early (network error, timeout, abort). The writer then finishes instead
   * of failing, so the caller sees a clean end and must check this.
   */
  interruption: Error | null = null;

  private readonly options: PartialWriterOptions;
  private selfFailed = false;
  private fd: number | null = null;
  private writing = false;
  private syncing = false;
  private syncError: Error | null = null;
  private unsynced = 0;
  private readonly afterIo: Array<() => void> = [];

  constructor(options: PartialWriterOptions) {
    super({ highWaterMark: options.highWaterMark, decodeStrings: false });
    this.options = options;
    this.position = options.offset;
  }

  /**
   * The response side (undici) destroys its sink when the connection fails or the caller aborts.
   * Destroying would throw away the chunks still queued here, up to a highWaterMark of bytes that then
   * have to be fetched again; instead the queue is written out and the file closed, so the `.partial`
   * holds everything that arrived. Our own failures (disk, overflow) still destroy at once.
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
    fs.open(path, fs.constants.O_WRONLY | fs.constants.O_CREAT, this.options.mode ?? 0o644, (err, fd) => {
      if (err) return callback(this.fail(err));
      this.fd = fd;
      fs.fstat(fd, (statErr, stats) => {
        if (statErr) return callback(this.fail(statErr));
        // Truncate only when needed: on ext4 a truncated-then-rewritten file is flushed synchronously on
        // close (auto_da_alloc), which costs ~0.1 s per 512 MiB right where the download should finish.
        if (stats.size === offset) return ready();
        fs.ftruncate(fd, offset, (truncateErr) => (truncateErr ? callback(this.fail(truncateErr)) : ready()));
      });
    });
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
    bandwidth.take(length).then(
      () => this.writeBuffers(buffers, length, callback),
      (error: Error) => callback(error),
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.whenIdle(() =>
      this.closeFd((err) => callback(err ?? (this.syncError ? this.fail(this.syncError) : null))),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // An abort can land while the threadpool still writes our buffers; close the fd only after that.
    this.whenIdle(() => this.closeFd((closeErr) => callback(error ?? closeErr)));
  }

  private writeBuffers(buffers: Buffer[], length: number, callback: (error?: Error | null) => void): void {
    this.received += length;
    const { limit, hash, onWritten, onOverflow } = this.options;
    if (this.position + length > limit) {
      this.selfFailed = true;
      return callback(onOverflow());
    }
    if (this.syncError) return callback(this.fail(this.syncError));
    const fd = this.fd;
    if (fd === null) return callback(new Error("partial file is closed"));
    const batch = buffers.length > MAX_IOV ? [Buffer.concat(buffers, length)] : buffers;
    this.writing = true;
    writeAll(fd, batch, this.position, (err) => {
      this.writing = false;
      if (err) {
        this.hashTainted = true;
        callback(this.fail(err));
      } else {
        this.position += length;
        this.unsynced += length;
        if (this.unsynced >= this.options.syncEveryBytes) this.startSync(fd);
        onWritten?.(length);
        callback();
      }
      this.ioSettled();
    });
    for (const buffer of batch) hash.update(buffer);
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
    if (this.writing || this.syncing) this.afterIo.push(fn);
    else fn();
  }

  private ioSettled(): void {
    if (this.writing || this.syncing) return;
    for (const fn of this.afterIo.splice(0)) fn();
  }

  private closeFd(callback: (error?: Error | null) => void): void {
    const fd = this.fd;
    this.fd = null;
    if (fd === null) return callback();
    fs.close(fd, (err) => callback(err ? this.fail(err) : null));
  }

  private fail(err: Error): Error {
    this.selfFailed = true;
    this.localError ??= err;
    return err;
  }
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
