/**
 * Tokenizer and recursive-descent parser for SpacetimeDB's subscription SQL
 * subset:
 *
 * ```text
 * query      = SELECT projection FROM relation [ WHERE predicate ] [ ';' ]
 * projection = '*' | ident '.' '*'
 * relation   = '*' | table [ [AS] alias ] [ [INNER] JOIN table [ [AS] alias ] ON field '=' field ]
 * predicate  = conj { OR conj }
 * conj       = atom { AND atom }
 * atom       = '(' predicate ')' | operand [ op operand ]
 * operand    = ident | ident '.' ident | literal | ':sender'
 * op         = '=' | '!=' | '<>' | '<' | '<=' | '>' | '>='
 * literal    = [ '+' | '-' ] number | 'string' | TRUE | FALSE | 0x… | X'…'
 * ```
 *
 * Keywords are case-insensitive, identifiers case-sensitive (`"quoted"` ones
 * may contain anything, `""` escapes a quote). Everything else is rejected
 * with a {@link SqlError} that names the construct. The parser knows nothing
 * about tables or types: names and literals are resolved by `compile.ts`.
 */
import { SqlError } from './errors.ts';

/** A comparison operator; `<>` is normalised to `!=`. */
export type CmpOp = '=' | '!=' | '<' | '<=' | '>' | '>=';

/** A column reference, `table.column` or a bare `column`. */
export interface ColumnRef {
  readonly kind: 'column';
  /** The qualifier as written (a table name or an alias). */
  readonly table?: string;
  readonly column: string;
  readonly pos: number;
}

/** A literal, kept as source text: its type comes from the column it meets. */
export type Literal =
  | { readonly kind: 'bool'; readonly value: boolean; readonly pos: number }
  /** Decimal text with an optional sign, fraction and exponent. */
  | { readonly kind: 'number'; readonly text: string; readonly pos: number }
  | { readonly kind: 'string'; readonly value: string; readonly pos: number }
  /** Hex digits of `0x…` or `X'…'`, without the prefix. */
  | { readonly kind: 'hex'; readonly digits: string; readonly pos: number }
  /** `:sender`, the subscriber's identity. */
  | { readonly kind: 'sender'; readonly pos: number };

export type Operand = ColumnRef | Literal;

export type Predicate =
  | { readonly kind: 'and' | 'or'; readonly left: Predicate; readonly right: Predicate }
  | {
      readonly kind: 'cmp';
      readonly op: CmpOp;
      readonly left: Operand;
      readonly right: Operand;
      readonly pos: number;
    }
  /** A lone operand used as a condition (`WHERE t.alive`, `WHERE TRUE`). */
  | { readonly kind: 'bare'; readonly operand: Operand };

/** A table in the FROM clause; `alias` is the table name when none is given. */
export interface TableRef {
  readonly name: string;
  readonly alias: string;
  readonly pos: number;
}

export interface SelectStmt {
  /** `undefined` for `SELECT *`, else the qualifier of `SELECT q.*`. */
  readonly projection: { readonly table?: string; readonly pos: number };
  /** `'*'` for `FROM *` (every table). */
  readonly from: TableRef | '*';
  readonly join?: {
    readonly table: TableRef;
    readonly on: { readonly left: ColumnRef; readonly right: ColumnRef; readonly pos: number };
  };
  readonly where?: Predicate;
}

// ---------------------------------------------------------------- tokens

type Token =
  | { readonly t: 'word'; readonly text: string; readonly upper: string; readonly pos: number }
  | { readonly t: 'qident'; readonly text: string; readonly pos: number }
  | { readonly t: 'string'; readonly text: string; readonly pos: number }
  | { readonly t: 'number'; readonly text: string; readonly pos: number }
  | { readonly t: 'hex'; readonly text: string; readonly pos: number }
  | { readonly t: 'param'; readonly text: string; readonly pos: number }
  | { readonly t: 'op'; readonly text: string; readonly pos: number }
  | { readonly t: 'eof'; readonly pos: number };

const isDigit = (c: string) => c >= '0' && c <= '9';
const isHexDigit = (c: string) => /^[0-9a-fA-F]$/.test(c);
const isWordStart = (c: string) => /^[A-Za-z_]$/.test(c) || c > '\x7f';
const isWordChar = (c: string) => /^[A-Za-z0-9_$]$/.test(c) || c > '\x7f';

/** Multi-character operators first, so `<=` wins over `<`. */
const OPERATORS = ['<=', '>=', '<>', '!=', '||', '=', '<', '>', '*', '.', ',', '(', ')', ';', '+', '-', '/', '%'];

