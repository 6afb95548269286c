/**
 * Password hash verification for `basic-auth`: bcrypt with bcryptjs (its async compare yields to
 * the event loop between rounds), argon2 with node:crypto's `argon2` (run on libuv's thread pool)
 * and a constant-time comparison of the tags.
 */
import { argon2, timingSafeEqual } from 'node:crypto';
import type Bcrypt from 'bcryptjs';
import { lazyModule } from '../../util/lazy-module.ts';

const bcrypt = lazyModule<typeof Bcrypt>('bcryptjs');
import type { PasswordHash } from '../filter.ts';

export function verifyPassword(password: string, hash: PasswordHash): Promise<boolean> {
  if (hash.kind === 'bcrypt') return bcrypt().compare(password, hash.hash);
  return new Promise((resolve) => {
    argon2(
      hash.algorithm,
      { message: password, nonce: hash.salt, parallelism: hash.parallelism, tagLength: hash.tag.length, memory: hash.memory, passes: hash.passes },
      (err, tag) => {
        resolve(err === null && timingSafeEqual(tag, hash.tag));
      },
    );
  });
}
