/**
 * The guest kernel model: boots on a vCPU, builds its direct map, and runs processes with real
 * 4-level page tables in its own guest-physical memory. It touches memory only through the vCPU
 * (GuestCpu) and changes page tables only through PagingOps, so a VMM behind the vCPU sees what
 * it would see of a real kernel. Mechanisms live beside it: fault.ts (demand paging and
 * copy-on-write), page-cache.ts and file-fault.ts (image pages shared through the page cache,
 * fault-around), fork.ts, unmap.ts (munmap, mprotect, teardown).
 */

import { type Gfn, type Gva, tableIndex } from "../hw/addr.js";
import { imageId, imagePageDigest } from "../hw/memory.js";
import { isPresent, PTE_A, PTE_D, PTE_G, PTE_P, PTE_PS, PTE_RW, pteHi, pteLo } from "../hw/pte.js";
import { type GuestCpu, XLATE_FAULT } from "../hw/vcpu-interfaces.js";
import {
  C_CONTEXT_SWITCHES,
  C_EXECS,
  C_EXITS,
  C_MMAPS,
  C_MPROTECTS,
  C_MUNMAPS,
} from "../metrics/counters.js";
import type { BalloonDriver } from "./balloon.js";
import { FAULT_AROUND_PAGES } from "./file-fault.js";
import { FrameAllocator } from "./frame-alloc.js";
import {
  DIRECT_MAP_BASE,
  directMap,
  directMapHi,
  directMapLo,
  FIRST_KERNEL_L4_INDEX,
  USER_CODE_BASE,
  USER_HEAP_BASE,
  USER_MMAP_TOP,
  USER_STACK_SIZE,
  USER_STACK_TOP,
} from "./layout.js";
import { PageCache, SWAP_CLUSTER_MAX } from "./page-cache.js";
import { PageTables } from "./pagetable.js";
import type { PagingOps } from "./paging-ops.js";
import { type Process, VM_EXEC, VM_READ, VM_WRITE, type Vma, type VmaLayout } from "./process.js";
import { protectRange, teardown, unmapRange } from "./unmap.js";

/** The image a process runs: what exec maps. */
export interface ProcessImage {
  /** Bytes of code, mapped read-only and executable at USER_CODE_BASE. */
  code: number;
  /** Bytes of heap (anonymous, writable) at USER_HEAP_BASE. */
  heap: number;
  /** Whether the heap may use 2 MiB pages. */
  hugeHeap: boolean;
  /**
   * The program's file: its code pages are read from it; a share `imageData` of the heap's
   * pages starts as data from the same file (the rest as zeroes). The same name gives the same
   * content in every domain (the same OS and programs); none: anonymous, zero-filled code.
   */
  name?: string;
  imageData?: number;
  /**
   * The address space of a recorded program (a trace's regions), instead of the default code,
   * heap and stack; code and heap above are then unused.
   */
  layout?: readonly VmaLayout[];
}

/** Image pages where a heap's data starts (after any program's code). */
export const IMAGE_DATA_BASE = 2 ** 20;

export interface KernelOptions {
  /** Map the direct map with 1 GiB pages (needs hardware 1 GiB page support). */
  gigaPages: boolean;
  /** Give each address space a PCID so that context switches need not flush the TLB. */
  pcid: boolean;
  /** The OS image whose pages the kernel's reserved frames hold (none: they stay zero). */
  osImage?: string;
  /**
   * Share image pages through the page cache (default true); false: each process reads its
   * own private copy of every image page it touches, as before the page cache.
   */
  pageCache?: boolean;
  /**
   * Pages of fault-around (Linux's fault_around_bytes / 4096): a power of two from 1 (off) to
   * 512; FAULT_AROUND_PAGES (16) by default.
   */
  faultAroundPages?: number;
}

/** Flags of a direct-map leaf: kernel data, global, never executable (NX in the high half). */
export const DIRECT_MAP_LEAF = PTE_P | PTE_RW | PTE_A | PTE_D | PTE_G;

/** Guest frames the kernel keeps for itself at boot (real mode area, kernel image). */
export const KERNEL_RESERVED_FRAMES = 256;

