import { createHash } from 'node:crypto';

// RabbitMQ's internal hashing modules: a 4-byte salt, then hash(salt ++ password), the whole base64-encoded.
const ALGORITHMS: Record<string, string> = {
  rabbit_password_hashing_sha256: 'sha256',
  rabbit_password_hashing_sha512: 'sha512',
  rabbit_password_hashing_md5: 'md5',
};

/**
 * Whether `password` is the one a user's `password_hash` was made from, so
 * that a grant run again changes nothing when nothing changed. Unknown
 * algorithms answer false (the password is set again).
 */
export function passwordMatches(password: string, passwordHash: string | undefined, algorithm: string | undefined): boolean {
  const digest = ALGORITHMS[algorithm ?? 'rabbit_password_hashing_sha256'];
  if (digest === undefined || !passwordHash) return false;
  const stored = Buffer.from(passwordHash, 'base64');
  if (stored.length <= 4) return false;
  const salt = stored.subarray(0, 4);
  const hashed = createHash(digest).update(salt).update(password, 'utf8').digest();
  return hashed.equals(stored.subarray(4));
}