/** Splits SQL text into tokens; the last one is always `eof`. */
export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i];
    if (/\s/.test(c)) {
      i++;
    } else if (sql.startsWith('--', i)) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
    } else if (sql.startsWith('/*', i)) {
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) throw new SqlError('unterminated comment', i);
      i = end + 2;
    } else if (c === "'") {
      const [text, next] = readQuoted(sql, i, "'", 'string literal');
      tokens.push({ t: 'string', text, pos: i });
      i = next;
    } else if (c === '"') {
      const [text, next] = readQuoted(sql, i, '"', 'quoted identifier');
      if (text === '') throw new SqlError('empty quoted identifier', i);
      tokens.push({ t: 'qident', text, pos: i });
      i = next;
    } else if ((c === 'x' || c === 'X') && sql[i + 1] === "'") {
      const [text, next] = readQuoted(sql, i + 1, "'", 'hex literal');
      if (!/^[0-9a-fA-F]*$/.test(text)) throw new SqlError(`invalid hex literal X'${text}'`, i);
      tokens.push({ t: 'hex', text, pos: i });
      i = next;
    } else if (c === '0' && (sql[i + 1] === 'x' || sql[i + 1] === 'X')) {
      let j = i + 2;
      while (j < n && isHexDigit(sql[j])) j++;
      if (j === i + 2 || (j < n && isWordChar(sql[j]))) {
        throw new SqlError(`invalid hex literal ${sql.slice(i, j + 1)}`, i);
      }
      tokens.push({ t: 'hex', text: sql.slice(i + 2, j), pos: i });
      i = j;
    } else if (isDigit(c) || (c === '.' && isDigit(sql[i + 1] ?? ''))) {
      const m = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(sql.slice(i))!;
      const j = i + m[0].length;
      if (j < n && isWordChar(sql[j])) throw new SqlError(`invalid number ${sql.slice(i, j + 1)}`, i);
      tokens.push({ t: 'number', text: m[0], pos: i });
      i = j;
    } else if (c === ':' && isWordStart(sql[i + 1] ?? '')) {
      let j = i + 1;
      while (j < n && isWordChar(sql[j])) j++;
      tokens.push({ t: 'param', text: sql.slice(i + 1, j), pos: i });
      i = j;
    } else if (isWordStart(c)) {
      let j = i;
      while (j < n && isWordChar(sql[j])) j++;
      const text = sql.slice(i, j);
      tokens.push({ t: 'word', text, upper: text.toUpperCase(), pos: i });
      i = j;
    } else {
      const op = OPERATORS.find((o) => sql.startsWith(o, i));
      if (!op) throw new SqlError(`unexpected character '${c}'`, i);
      tokens.push({ t: 'op', text: op, pos: i });
      i += op.length;
    }
  }
  tokens.push({ t: 'eof', pos: n });
  return tokens;
}

/** Reads a quote-delimited run starting at `start`, doubling escapes the quote. */
function readQuoted(sql: string, start: number, quote: string, what: string): [string, number] {
  let out = '';
  let i = start + 1;
  for (;;) {
    const end = sql.indexOf(quote, i);
    if (end < 0) throw new SqlError(`unterminated ${what}`, start);
    out += sql.slice(i, end);
    if (sql[end + 1] === quote) {
      out += quote;
      i = end + 2;
    } else {
      return [out, end + 1];
    }
  }
}

// ---------------------------------------------------------------- parser

/** Words that end a table reference, so they cannot be read as an alias. */
const RESERVED = new Set(
  ('SELECT FROM WHERE JOIN INNER LEFT RIGHT FULL OUTER CROSS NATURAL ON USING AND OR NOT AS ' +
    'ORDER GROUP BY LIMIT OFFSET HAVING UNION INTERSECT EXCEPT IS IN LIKE ILIKE BETWEEN ' +
    'NULL TRUE FALSE DISTINCT ALL WINDOW FETCH FOR').split(' '),
);

/** Words after which a statement is using a clause outside the subset. */
const TRAILING_CLAUSES: Record<string, string> = {
  ORDER: 'ORDER BY',
  GROUP: 'GROUP BY',
  LIMIT: 'LIMIT',
  OFFSET: 'OFFSET',
  HAVING: 'HAVING',
  UNION: 'set operations (UNION)',
  INTERSECT: 'set operations (INTERSECT)',
  EXCEPT: 'set operations (EXCEPT)',
  WINDOW: 'WINDOW',
  FETCH: 'FETCH',
  FOR: 'FOR UPDATE',
};

