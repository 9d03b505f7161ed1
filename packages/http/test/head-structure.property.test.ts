import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { wellFormedHead } from '../src/client-request-guard.js';

// The definition wellFormedHead's searches must agree with: no CR or LF but in
// CR LF pairs, no empty line before the end, ending in one.
const oracle = (head: string) => !/\r(?!\n)|(?<!\r)\n|\r\n\r\n(?!$)/.test(head) && head.endsWith('\r\n\r\n');

// Heads made of the characters that matter (line breaks, a header line's own,
// characters above ASCII and above latin1), around a request line.
const piece = fc.constantFrom('\r', '\n', '\r\n', '\r\n\r\n', 'a', 'x-tenant', ':', ' ', '\u00e9', '\u010a', '\u0174', '\t');
const head = fc
  .tuple(fc.boolean(), fc.array(piece, { maxLength: 24 }), fc.constantFrom('', '\r\n', '\r\n\r\n', '\n\n', '\r\r'))
  .map(([requestLine, pieces, end]) => `${requestLine ? 'GET / HTTP/1.1\r\n' : ''}${pieces.join('')}${end}`);

describe('the head structure check', () => {
  it('agrees with the regex definition on 100,000 heads of line breaks and odd characters', () => {
    fc.assert(
      fc.property(head, (text) => wellFormedHead(text) === oracle(text)),
      { numRuns: 100_000 },
    );
  });

  it('takes a head Node writes, and refuses each way of breaking one', () => {
    expect(wellFormedHead('GET / HTTP/1.1\r\nHost: a\r\nx-tenant: red\r\n\r\n')).toBe(true);
    for (const broken of [
      'GET / HTTP/1.1\r\nHost: a\nx-tenant: red\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\rx-tenant: red\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\n\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\n',
      '\nGET / HTTP/1.1\r\nHost: a\r\n\r\n',
    ])
      expect(wellFormedHead(broken), JSON.stringify(broken)).toBe(false);
  });
});
