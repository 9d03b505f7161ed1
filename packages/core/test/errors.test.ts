import { describe, expect, it } from 'vitest';
import { IsolationError, TenantConflictError } from '../src/index.js';

describe('errors', () => {
  it('IsolationError says what was refused, for whom and why', () => {
    const error = new IsolationError({ tenant: 'shadow', refused: 'FLUSHALL', reason: 'it would clear production keys' });
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('DYE_ISOLATION');
    expect(error.name).toBe('IsolationError');
    expect(error.message).toBe('Dye refused FLUSHALL for isolated tenant "shadow": it would clear production keys');
    expect(error).toMatchObject({ tenant: 'shadow', refused: 'FLUSHALL', reason: 'it would clear production keys' });
  });

  it('TenantConflictError lists the names it found', () => {
    const error = new TenantConflictError(['red', 'shadow']);
    expect(error.code).toBe('DYE_TENANT_CONFLICT');
    expect(error.names).toEqual(['red', 'shadow']);
    expect(error.message).toContain('"red" vs "shadow"');
  });
});