export class Kernel {
  readonly frames: FrameAllocator;
  readonly pt: PageTables;
  readonly processes: Process[] = [];
  /** The kernel's own PML4 (swapper_pg_dir), used when no process runs. */
  initL4: Gfn = -1;
  current: Process | null = null;
  private nextPid = 1;
  /** PCIDs not held by a live address space (1..4095; 0 means "always flush"). */
  private readonly freePcids: number[] = [];
  /** Frames free right after boot: the baseline a clean teardown returns to (-1 until then). */
  bootFreeFrames = -1;
  /** Frames the kernel took at boot for its own tables (direct map). */
  private readonly bootTables: Gfn[] = [];
  /** The balloon driver, when the platform has a VMM and the domain runs one. */
  balloon: BalloonDriver | null = null;
  /** The frames holding image pages, shared by the processes that map them. */
  readonly pageCache: PageCache;
  /** Whether file mappings go through the page cache (KernelOptions.pageCache). */
  readonly usePageCache: boolean;
  /** Pages mapped around a read fault on a file page (1: none but the page). */
  readonly faultAroundPages: number;

  constructor(
    readonly cpu: GuestCpu,
    readonly ops: PagingOps,
    readonly memFrames: number,
    readonly counters: Float64Array,
    readonly options: KernelOptions,
  ) {
    if (memFrames < KERNEL_RESERVED_FRAMES + 512) {
      throw new RangeError(`a guest needs at least ${KERNEL_RESERVED_FRAMES + 512} frames`);
    }
    this.frames = new FrameAllocator(memFrames, KERNEL_RESERVED_FRAMES);
    this.pt = new PageTables(ops, this.frames, memFrames, (gfn) => this.zeroFrame(gfn), counters);
    this.pageCache = new PageCache(this.frames, cpu, counters, memFrames);
    this.usePageCache = options.pageCache ?? true;
    const around = options.faultAroundPages ?? FAULT_AROUND_PAGES;
    if (
      !(Number.isInteger(around) && around >= 1 && around <= 512 && (around & (around - 1)) === 0)
    ) {
      throw new RangeError(`fault-around of ${around} pages: a power of two from 1 to 512`);
    }
    this.faultAroundPages = around;
    // Direct reclaim before the OOM killer (__alloc_pages_direct_reclaim, mm/page_alloc.c).
    this.frames.reclaim = () => this.pageCache.reclaim(SWAP_CLUSTER_MAX);
    if (options.pcid) for (let p = 4095; p >= 1; p--) this.freePcids.push(p);
  }

  /**
   * Early boot, with paging off: build the direct map (global, NX; 2 MiB or 1 GiB pages, or
   * 4 KiB pages when the paging operations offer no large pages, as on Xen PV) in tables written
   * by early stores (PagingOps.setPteEarly), load CR3 and turn paging on.
   */
  boot(): void {
    const take = (): Gfn => {
      const gfn = this.frames.alloc();
      if (gfn < 0) throw new Error("guest kernel: out of memory at boot");
      for (let i = 0; i < 512; i++) this.cpu.storePhys64(gfn * 4096 + i * 8, 0, 0);
      this.frames.refcount[gfn] = 1;
      this.bootTables.push(gfn);
      return gfn;
    };
    // The boot loader reads the kernel's image into its reserved frames.
    if (this.options.osImage !== undefined) {
      const id = imageId(this.options.osImage);
      for (let gfn = 0; gfn < KERNEL_RESERVED_FRAMES; gfn++) {
        this.cpu.dmaWrite(gfn, imagePageDigest(id, gfn));
      }
    }
    const ops = this.ops;
    const table = PTE_P | PTE_RW | PTE_A | PTE_D;
    const l4 = take();
    const l3 = take();
    ops.setPteEarly(l4, tableIndex(DIRECT_MAP_BASE, 4), pteLo(l3, table), pteHi(l3, false));
    const gib = Math.ceil(this.memFrames / 262144);
    for (let g = 0; g < gib; g++) {
      const slot = tableIndex(DIRECT_MAP_BASE, 3) + g;
      if (this.options.gigaPages) {
        const leaf = DIRECT_MAP_LEAF | PTE_PS;
        ops.setPteEarly(l3, slot, pteLo(g * 262144, leaf), pteHi(g * 262144, true));
        continue;
      }
      const l2 = take();
      ops.setPteEarly(l3, slot, pteLo(l2, table), pteHi(l2, false));
      for (let i = 0; i < 512; i++) {
        const gfn = g * 262144 + i * 512;
        if (gfn >= this.memFrames) break;
        if (ops.largePages) {
          const leaf = DIRECT_MAP_LEAF | PTE_PS;
          ops.setPteEarly(l2, i, pteLo(gfn, leaf), pteHi(gfn, true));
          continue;
        }
        // No PSE (a PV guest): 4 KiB pages, as Linux's direct map on Xen PV.
        const l1 = take();
        ops.setPteEarly(l2, i, pteLo(l1, table), pteHi(l1, false));
        for (let j = 0; j < 512 && gfn + j < this.memFrames; j++) {
          ops.setPteEarly(l1, j, pteLo(gfn + j, DIRECT_MAP_LEAF), pteHi(gfn + j, true));
        }
      }
    }
    this.initL4 = l4;
    ops.writeCr3(l4 * 4096, 0, false);
    this.cpu.enablePaging();
    this.bootFreeFrames = this.frames.freeCount;
  }

