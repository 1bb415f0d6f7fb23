import { isScalar, LineCounter, parseDocument, visit } from 'yaml';
import { ConfigError } from '../errors.js';

/**
 * Parses YAML config text. Syntax errors become a ConfigError with line:column.
 * Two readings keep what the author wrote rather than what YAML 1.2 guesses:
 * a number written unlike its value ("0755", "1.10", "0x1f") stays the text written,
 * and a `mode` is always its text, so `mode: 755` means octal 755 as in chmod.
 * Merge keys (`<<: *base`) are supported.
 */
export function parseYamlConfig(text: string, file: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter, merge: true });
  if (doc.errors.length > 0) {
    const lines = doc.errors.slice(0, 5).map((error) => {
      const at = lineCounter.linePos(error.pos[0]);
      return `line ${at.line}, column ${at.col}: ${error.message}`;
    });
    throw new ConfigError(`invalid YAML: ${lines.join('; ')}`, { file, cause: doc.errors[0] });
  }
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.value === 'mode' && isScalar(pair.value) && pair.value.source !== undefined) {
        pair.value.value = pair.value.source;
      }
    },
    Scalar(_, node) {
      if (typeof node.value === 'number' && node.source !== undefined && String(node.value) !== node.source) {
        node.value = node.source;
      }
    },
  });
  try {
    return doc.toJS({ maxAliasCount: 1000 });
  } catch (error) {
    throw new ConfigError(`invalid YAML: ${(error as Error).message}`, { file, cause: error });
  }
}