const NON_SELECT = new Set(
  'INSERT UPDATE DELETE CREATE DROP ALTER SET SHOW TRUNCATE CALL GRANT REVOKE VALUES'.split(' '),
);
const OUTER_JOINS = new Set(['LEFT', 'RIGHT', 'FULL', 'OUTER', 'CROSS', 'NATURAL']);
const CMP_OPS = new Set(['=', '!=', '<>', '<', '<=', '>', '>=']);
const ARITHMETIC = new Set(['+', '-', '*', '/', '%']);

/** Parses one subscription query. Throws {@link SqlError}. */
export function parseSql(sql: string): SelectStmt {
  return new Parser(tokenize(sql)).statement();
}

/** How deep parentheses in a WHERE clause may nest. */
const MAX_NESTING = 64;

/**
 * `terms[from..to)` joined by one operator as a balanced tree, so that a long
 * `a OR b OR …` chain is log(n) deep rather than n (the compiler and the
 * evaluator recurse over the tree). Two and three terms keep the left-deep
 * shape `(a op b) op c`; AND and OR are associative, so the meaning is the same.
 */
function balanced(kind: 'and' | 'or', terms: Predicate[], from: number, to: number): Predicate {
  if (to - from === 1) return terms[from];
  const mid = from + Math.ceil((to - from) / 2);
  return { kind, left: balanced(kind, terms, from, mid), right: balanced(kind, terms, mid, to) };
}

class Parser {
  private i = 0;
  private nesting = 0;
  constructor(private readonly tokens: Token[]) {}

  private get tok(): Token {
    return this.tokens[this.i];
  }
  private peek(k = 1): Token {
    return this.tokens[Math.min(this.i + k, this.tokens.length - 1)];
  }
  private next(): Token {
    const t = this.tok;
    if (t.t !== 'eof') this.i++;
    return t;
  }
  private isWord(upper: string, t: Token = this.tok): boolean {
    return t.t === 'word' && t.upper === upper;
  }
  private isOp(text: string, t: Token = this.tok): boolean {
    return t.t === 'op' && t.text === text;
  }
  private acceptWord(upper: string): boolean {
    if (!this.isWord(upper)) return false;
    this.i++;
    return true;
  }
  private acceptOp(text: string): boolean {
    if (!this.isOp(text)) return false;
    this.i++;
    return true;
  }
  private expectOp(text: string, context: string): void {
    if (!this.acceptOp(text)) throw this.unexpected(`expected '${text}' ${context}`);
  }
  private unexpected(expected: string, t: Token = this.tok): SqlError {
    return new SqlError(`${expected}, found ${describe(t)}`, t.pos);
  }
  private unsupported(what: string, t: Token = this.tok): SqlError {
    return new SqlError(`unsupported: ${what}`, t.pos);
  }

  statement(): SelectStmt {
    const first = this.tok;
    if (first.t === 'eof') throw new SqlError('empty query', 0);
    if (this.isWord('WITH')) throw this.unsupported('WITH');
    if (first.t === 'word' && NON_SELECT.has(first.upper)) {
      throw this.unsupported(`${first.upper} statements (subscriptions accept SELECT only)`);
    }
    if (!this.acceptWord('SELECT')) throw this.unexpected('expected SELECT');
    const projection = this.projection();
    if (!this.acceptWord('FROM')) throw this.unexpected('expected FROM');
    let from: TableRef | '*';
    let join: SelectStmt['join'];
    if (this.acceptOp('*')) {
      from = '*';
    } else {
      from = this.tableRef();
      join = this.join();
    }
    let where: Predicate | undefined;
    if (this.acceptWord('WHERE')) where = this.predicate();
    this.end();
    return { projection, from, join, where };
  }

  private projection(): SelectStmt['projection'] {
    const t = this.tok;
    if (this.acceptOp('*')) return { pos: t.pos };
    if (this.isWord('DISTINCT') || this.isWord('ALL')) throw this.unsupported((t as { upper: string }).upper);
    if ((t.t === 'word' || t.t === 'qident') && this.isOp('.', this.peek()) && this.isOp('*', this.peek(2))) {
      this.i += 3;
      return { table: t.text, pos: t.pos };
    }
    if (t.t === 'word' && this.isOp('(', this.peek())) throw this.unsupported('aggregates and functions in SELECT');
    if (t.t === 'word' || t.t === 'qident') {
      throw this.unsupported('column projections (a subscription returns whole rows: SELECT * or SELECT t.*)');
    }
    throw this.unexpected("expected '*' or 'table.*'");
  }

