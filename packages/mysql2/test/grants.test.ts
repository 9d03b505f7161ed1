import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapeGrantDatabase, grantProblems, isolatedDatabasePredicate, literalGrantDatabase, parseGrantLine } from '../src/index.js';

const allowed = isolatedDatabasePredicate('shop', 'shadow');
const problems = (line: string) => grantProblems([line], allowed).map((problem) => problem.problem);

describe('reading SHOW GRANTS lines', () => {
  it.each([
    [
      "GRANT USAGE ON *.* TO `dye_shadow`@`%` IDENTIFIED BY PASSWORD '*ABC'",
      { kind: 'privileges', scope: 'global', privileges: ['USAGE'] },
    ],
    [
      'GRANT SELECT, INSERT, CREATE TEMPORARY TABLES ON `shop\\_shadow`.* TO `u`@`%`',
      { kind: 'privileges', scope: 'database', database: 'shop\\_shadow', privileges: ['SELECT', 'INSERT', 'CREATE TEMPORARY TABLES'] },
    ],
    [
      'GRANT SELECT (`id`, `Name`) ON `shop`.`t` TO `u`@`%`',
      { kind: 'privileges', scope: 'table', database: 'shop', privileges: ['SELECT (`id`, `Name`)'] },
    ],
    ['GRANT EXECUTE ON PROCEDURE `shop`.`p` TO `u`@`%`', { kind: 'privileges', scope: 'routine', database: 'shop' }],
    [
      'GRANT ALL PRIVILEGES ON `shop`.* TO `u`@`%` WITH GRANT OPTION',
      { kind: 'privileges', grantOption: true, privileges: ['ALL PRIVILEGES'] },
    ],
    ['GRANT `r1`, `r2` TO `u`@`%`', { kind: 'roles', roles: ['`r1`', '`r2`'] }],
    ['GRANT `r1`@`%` TO `u`@`%`', { kind: 'roles', roles: ['`r1`@`%`'] }],
    ["GRANT PROXY ON ''@'%' TO 'u'@'%'", { kind: 'proxy' }],
    ['SET DEFAULT ROLE `r1` FOR `u`@`%`', { kind: 'default-role' }],
    ['REVOKE DELETE ON `shop`.* FROM `u`@`%`', { kind: 'unreadable' }],
    ['GRANT SELECT ON TO', { kind: 'unreadable' }],
  ])('%s', (line, expected) => {
    expect(parseGrantLine(line)).toMatchObject(expected);
  });

  it('reads ANSI_QUOTES output', () => {
    expect(parseGrantLine('GRANT SELECT ON "shop\\_shadow".* TO "u"@"%"', { ansiQuotes: true })).toMatchObject({
      scope: 'database',
      database: 'shop\\_shadow',
    });
  });

  it('escapes and unescapes database patterns', () => {
    expect(escapeGrantDatabase('shop_shadow')).toBe('shop\\_shadow');
    expect(literalGrantDatabase('shop\\_shadow')).toBe('shop_shadow');
    expect(literalGrantDatabase('shop_shadow')).toBeUndefined();
    expect(literalGrantDatabase('shop%')).toBeUndefined();
    fc.assert(
      fc.property(fc.string(), (name) => {
        expect(literalGrantDatabase(escapeGrantDatabase(name))).toBe(name);
      }),
    );
  });
});

describe('judging an account', () => {
  it('accepts USAGE and privileges on isolated databases only', () => {
    expect(problems("GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*X'")).toEqual([]);
    expect(problems('GRANT ALL PRIVILEGES ON `shop\\_shadow`.* TO `u`@`%`')).toEqual([]);
    expect(problems('GRANT SELECT ON `billing\\_shadow\\_lt1`.* TO `u`@`%`')).toEqual([]);
    expect(problems('GRANT SELECT ON `shop\\_shadow`.`orders` TO `u`@`%`')).toEqual([]);
  });

  it.each([
    ['GRANT FILE ON *.* TO `u`@`%`', 'server-wide'],
    ['GRANT SUPER, PROCESS ON *.* TO `u`@`%`', 'server-wide'],
    ['GRANT CONNECTION ADMIN ON *.* TO `u`@`%`', 'server-wide'],
    ['GRANT XA_RECOVER_ADMIN ON *.* TO `u`@`%`', 'server-wide'],
    ['GRANT SELECT ON *.* TO `u`@`%`', 'server-wide'],
    ['GRANT USAGE ON *.* TO `u`@`%` WITH GRANT OPTION', 'GRANT OPTION'],
    ['GRANT DELETE ON `shop`.* TO `u`@`%`', 'not an isolated database'],
    ['GRANT SELECT (`id`) ON `shop`.`orders` TO `u`@`%`', 'not an isolated database'],
    ['GRANT EXECUTE ON FUNCTION `mysql`.`f` TO `u`@`%`', 'not an isolated database'],
    ['GRANT SELECT ON `shop_shadow`.* TO `u`@`%`', 'pattern'],
    ['GRANT SELECT ON `%`.* TO `u`@`%`', 'pattern'],
    ['GRANT SELECT ON `analytics`.* TO `u`@`%`', 'not an isolated database'],
    ["GRANT PROXY ON 'root'@'localhost' TO 'u'@'%'", 'PROXY'],
    ['REVOKE SELECT ON `shop`.* FROM `u`@`%`', 'cannot read'],
  ])('refuses %s', (line, expected) => {
    expect(problems(line).join('; ')).toContain(expected);
  });

  it('never takes the production database for an isolated one, whatever its name', () => {
    const named = isolatedDatabasePredicate('legacy_shadow', 'shadow');
    expect(named('legacy_shadow')).toBe(false);
    expect(named('legacy_shadow_shadow')).toBe(true);
  });
});
