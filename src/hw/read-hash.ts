/**
 * The read hash: a running checksum of the values a process's reads returned, in order, which
 * the differential suites compare between paging modes (every mode must look the same to the
 * guest). One read folds in as an FNV-1a-like step (xor, then multiply by the 32-bit FNV prime
 * 0x01000193), plus one so that a read of 0 still moves it. As int32 or uint32 the bits are the
 * same; callers keep a process's hash as uint32.
 */
export function foldRead(hash: number, value: number): number {
  return (Math.imul(hash ^ value, 0x01000193) + 1) | 0;
}
