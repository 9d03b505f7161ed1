/**
 * Where Dye reports input it ignored (a malformed header, an oversized baggage)
 * and decisions an operator should see. One call is one log line.
 */
export interface DyeLogger {
  warn(event: DyeLogEvent): void;
}

export interface DyeLogEvent {
  /** Stable machine-readable code, for example `dye.codec.malformed`. */
  readonly code: string;
  /** One human-readable sentence. */
  readonly message: string;
  /** Extra fields; never the raw untrusted input beyond a short excerpt. */
  readonly details?: Readonly<Record<string, unknown>>;
}

// Bad input comes from outside and can arrive at line rate; one line per code
// per window keeps logs readable and cheap, and the next line says how many
// were folded into it.
const WINDOW_MS = 10_000;

class ConsoleLogger implements DyeLogger {
  readonly #lastByCode = new Map<string, { at: number; suppressed: number }>();

  warn(event: DyeLogEvent): void {
    const now = Date.now();
    const last = this.#lastByCode.get(event.code);
    if (last && now - last.at < WINDOW_MS) {
      last.suppressed++;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    this.#lastByCode.set(event.code, { at: now, suppressed: 0 });
    const fields = { ...event.details, ...(suppressed > 0 ? { suppressedSinceLastLine: suppressed } : {}) };
    const suffix = Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
    console.warn(`[dye] ${event.code}: ${event.message}${suffix}`);
  }
}

let logger: DyeLogger = new ConsoleLogger();

/**
 * Sends Dye's log lines to your logger (pino, winston, …). The default writes
 * to `console.warn`, at most one line per event code every 10 seconds.
 */
export function setLogger(next: DyeLogger): void {
  if (!next || typeof next.warn !== 'function') throw new TypeError('setLogger expects an object with a warn(event) method');
  logger = next;
}

/** Writes one log line through the configured logger; for Dye's adapters. Never throws. */
export function logWarning(code: string, message: string, details?: Record<string, unknown>): void {
  try {
    logger.warn(details === undefined ? { code, message } : { code, message, details });
  } catch {
    // A failing logger must not turn ignored bad input into a crash.
  }
}

/** A short, printable excerpt of untrusted input for log lines. */
export function excerpt(value: string, max = 64): string {
  const printable = value.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > max ? `${printable.slice(0, max)}…(${value.length} chars)` : printable;
}
