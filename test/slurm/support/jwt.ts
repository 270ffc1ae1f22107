/**
 * JWTs for tests: a header and payload as slurmctld's tokens have them, and a dummy signature.
 */

/** A JWT-shaped token with the given payload (nsh reads claims; only slurmctld checks signatures). */
export const jwt = (payload: object): string =>
  [`{"alg":"HS256","typ":"JWT"}`, JSON.stringify(payload)].map((p) => Buffer.from(p).toString("base64url")).join(".") +
  ".c2lnbmF0dXJl"
