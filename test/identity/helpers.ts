/** Test helpers for identity tests: temp data dirs, hand-made tokens, error capture. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT, base64url, type CryptoKey, type JWTHeaderParameters, type JWTPayload } from "jose";
import { TurnkeyError } from "../../src/errors.ts";

/** A fresh temp dir and its cleanup. */
export function tempDir(prefix = "turnkey-identity-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Sign arbitrary claims with an arbitrary header (no defaults added). */
export function sign(key: CryptoKey | Uint8Array, header: JWTHeaderParameters, claims: JWTPayload): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(header).sign(key);
}

/** An unsecured JWT (RFC 7519 §6, `alg: none`). */
export function unsecured(claims: JWTPayload): string {
  const enc = (o: object) => base64url.encode(JSON.stringify(o));
  return `${enc({ alg: "none", typ: "JWT" })}.${enc(claims)}.`;
}

/** Flip one character in the middle of the signature segment. */
export function tamper(token: string): string {
  const [h, p, s = ""] = token.split(".");
  const i = Math.floor(s.length / 2);
  const c = s[i] === "A" ? "B" : "A";
  return `${h}.${p}.${s.slice(0, i)}${c}${s.slice(i + 1)}`;
}

/** Run `fn` and return the TurnkeyError it throws as `{status, code}`; fails if it does not throw one. */
export async function errorOf(fn: () => Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof TurnkeyError) return { status: err.status, code: err.code };
    throw err;
  }
  throw new Error("expected a TurnkeyError, got success");
}

export const nowSec = () => Math.floor(Date.now() / 1000);
