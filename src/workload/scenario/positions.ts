/**
 * Where a path of the scenario stands in its YAML source, through aliases (`*name`) and merge
 * keys (`<<: *name`): a value written once in an anchored mapping is found where it is written.
 */

import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type Pair,
  visit,
  type YAMLMap,
  type Node as YamlNode,
} from "yaml";
import type { Segment } from "./problems.js";

/** A source offset to its 1-based line and column. */
export type Pos = (offset: number) => { line: number; column: number };

/** Whether a pair's key is YAML's merge key `<<` (plain, with merge keys enabled). */
export function isMergeKey(key: unknown): boolean {
  return isScalar(key) && typeof key.value === "symbol";
}

/**
 * What a merge key's value merges, in order: one node (a mapping or an alias of one) or each
 * item of a list, as written (`node`) and resolved (`source`, undefined for an alias that names
 * no anchor).
 */
export function mergeSources(doc: Document, value: unknown): { node: unknown; source: unknown }[] {
  const list = isAlias(value) ? value.resolve(doc) : value;
  const items: unknown[] = isSeq(list) ? list.items : [value];
  return items.map((node) => ({ node, source: isAlias(node) ? node.resolve(doc) : node }));
}

/**
 * The pair that gives `map` its key `key` in the data: its own pair, else the first merged
 * mapping's, as YAML merges them (own keys win over merged ones, and earlier merged mappings
 * over later ones). toJS has already refused cyclic merges.
 */
function pairOf(doc: Document, map: YAMLMap, key: string): Pair | undefined {
  const own = map.items.find(
    (p) => isScalar(p.key) && !isMergeKey(p.key) && String(p.key.value) === key,
  );
  if (own) return own;
  for (const merge of map.items) {
    if (!isMergeKey(merge.key)) continue;
    for (const { source } of mergeSources(doc, merge.value)) {
      const pair = isMap(source) ? pairOf(doc, source, key) : undefined;
      if (pair) return pair;
    }
  }
  return undefined;
}

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
      const pair = pairOf(doc, node, String(seg));
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

/**
 * Where an alias error of toJS points: the first alias that names no anchor (before it), else
 * the first alias (too many of them), or 0.
 */
export function aliasErrorOffset(doc: Document): number {
  let first: number | undefined;
  let unresolved: number | undefined;
  visit(doc, {
    Alias(_, node) {
      const offset = node.range?.[0] ?? 0;
      first ??= offset;
      if (node.resolve(doc) !== undefined) return;
      unresolved = offset;
      return visit.BREAK;
    },
  });
  return unresolved ?? first ?? 0;
}
