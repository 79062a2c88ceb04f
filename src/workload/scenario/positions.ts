/** Where a path of the scenario stands in its YAML source. */

import { type Document, isAlias, isMap, isScalar, isSeq, visit, type Node as YamlNode } from "yaml";
import type { Segment } from "./problems.js";

/** A source offset to its 1-based line and column. */
export type Pos = (offset: number) => { line: number; column: number };

/**
 * The source offset for path: the value's node (or the key's, when `at` is "key"); for a path
 * that does not exist, the deepest node that does.
 */
export function offsetAt(doc: Document, path: readonly Segment[], at: "value" | "key"): number {
  let node: unknown = doc.contents;
  let offset = (doc.contents as YamlNode | null)?.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) return offset;
      const keyOffset = (pair.key as YamlNode).range?.[0] ?? offset;
      node = pair.value;
      const valueOffset = (node as YamlNode | null)?.range?.[0];
      offset = at === "key" && i === path.length - 1 ? keyOffset : (valueOffset ?? keyOffset);
    } else if (isSeq(node) && typeof seg === "number" && seg < node.items.length) {
      node = node.items[seg];
      offset = (node as YamlNode | null)?.range?.[0] ?? offset;
    } else {
      return offset;
    }
  }
  return offset;
}

/** The offset of the first alias in doc, or 0. */
export function firstAliasOffset(doc: Document): number {
  let offset = 0;
  visit(doc, {
    Alias(_, node) {
      offset = node.range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  return offset;
}