  private tableRef(): TableRef {
    const t = this.tok;
    if (this.isOp('(')) throw this.unsupported('subqueries');
    if (t.t !== 'word' && t.t !== 'qident') throw this.unexpected('expected a table name');
    this.i++;
    if (this.isOp('.')) throw this.unsupported('multi-part table names');
    let alias = t.text;
    if (this.acceptWord('AS')) {
      const a = this.tok;
      if (a.t !== 'qident' && (a.t !== 'word' || RESERVED.has(a.upper))) throw this.unexpected('expected an alias after AS');
      this.i++;
      alias = a.text;
    } else {
      const a = this.tok;
      if (a.t === 'qident' || (a.t === 'word' && !RESERVED.has(a.upper))) {
        this.i++;
        alias = a.text;
      }
    }
    return { name: t.text, alias, pos: t.pos };
  }

  private join(): SelectStmt['join'] {
    if (this.isOp(',')) throw this.unsupported('implicit joins (FROM a, b); use JOIN … ON');
    const t = this.tok;
    if (t.t === 'word' && OUTER_JOINS.has(t.upper)) throw this.unsupported(`${t.upper} JOIN (only inner joins)`);
    const inner = this.acceptWord('INNER');
    if (!this.acceptWord('JOIN')) {
      if (inner) throw this.unexpected('expected JOIN after INNER');
      return undefined;
    }
    const table = this.tableRef();
    if (this.isWord('USING')) throw this.unsupported('JOIN … USING; use JOIN … ON a.x = b.y');
    const onTok = this.tok;
    if (!this.acceptWord('ON')) throw this.unsupported('JOIN without ON', onTok);
    const left = this.columnRef('in the join condition');
    const opTok = this.tok;
    if (!this.acceptOp('=')) {
      if (opTok.t === 'op' && CMP_OPS.has(opTok.text)) throw this.unsupported(`join condition with '${opTok.text}' (only column = column)`, opTok);
      throw this.unexpected("expected '=' in the join condition");
    }
    const right = this.columnRef('in the join condition');
    if (this.isWord('AND') || this.isWord('OR')) throw this.unsupported('compound join conditions (move extra conditions to WHERE)');
    const after = this.tok;
    if (after.t === 'word' && (after.upper === 'JOIN' || after.upper === 'INNER' || OUTER_JOINS.has(after.upper))) {
      throw this.unsupported('more than two tables');
    }
    return { table, on: { left, right, pos: onTok.pos } };
  }

  private columnRef(context: string): ColumnRef {
    const t = this.tok;
    if (t.t === 'word' && RESERVED.has(t.upper)) throw this.unexpected(`expected a column ${context}`);
    const op = this.operand();
    if (op.kind !== 'column') throw this.unsupported(`literals ${context} (only column = column)`, t);
    return op;
  }

  private end(): void {
    const t = this.tok;
    if (t.t === 'eof') return;
    if (this.isOp(';')) {
      this.i++;
      if (this.tok.t === 'eof') return;
      throw this.unsupported('multiple statements');
    }
    if (t.t === 'word' && TRAILING_CLAUSES[t.upper]) throw this.unsupported(TRAILING_CLAUSES[t.upper]);
    if (this.isOp(',')) throw this.unsupported('implicit joins (FROM a, b); use JOIN … ON');
    if (t.t === 'word' && (t.upper === 'JOIN' || t.upper === 'INNER' || OUTER_JOINS.has(t.upper))) {
      throw this.unsupported('more than two tables');
    }
    throw this.unexpected('expected end of query');
  }

  // ------------------------------------------------------------ predicates

  private predicate(): Predicate {
    // Parentheses recurse: bound them, like the real server's SQL parser.
    if (++this.nesting > MAX_NESTING) throw this.unsupported(`conditions nested more than ${MAX_NESTING} deep`);
    try {
      const terms = [this.conjunction()];
      while (this.acceptWord('OR')) terms.push(this.conjunction());
      return balanced('or', terms, 0, terms.length);
    } finally {
      this.nesting--;
    }
  }

  private conjunction(): Predicate {
    const terms = [this.atom()];
    while (this.acceptWord('AND')) terms.push(this.atom());
    return balanced('and', terms, 0, terms.length);
  }

