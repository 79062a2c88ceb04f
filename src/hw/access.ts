/**
 * Access kinds and permission masks. A kind is a small integer, so that a permission check is a
 * shift and a mask: kind = (user ? 3 : 0) + (read 0 | write 1 | fetch 2). A permission mask has
 * bit `kind` set when that kind of access is allowed.
 */

export const ACC_READ = 0;
export const ACC_WRITE = 1;
export const ACC_FETCH = 2;
/** Added to a kind for a user-mode (CPL 3) access. */
export const ACC_USER = 3;

export const KIND_SUP_READ = 0;
export const KIND_SUP_WRITE = 1;
export const KIND_SUP_FETCH = 2;
export const KIND_USER_READ = 3;
export const KIND_USER_WRITE = 4;
export const KIND_USER_FETCH = 5;

/** Mask of the two write kinds: a TLB entry for a clean page leaves them out (see tlb.ts). */
export const MASK_WRITES = (1 << KIND_SUP_WRITE) | (1 << KIND_USER_WRITE);
export const MASK_ALL = 0x3f;

export function isWriteKind(kind: number): boolean {
  return kind === KIND_SUP_WRITE || kind === KIND_USER_WRITE;
}

export function isUserKind(kind: number): boolean {
  return kind >= ACC_USER;
}

export function isFetchKind(kind: number): boolean {
  return kind === KIND_SUP_FETCH || kind === KIND_USER_FETCH;
}

export const KIND_NAMES = [
  "supervisor read",
  "supervisor write",
  "supervisor fetch",
  "user read",
  "user write",
  "user fetch",
] as const;
