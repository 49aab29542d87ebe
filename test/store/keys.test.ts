import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/errors.ts";
import { loadOrCreateSecretFile, readSecretFile } from "../../src/store/keys.ts";

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "turnkey-keys-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("loadOrCreateSecretFile", () => {
  test("creates the data dir 0700 and the key file 0600, then reuses it", () => {
    const dir = join(root, "data", "nested");
    const path = join(dir, "master.key");
    const first = loadOrCreateSecretFile(path, 32);
    expect(first.length).toBe(32);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const again = loadOrCreateSecretFile(path, 32);
    expect(Buffer.from(again).equals(Buffer.from(first))).toBe(true);
    // no temporary files left behind
    expect(readdirSync(dir)).toEqual(["master.key"]);
  });

  test("two keys in the same dir are independent", () => {
    const a = loadOrCreateSecretFile(join(root, "a.key"), 32);
    const b = loadOrCreateSecretFile(join(root, "b.key"), 32);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });

  test("concurrent first starts in separate processes agree on one key", async () => {
    const path = join(root, "race", "master.key");
    const script = `import { loadOrCreateSecretFile } from ${JSON.stringify(join(import.meta.dir, "../../src/store/keys.ts"))};
      process.stdout.write(Buffer.from(loadOrCreateSecretFile(${JSON.stringify(path)}, 32)).toString("hex"));`;
    const procs = Array.from({ length: 4 }, () =>
      Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" }),
    );
    const outs = await Promise.all(procs.map((p) => new Response(p.stdout).text()));
    await Promise.all(procs.map((p) => p.exited));
    expect(outs.every((o) => o.length === 64)).toBe(true);
    expect(new Set(outs).size).toBe(1);
    expect(Buffer.from(readSecretFile(path, 32)!).toString("hex")).toBe(outs[0]!);
  });
});

describe("readSecretFile refuses bad key files", () => {
  const cases: { name: string; setup: (path: string) => void; message: RegExp }[] = [
    { name: "group-readable", setup: (p) => { writeFileSync(p, new Uint8Array(32), { mode: 0o640 }); chmodSync(p, 0o640); }, message: /group or others/ },
    { name: "world-readable", setup: (p) => { writeFileSync(p, new Uint8Array(32)); chmodSync(p, 0o604); }, message: /group or others/ },
    { name: "too short", setup: (p) => writeFileSync(p, new Uint8Array(31), { mode: 0o600 }), message: /31 bytes, expected exactly 32/ },
    { name: "too long", setup: (p) => writeFileSync(p, new Uint8Array(64), { mode: 0o600 }), message: /64 bytes/ },
    { name: "a directory", setup: (p) => Bun.spawnSync(["mkdir", "-m", "700", p]), message: /not a regular file/ },
    {
      name: "a symlink",
      setup: (p) => { writeFileSync(p + ".real", new Uint8Array(32), { mode: 0o600 }); symlinkSync(p + ".real", p); },
      message: /symbolic link/,
    },
  ];
  for (const c of cases)
    test(c.name, () => {
      const path = join(root, "master.key");
      c.setup(path);
      let err: unknown;
      try {
        loadOrCreateSecretFile(path, 32, "TURNKEY_TEST_KEY");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).setting).toBe("TURNKEY_TEST_KEY");
      expect((err as Error).message).toMatch(c.message);
    });

  test("missing file reads as null", () => {
    expect(readSecretFile(join(root, "nope.key"), 32)).toBeNull();
  });
});
