/** The README documents every setting the gateway reads (a setting nobody can find is a support ticket). */
import { expect, test } from "bun:test";
import { resolve } from "node:path";
import { ENV_SETTINGS } from "../src/config.ts";

test("every TURNKEY_* setting appears in the README", async () => {
  const readme = await Bun.file(resolve(import.meta.dir, "../README.md")).text();
  expect(Object.keys(ENV_SETTINGS).filter((name) => !readme.includes("`" + name + "`"))).toEqual([]);
});