  /** Whether gfn is one of the kernel's boot-time tables (not a user frame). */
  isKernelFrame(gfn: Gfn): boolean {
    return this.bootTables.includes(gfn);
  }

  /** Zero a guest frame through the direct map (rep stosq). */
  zeroFrame(gfn: Gfn): void {
    if (this.cpu.zeroPageHalves(directMapLo(gfn, 0), directMapHi(gfn)) === XLATE_FAULT) {
      throw new Error(`guest kernel: fault zeroing gfn ${gfn}`);
    }
  }

  /**
   * First content of a new page of `vma` at `gva`: read from the VMA's image (a disk read into
   * the frame) or zeroed, as the VMA says.
   */
  fillFrame(gfn: Gfn, vma: Vma, gva: Gva): void {
    const page = vma.imageBase + Math.floor((gva - vma.start) / 4096);
    if (vma.image !== 0 && imageHas(vma.image, page, vma.imageShare)) {
      this.cpu.dmaWrite(gfn, imagePageDigest(vma.image, page));
    } else this.zeroFrame(gfn);
  }

  /** Copy guest frame `src` to `dst` through the direct map (rep movsq). */
  copyFrame(dst: Gfn, src: Gfn): void {
    if (this.cpu.copyPage(directMap(dst), directMap(src)) === XLATE_FAULT) {
      throw new Error(`guest kernel: fault copying gfn ${src} to ${dst}`);
    }
  }

  /** A fresh PML4 with the kernel half shared from the init table (clone_pgd_range). */
  newAddressSpace(): Gfn {
    const l4 = this.pt.allocTable(4);
    if (l4 < 0) return -1;
    for (let i = FIRST_KERNEL_L4_INDEX; i < 512; i++) {
      this.pt.read(this.initL4, i);
      if (isPresent(this.pt.lo)) this.pt.set(l4, i, this.pt.lo, this.pt.hi, false);
    }
    return l4;
  }

  /** Start a process running `image` (fork of init followed by exec, in one step). */
  spawn(name: string, image: ProcessImage): Process | null {
    const proc: Process = {
      pid: this.nextPid++,
      name,
      l4Gfn: -1,
      pcid: 0,
      vmas: [],
      parent: null,
      alive: true,
      rss: 0,
      accesses: 0,
      faults: 0,
      readHash: 0,
      killedBy: "",
      tlbStale: false,
    };
    if (!this.exec(proc, image)) return null;
    this.processes.push(proc);
    return proc;
  }

  /** A process record for a fork child (fork.ts fills its address space). */
  newChild(parent: Process): Process {
    const child: Process = {
      pid: this.nextPid++,
      name: parent.name,
      l4Gfn: -1,
      pcid: 0,
      vmas: parent.vmas.map((v) => ({ ...v })),
      parent,
      alive: true,
      rss: 0,
      accesses: 0,
      faults: 0,
      readHash: 0,
      killedBy: "",
      tlbStale: false,
    };
    child.pcid = this.allocPcid(child);
    return child;
  }