  private atom(): Predicate {
    if (this.isWord('NOT')) throw this.unsupported('NOT');
    if (this.isWord('EXISTS')) throw this.unsupported('EXISTS');
    let left: Operand;
    if (this.isOp('(')) {
      if (this.isWord('SELECT', this.peek())) throw this.unsupported('subqueries', this.peek());
      this.i++;
      const inner = this.predicate();
      this.expectOp(')', 'to close the parenthesis');
      // `(col) = 1`: a parenthesised operand followed by a comparison.
      if (inner.kind === 'bare' && this.tok.t === 'op' && CMP_OPS.has(this.tok.text)) {
        left = inner.operand;
      } else {
        this.rejectOperatorAfterOperand();
        return inner;
      }
    } else {
      left = this.operand();
    }
    this.rejectOperatorAfterOperand();
    const opTok = this.tok;
    if (opTok.t !== 'op' || !CMP_OPS.has(opTok.text)) return { kind: 'bare', operand: left };
    this.i++;
    const right = this.isOp('(') ? this.parenthesisedOperand() : this.operand();
    this.rejectOperatorAfterOperand();
    const following = this.tok;
    if (following.t === 'op' && CMP_OPS.has(following.text)) {
      throw this.unsupported('chained comparisons', following);
    }
    const op = (opTok.text === '<>' ? '!=' : opTok.text) as CmpOp;
    return { kind: 'cmp', op, left, right, pos: opTok.pos };
  }

  private parenthesisedOperand(): Operand {
    const open = this.next();
    if (this.isWord('SELECT')) throw this.unsupported('subqueries');
    const inner = this.predicate();
    this.expectOp(')', 'to close the parenthesis');
    if (inner.kind !== 'bare') throw new SqlError('unsupported: comparing the result of a comparison', open.pos);
    return inner.operand;
  }

  /** After an operand, the only things that may follow are `op`, AND, OR, `)` and the end. */
  private rejectOperatorAfterOperand(): void {
    const t = this.tok;
    if (t.t === 'op' && ARITHMETIC.has(t.text)) throw this.unsupported('arithmetic');
    if (t.t === 'op' && t.text === '||') throw this.unsupported('string concatenation (||)');
    if (t.t !== 'word') return;
    switch (t.upper) {
      case 'NOT':
        throw this.unsupported('NOT');
      case 'IS':
        throw this.unsupported('IS [NOT] NULL');
      case 'IN':
      case 'LIKE':
      case 'ILIKE':
      case 'BETWEEN':
        throw this.unsupported(t.upper);
    }
  }

  private operand(): Operand {
    const t = this.tok;
    switch (t.t) {
      case 'number':
        this.i++;
        return { kind: 'number', text: t.text, pos: t.pos };
      case 'string':
        this.i++;
        return { kind: 'string', value: t.text, pos: t.pos };
      case 'hex':
        this.i++;
        return { kind: 'hex', digits: t.text, pos: t.pos };
      case 'param':
        if (t.text !== 'sender') throw new SqlError(`unsupported: parameter :${t.text} (only :sender)`, t.pos);
        this.i++;
        return { kind: 'sender', pos: t.pos };
      case 'op':
        if (t.text === '-' || t.text === '+') {
          const num = this.peek();
          if (num.t !== 'number') throw this.unsupported('arithmetic');
          this.i += 2;
          return { kind: 'number', text: t.text === '-' ? `-${num.text}` : num.text, pos: t.pos };
        }
        throw this.unexpected('expected a column or a literal');
      case 'word':
        switch (t.upper) {
          case 'TRUE':
          case 'FALSE':
            this.i++;
            return { kind: 'bool', value: t.upper === 'TRUE', pos: t.pos };
          case 'NULL':
            throw this.unsupported('NULL');
          case 'NOT':
            throw this.unsupported('NOT');
          case 'CASE':
            throw this.unsupported('CASE');
          case 'CAST':
            throw this.unsupported('CAST');
        }
        return this.column(t);
      case 'qident':
        return this.column(t);
      case 'eof':
        throw this.unexpected('expected a column or a literal');
    }
  }

  private column(t: Token & { text: string }): ColumnRef {
    this.i++;
    if (this.isOp('(')) throw this.unsupported('function calls', t);
    if (!this.acceptOp('.')) return { kind: 'column', column: t.text, pos: t.pos };
    const c = this.tok;
    if (c.t !== 'word' && c.t !== 'qident') throw this.unexpected(`expected a column name after '${t.text}.'`);
    this.i++;
    if (this.isOp('.')) throw this.unsupported('multi-part names');
    return { kind: 'column', table: t.text, column: c.text, pos: t.pos };
  }
}

function describe(t: Token): string {
  switch (t.t) {
    case 'eof':
      return 'end of query';
    case 'string':
      return `'${t.text}'`;
    case 'qident':
      return `"${t.text}"`;
    case 'hex':
      return `0x${t.text}`;
    case 'param':
      return `:${t.text}`;
    default:
      return `'${t.text}'`;
  }
}
