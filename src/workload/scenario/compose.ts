/**
 * YAML text to one Document, in yaml's two stages with checks between them: the parser's tokens
 * (made without recursion) are counted as documents and measured for nesting before the
 * composer, which recurses once per level, builds the document (a file nested a thousand deep
 * would overflow the call stack there).
 */

import { Composer, type CST, type Document, Parser } from "yaml";
import { SCENARIO_DEPTH_MAX } from "../../config/limits.js";

/** A problem found in the tokens, at an offset into the text. */
export interface TokenProblem {
  offset: number;
  message: string;
}

/** The offset of the first collection nested deeper than `max`, or -1. */
function tooDeep(tokens: readonly CST.Token[], max: number): number {
  const stack: [CST.Token | null | undefined, number][] = tokens.map((t) => [t, 0]);
  while (stack.length > 0) {
    const [token, depth] = stack.pop() as [CST.Token | null | undefined, number];
    if (token === null || token === undefined) continue;
    if (token.type === "document") {
      stack.push([token.value, depth]);
    } else if (
      token.type === "block-map" ||
      token.type === "block-seq" ||
      token.type === "flow-collection"
    ) {
      if (depth + 1 > max) return token.offset;
      for (const item of token.items) {
        stack.push([item.key, depth + 1], [item.value, depth + 1]);
      }
    }
  }
  return -1;
}

/**
 * The one document of `text`, or the problem that stops it: more than one document, or lists
 * and mappings nested deeper than SCENARIO_DEPTH_MAX. `onNewLine` feeds a LineCounter.
 */
export function composeOne(
  text: string,
  onNewLine: (offset: number) => void,
  options: ConstructorParameters<typeof Composer>[0],
): Document | TokenProblem {
  const tokens = Array.from(new Parser(onNewLine).parse(text));
  const documents = tokens.filter((t) => t.type === "document");
  if (documents.length > 1) {
    return {
      offset: documents[1].offset,
      message: `the file holds ${documents.length} YAML documents (separated by ---); a scenario is one`,
    };
  }
  const deep = tooDeep(tokens, SCENARIO_DEPTH_MAX);
  if (deep >= 0) {
    return {
      offset: deep,
      message: `lists and mappings nested more than ${SCENARIO_DEPTH_MAX} deep (a scenario needs 6)`,
    };
  }
  let doc: Document | undefined;
  for (const d of new Composer(options).compose(tokens, true, text.length)) doc ??= d;
  return doc as Document;
}
