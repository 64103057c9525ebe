/** AWS IoT SQL for rules: tokenizer, parser, compiler to closures, type system and functions (reference §10). */
export {
  compileSql,
  parsePayload,
  type CompiledSql,
  type ParsedPayload,
  type SqlResult,
} from './compiler.js';
export { SqlParseError } from './errors.js';
export { type SqlContext, sqlTypeName } from './functions.js';
export { DEFAULT_SQL_VERSION, SQL_VERSIONS, parseSql, type SqlVersion } from './parser.js';
export { toJson, toPlain, toText, WholeDecimal, type SqlValue } from './values.js';
export { formatJoda, parseJoda } from './time.js';
