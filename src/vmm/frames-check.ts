/**
 * The host's frame accounting, checked from outside: every frame has exactly one owner, and the
 * allocator's count per owner kind and of free frames agree with the frames themselves
 * (invariant 3: free + domains + shadow pools + VMM tables + shared = all frames).
 */

import type { HostFrames } from "./frames.js";

export function checkHostFrames(frames: HostFrames): string | null {
  const counts = new Float64Array(frames.byOwner.length);
  for (let mfn = 0; mfn < frames.frames; mfn++) counts[frames.owner[mfn]]++;
  for (let o = 0; o < counts.length; o++) {
    if (counts[o] !== frames.byOwner[o]) {
      return `host frames: ${counts[o]} frames have owner kind ${o} but the allocator counts ${frames.byOwner[o]}`;
    }
  }
  if (frames.byOwner[0] !== frames.free)
    return "host frames: the free list and the owner counts disagree";
  return null;
}
