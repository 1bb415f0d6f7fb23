const SPACE = /[ \t\n\r]*/y;
const ESCAPE = /["\\/bfnrt]|u[0-9a-fA-F]{4}/y;
const SCALAR = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;

/**
 * Where `text` stops being JSON: the offset of the first character a JSON parser must refuse
 * (`text.length` when the text ends too soon), or -1 when it is valid. JSON.parse's own
 * messages quote the input, and an archive's input is not ours to echo: this gives only a
 * position. Iterative, so deep nesting cannot overflow the stack.
 */
export function jsonErrorOffset(text: string): number {
  let at = 0;
  const match = (pattern: RegExp): boolean => {
    pattern.lastIndex = at;
    if (!pattern.test(text)) return false;
    at = pattern.lastIndex;
    return true;
  };
  /** Steps over a string at `at`; false (with `at` on the bad character) when it is not one. */
  const string = (): boolean => {
    if (text[at] !== '"') return false;
    for (at++; at < text.length; ) {
      const code = text.charCodeAt(at);
      if (code === 0x22) {
        at++;
        return true;
      }
      if (code < 0x20) return false;
      at++;
      if (code === 0x5c && !match(ESCAPE)) return false; // a backslash, then what it escapes
    }
    return false;
  };
  const open: string[] = [];
  let state: 'value' | 'key' | 'after' = 'value';
  for (;;) {
    match(SPACE);
    const char = text[at];
    if (state === 'key') {
      if (!string()) return at;
      match(SPACE);
      if (text[at] !== ':') return at;
      at++;
      state = 'value';
    } else if (state === 'value') {
      if (char === '{' || char === '[') {
        open.push(char);
        at++;
        match(SPACE);
        if (text[at] === (char === '{' ? '}' : ']')) {
          open.pop();
          at++;
          state = 'after';
        } else state = char === '{' ? 'key' : 'value';
      } else if (char === '"' ? string() : match(SCALAR)) state = 'after';
      else return at;
    } else {
      const container = open.at(-1);
      if (container === undefined) return at === text.length ? -1 : at;
      if (char === ',') {
        at++;
        state = container === '{' ? 'key' : 'value';
      } else if (char === (container === '{' ? '}' : ']')) {
        open.pop();
        at++;
      } else return at;
    }
  }
}
