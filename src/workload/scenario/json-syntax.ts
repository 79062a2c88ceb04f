/**
 * JSON's own grammar (RFC 8259), for scenario files named .json: YAML would accept what JSON
 * does not (a trailing comma, a comment, a bare word), so a .json file is checked as JSON first,
 * and its first mistake named by offset. One loop with an explicit stack: no recursion, so
 * nesting depth costs no call stack.
 */

/** A mistake: where (an offset into the text) and what was expected. */
export interface JsonMistake {
  offset: number;
  message: string;
}

const WS = /[ \t\n\r]*/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
/** A string: no raw control characters (U+0000 to U+001F), valid escapes. */
const C0 = "\\u0000-\\u001f";
const STRING = new RegExp(`"(?:[^"\\\\${C0}]|\\\\(?:["\\\\/bfnrt]|u[0-9a-fA-F]{4}))*"`, "y");
const WORD = /true|false|null/y;

/** What a piece of text is, for "got ..." (the next character, or the end). */
function got(text: string, i: number): string {
  return i >= text.length ? "the end of the file" : JSON.stringify(text[i]);
}

/** Whether a "]" or "}" at i follows a comma: the trailing comma JSON does not allow. */
function afterComma(text: string, i: number): boolean {
  let j = i - 1;
  while (j >= 0 && " \t\n\r".includes(text[j])) j--;
  return j >= 0 && text[j] === "," && (text[i] === "]" || text[i] === "}");
}

/** The first mistake in `text` as JSON, or null when it is one JSON value. */
export function jsonMistake(text: string): JsonMistake | null {
  let i = 0;
  const skip = () => {
    WS.lastIndex = i;
    WS.exec(text);
    i = WS.lastIndex;
  };
  const match = (re: RegExp) => {
    re.lastIndex = i;
    if (!re.test(text)) return false;
    i = re.lastIndex;
    return true;
  };
  const fail = (expected: string): JsonMistake =>
    afterComma(text, i)
      ? {
          offset: i,
          message: `a comma before ${JSON.stringify(text[i])} (JSON allows no trailing comma)`,
        }
      : { offset: i, message: `expected ${expected}, got ${got(text, i)}` };
  // Each open container: "}" or "]", what closes it.
  const stack: string[] = [];
  for (;;) {
    // A value.
    skip();
    const c = text[i];
    if (c === "{" || c === "[") {
      i++;
      skip();
      const close = c === "{" ? "}" : "]";
      if (text[i] === close) {
        i++;
      } else {
        stack.push(close);
        if (close === "}") {
          if (!match(STRING)) return fail('a key in double quotes or "}"');
          skip();
          if (text[i] !== ":") return fail('":" after the key');
          i++;
        }
        continue;
      }
    } else if (c === '"') {
      if (!match(STRING)) {
        return fail("a string with no control characters and valid escapes, closed by a quote");
      }
    } else if (!match(NUMBER) && !match(WORD)) {
      return fail("a value (a string, number, true, false, null, list or mapping)");
    }
    // After a value: close containers, or go on to the next item.
    for (;;) {
      skip();
      const close = stack[stack.length - 1];
      if (close === undefined) {
        return i === text.length ? null : fail("the end of the file after the value");
      }
      if (text[i] === close) {
        stack.pop();
        i++;
        continue;
      }
      if (text[i] !== ",") return fail(`"," or "${close}"`);
      i++;
      if (close === "}") {
        skip();
        if (!match(STRING)) return fail("a key in double quotes");
        skip();
        if (text[i] !== ":") return fail('":" after the key');
        i++;
      }
      break;
    }
  }
}
