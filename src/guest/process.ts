/** A guest process as its kernel sees it: an address space (a PML4 and VMAs) and statistics. */

import type { Gfn, Gva } from "../hw/addr.js";

export const VM_READ = 1;
export const VM_WRITE = 2;
export const VM_EXEC = 4;

export type VmaKind = "code" | "heap" | "stack" | "mmap";

/** A virtual memory area: [start, end) with one set of permissions. */
export interface Vma {
  start: Gva;
  end: Gva;
  /** VM_READ | VM_WRITE | VM_EXEC. */
  prot: number;
  kind: VmaKind;
  /** Transparent huge pages allowed (2 MiB pages where an aligned 2 MiB range fits). */
  huge: boolean;
  /**
   * Where first-touched pages get their content: from image `image` (its page imageBase + the
   * page's index in the VMA) for a share `imageShare` of the pages (1: every page, as code
   * read from its file), else zero. image 0: always zero (anonymous memory).
   */
  image: number;
  imageBase: number;
  imageShare: number;
  /**
   * Whether the area holds anonymous pages (Linux's vma->anon_vma, set by the first anonymous
   * or copied page): fork copies the page tables of such an area only; a file mapping without
   * one is refilled from the page cache by the child's faults (mm/memory.c vma_needs_copy).
   */
  anon: boolean;
}

/** A region a program asks for at exec (a recorded program's address space). */
export interface VmaLayout {
  start: Gva;
  end: Gva;
  prot: number;
  kind: VmaKind;
  /** Its pages start as the program image's (code read from the file), else as zeroes. */
  fromImage: boolean;
}

export interface Process {
  pid: number;
  name: string;
  /** Guest frame of the top-level table (PML4); -1 once the address space is gone. */
  l4Gfn: Gfn;
  /** PCID the kernel gave this address space (0 when PCIDs are not used). */
  pcid: number;
  vmas: Vma[];
  parent: Process | null;
  alive: boolean;
  /** 4 KiB pages mapped (resident set), for the OOM killer and reports. */
  rss: number;
  /** User accesses made. */
  accesses: number;
  /** True page faults taken. */
  faults: number;
  /** A running digest of the values this process read: equal across modes for the same run. */
  readHash: number;
  /** Why the process died, if it did. */
  killedBy: "" | "segv" | "oom";
  /** The address space changed while not loaded: its next CR3 load must flush its PCID. */
  tlbStale: boolean;
}

/**
 * Whether the area maps its image whole (a program's text, a trace's code regions): a file
 * mapping whose pages come from the page cache (page-cache.ts). An area with only a share of
 * image pages (a heap with image_data below 1) is anonymous memory the loader filled.
 */
export function isFileMapping(vma: Vma): boolean {
  return vma.image !== 0 && vma.imageShare >= 1;
}

export function findVma(proc: Process, gva: Gva): Vma | null {
  for (const vma of proc.vmas) if (gva >= vma.start && gva < vma.end) return vma;
  return null;
}
