/**
 * A domain's xenstore directory: the key-value store through which the toolstack and the guest
 * talk (a shared ring and an event channel in Xen; no exit per access). Only numeric values
 * are kept, under the paths Xen uses:
 * - memory/target (KiB): the balloon target, written by the host's policy;
 * - control/feature-balloon (1): written by a guest whose balloon driver runs;
 * - data/meminfo_free, data/meminfo_total (KiB): the guest's memory statistics, as the
 *   XenServer guest agent publishes them, read by an automatic policy.
 */

export const XS_TARGET = "memory/target";
export const XS_FEATURE_BALLOON = "control/feature-balloon";
export const XS_MEMINFO_FREE = "data/meminfo_free";
export const XS_MEMINFO_TOTAL = "data/meminfo_total";

export class Xenstore {
  private readonly values = new Map<string, number>();
  /** Bumped by every write of memory/target, so a watcher can tell a new target cheaply. */
  targetWrites = 0;

  read(path: string): number | undefined {
    return this.values.get(path);
  }

  write(path: string, value: number): void {
    if (!Number.isFinite(value)) throw new RangeError(`xenstore: ${path} needs a number`);
    this.values.set(path, value);
    if (path === XS_TARGET) this.targetWrites++;
  }
}