  register(proc: Process): void {
    this.processes.push(proc);
  }

  /** A PCID for a new address space; its first load flushes what an earlier owner left. */
  private allocPcid(proc: Process): number {
    proc.tlbStale = true;
    return this.freePcids.pop() ?? 0;
  }

  private freePcid(pcid: number): void {
    if (pcid !== 0) this.freePcids.push(pcid);
  }

  /** Linux's layout for a program: code, heap and stack where layout.ts puts them. */
  private defaultLayout(image: ProcessImage, code: number, id: number): Vma[] {
    return [
      {
        start: USER_CODE_BASE,
        end: USER_CODE_BASE + code,
        prot: VM_READ | VM_EXEC,
        kind: "code",
        huge: false,
        image: id,
        imageBase: 0,
        imageShare: 1,
        anon: false,
      },
      {
        start: USER_HEAP_BASE,
        end: USER_HEAP_BASE + roundUp(image.heap, 4096),
        prot: VM_READ | VM_WRITE,
        kind: "heap",
        huge: image.hugeHeap,
        image: id,
        imageBase: IMAGE_DATA_BASE,
        imageShare: image.imageData ?? 0,
        anon: false,
      },
      {
        start: USER_STACK_TOP - USER_STACK_SIZE,
        end: USER_STACK_TOP,
        prot: VM_READ | VM_WRITE,
        kind: "stack",
        huge: false,
        image: 0,
        imageBase: 0,
        imageShare: 0,
        anon: false,
      },
    ];
  }

  /** Replace the process's address space with a fresh image. Returns false when out of memory. */
  exec(proc: Process, image: ProcessImage): boolean {
    const l4 = this.newAddressSpace();
    if (l4 < 0) return false;
    this.counters[C_EXECS]++;
    const old = proc.l4Gfn;
    const oldVmas = proc.vmas;
    const code = roundUp(image.code, 4096);
    const id = image.name === undefined ? 0 : imageId(image.name);
    proc.vmas = image.layout
      ? image.layout.map((r) => ({
          start: r.start,
          end: r.end,
          prot: r.prot,
          kind: r.kind,
          huge: false,
          image: r.fromImage ? id : 0,
          // Each region its own pages of the image: one region's page n is not another's.
          imageBase: r.start / 4096,
          imageShare: r.fromImage ? 1 : 0,
          anon: false,
        }))
      : this.defaultLayout(image, code, id);
    proc.l4Gfn = l4;
    const oldPcid = proc.pcid;
    proc.pcid = this.allocPcid(proc);
    if (old >= 0) {
      // exec_mmap: switch to the new mm, then drop the old one (no longer loaded).
      if (this.current === proc) this.loadCr3(proc);
      teardown(this, old, oldVmas, null);
      this.pt.freeTable(old);
      this.freePcid(oldPcid);
    }
    proc.rss = 0;
    return true;
  }

  /** Terminate a process: unmap everything, free its page tables and its PML4. */
  exit(proc: Process, why: "" | "segv" | "oom" = ""): void {
    if (!proc.alive) return;
    this.counters[C_EXITS]++;
    this.cpu.events?.push({
      kind: "process-exit",
      count: proc.pid,
      note: `${proc.name}${why ? ` (${why})` : ""}`,
    });
    proc.alive = false;
    proc.killedBy = why;
    const l4 = proc.l4Gfn;
    const vmas = proc.vmas;
    proc.vmas = [];
    // The dying mm stays loaded while it is zapped (exit_mmap), then the CPU moves to the
    // kernel's own tables before the PML4 is freed.
    teardown(this, l4, vmas, this.current === proc ? proc : null);
    if (this.current === proc) this.switchTo(null);
    proc.l4Gfn = -1;
    this.pt.freeTable(l4);
    this.freePcid(proc.pcid);
    const i = this.processes.indexOf(proc);
    if (i >= 0) this.processes.splice(i, 1);
    proc.rss = 0;
  }

