import { describe, expect, it } from 'vitest';
import { parseMysqlUrl } from '../src/mysql-url.js';

describe('--mysql URLs', () => {
  it('reads user, password, host, port and database; an IPv6 host without its brackets', () => {
    expect(parseMysqlUrl('mysql://audit:p%40ss@[::1]:3307/shop')).toEqual({
      config: { host: '::1', port: 3307, user: 'audit', password: 'p@ss' },
      database: 'shop',
    });
  });

  it('turns TLS on with ssl=true, and refuses settings it would otherwise drop', () => {
    expect(parseMysqlUrl('mysql://root@db:3306/?ssl=true').config.ssl).toEqual({ rejectUnauthorized: true });
    expect(() => parseMysqlUrl('mysql://root@db:3306/?sslmode=require')).toThrow(/the URL setting sslmode is not read/);
    expect(() => parseMysqlUrl('mysql://root@db:3306/?ssl=yes')).toThrow(/ssl takes true or false/);
    expect(() => parseMysqlUrl('postgres://root@db/x')).toThrow(/must start with mysql:\/\//);
  });
});
