/**
 * Signing keys kept in the data directory (DESIGN §4): ES256 (P-256) private JWKs, one file per
 * purpose, mode 0600, created on first start and reused afterwards so tokens survive a restart.
 *
 * Creation is atomic and never clobbers: the key is written to a temporary file and hard-linked
 * into place, so two processes starting at once agree on one key (the loser reads the winner's).
 * An existing file is refused when it is a symlink, not a regular file, or group/world-accessible:
 * the file handling is `store/keys.ts`'s `readOrCreatePrivateFile`, the same code as raw key files.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from "jose";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../errors.ts";
import { readOrCreatePrivateFile } from "../store/keys.ts";

/** File name of the development user issuer's key. */
export const DEV_ISSUER_KEY_FILE = "dev-issuer.jwk";
/** File name of the turn-token signing key. */
export const TURN_SIGNING_KEY_FILE = "turn-signing.jwk";

/** A loaded signing key: the private key for signing and the public JWK for verifiers. */
export interface SigningKey {
  /** Always `ES256`. */
  alg: "ES256";
  /** RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key; goes in the JWS `kid`. */
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** Public JWK with `kid`, `alg` and `use: "sig"`; safe to publish. */
  publicJwk: JWK;
}

/**
 * Load the ES256 key in `<dataDir>/<fileName>`, generating it on first use (mode 0600, parent
 * directory 0700, race-free creation as `readOrCreatePrivateFile`).
 * @throws ConfigError naming the file when it exists but is not an ES256 private JWK, or is a
 *   symlink, not a regular file, group/world-accessible, or cannot be read or created.
 * @example
 * const key = await loadOrCreateSigningKey(cfg.dataDir, TURN_SIGNING_KEY_FILE);
 */
export async function loadOrCreateSigningKey(dataDir: string, fileName: string): Promise<SigningKey> {
  const path = join(dataDir, fileName);
  let fresh: string | undefined;
  if (!existsSync(path)) fresh = await newPrivateJwkText();
  const text = Buffer.from(readOrCreatePrivateFile(path, () => fresh ?? "")).toString("utf8");
  let jwk: JWK;
  try {
    jwk = JSON.parse(text) as JWK;
  } catch {
    throw new ConfigError(path, "not a JSON Web Key");
  }
  if (jwk.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.d !== "string" || typeof jwk.x !== "string" || typeof jwk.y !== "string")
    throw new ConfigError(path, "expected an EC P-256 private JWK (ES256)");
  const publicJwk: JWK = { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y };
  const kid = await calculateJwkThumbprint(publicJwk, "sha256");
  publicJwk.kid = kid;
  publicJwk.alg = "ES256";
  publicJwk.use = "sig";
  try {
    const privateKey = (await importJWK({ ...jwk, alg: "ES256" }, "ES256")) as CryptoKey;
    const publicKey = (await importJWK(publicJwk, "ES256")) as CryptoKey;
    return { alg: "ES256", kid, privateKey, publicKey, publicJwk };
  } catch (cause) {
    throw new ConfigError(path, `unusable key: ${(cause as Error).message}`);
  }
}

async function newPrivateJwkText(): Promise<string> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(privateKey);
  jwk.kid = await calculateJwkThumbprint({ kty: "EC", crv: jwk.crv, x: jwk.x, y: jwk.y } as JWK, "sha256");
  jwk.alg = "ES256";
  jwk.use = "sig";
  return JSON.stringify(jwk) + "\n";
}