  /** Context switch: load the address space of `proc` (or the kernel's for null). */
  switchTo(proc: Process | null): void {
    if (proc === this.current) return;
    if (proc !== null && !proc.alive)
      throw new Error(`guest kernel: switch to dead pid ${proc.pid}`);
    this.counters[C_CONTEXT_SWITCHES]++;
    this.current = proc;
    this.loadCr3(proc);
  }

  /**
   * Load CR3 for `proc`. Without PCIDs every load flushes; with them, only the first load of a
   * PCID, or one after the address space changed while it was not loaded (Linux tracks this with
   * tlb_gen), flushes.
   */
  private loadCr3(proc: Process | null): void {
    if (proc === null) {
      this.ops.writeCr3(this.initL4 * 4096, 0, false);
      return;
    }
    const noFlush = this.options.pcid && proc.pcid !== 0 && !proc.tlbStale;
    proc.tlbStale = false;
    this.ops.writeCr3(proc.l4Gfn * 4096, proc.pcid, noFlush);
  }

  /** Map `size` bytes of anonymous memory below the previous mappings. Returns the gva, or -1. */
  mmap(proc: Process, size: number, prot: number, huge: boolean): Gva {
    this.counters[C_MMAPS]++;
    const length = roundUp(size, huge ? 2 ** 21 : 4096);
    let top = USER_MMAP_TOP;
    for (const vma of proc.vmas) if (vma.kind === "mmap" && vma.start < top) top = vma.start;
    const start = top - length;
    proc.vmas.push({
      start,
      end: top,
      prot,
      kind: "mmap",
      huge,
      image: 0,
      imageBase: 0,
      imageShare: 0,
      anon: false,
    });
    return start;
  }

  /** Unmap [start, start+size): free its pages and empty page tables, flush the TLB range. */
  munmap(proc: Process, start: Gva, size: number): void {
    this.counters[C_MUNMAPS]++;
    unmapRange(this, proc, start, start + roundUp(size, 4096));
  }

  /** Change the permissions of [start, start+size) to `prot`. */
  mprotect(proc: Process, start: Gva, size: number, prot: number): void {
    this.counters[C_MPROTECTS]++;
    protectRange(this, proc, start, start + roundUp(size, 4096), prot);
  }

  /** Flush the TLB for a range as Linux's flush_tlb_range: page by page up to a ceiling. */
  flushRange(proc: Process, start: Gva, end: Gva, pages: number): void {
    if (pages === 0) return;
    if (this.current !== proc) {
      proc.tlbStale = true; // entries tagged with its PCID may survive: flush on next load
      return;
    }
    if (pages > TLB_SINGLE_PAGE_FLUSH_CEILING) {
      proc.tlbStale = true;
      this.loadCr3(proc);
      return;
    }
    for (let gva = start; gva < end; gva += 4096) this.ops.flushTlbOne(gva);
  }

  /** Frames in use by processes and their tables (what a clean exit must give back). */
  framesInUse(): number {
    // A boot that did not finish (the VMM crashed the domain) started no process.
    if (this.bootFreeFrames < 0) return 0;
    return this.bootFreeFrames - this.frames.freeCount;
  }

  /**
   * Drop one reference to a data frame; free it when none is left. A page-cache frame keeps the
   * cache's reference: its last unmapping makes it reclaimable, not free.
   */
  putFrame(gfn: Gfn): void {
    const n = --this.frames.refcount[gfn];
    if (n === 0) this.frames.release(gfn);
    else if (n === 1 && this.pageCache.cached[gfn] === 1) this.pageCache.lastUnmapped(gfn);
    else if (n < 0) throw new Error(`guest kernel: refcount underflow on gfn ${gfn}`);
  }

  alive(): Process[] {
    return this.processes.filter((p) => p.alive);
  }
}

/** Whether page `page` of an image is in the share of pages that come from it (a fixed choice). */
function imageHas(id: number, page: number, share: number): boolean {
  if (share >= 1) return true;
  if (share <= 0) return false;
  return imagePageDigest(id ^ 0x2545f491, page) / 4294967296 < share;
}

/** Linux's tlb_single_page_flush_ceiling: above this many pages, flush the whole TLB. */
export const TLB_SINGLE_PAGE_FLUSH_CEILING = 33;

export function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}
