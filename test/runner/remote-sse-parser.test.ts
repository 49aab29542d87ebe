import { describe, expect, test } from "bun:test";
import { SseBlockParser, type SseBlock } from "../../src/runner/sse-parser.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function parse(chunks: (string | Uint8Array)[], maxBlockBytes = 1 << 20) {
  const blocks: { raw: string; data: string | null; event?: string }[] = [];
  const oversized: number[] = [];
  const p = new SseBlockParser({
    maxBlockBytes,
    onBlock: (b: SseBlock) => blocks.push({ raw: dec.decode(b.raw), data: b.data, ...(b.event !== undefined ? { event: b.event } : {}) }),
    onOversized: (n) => oversized.push(n),
  });
  for (const c of chunks) p.push(typeof c === "string" ? enc.encode(c) : c);
  const discarded = p.end();
  return { blocks, oversized, discarded };
}

/** Every way of cutting `text` in two, plus one byte at a time: the result must not change. */
function allSplits(text: string) {
  const bytes = enc.encode(text);
  const out = [parse([bytes])];
  for (let i = 1; i < bytes.length; i++) out.push(parse([bytes.subarray(0, i), bytes.subarray(i)]));
  out.push(parse([...bytes].map((b) => new Uint8Array([b]))));
  return out;
}

describe("SseBlockParser (WHATWG event stream rules)", () => {
  test.each([
    ["LF", "data: a\n\n", [{ raw: "data: a\n\n", data: "a" }]],
    ["CRLF", "data: a\r\n\r\n", [{ raw: "data: a\r\n\r\n", data: "a" }]],
    ["CR", "data: a\r\r", [{ raw: "data: a\r\r", data: "a" }]],
    ["mixed endings", "data: a\r\ndata: b\rdata: c\n\r\n", [{ raw: "data: a\r\ndata: b\rdata: c\n\r\n", data: "a\nb\nc" }]],
    ["one leading space removed only", "data:  x \n\n", [{ raw: "data:  x \n\n", data: " x " }]],
    ["no space", "data:x\n\n", [{ raw: "data:x\n\n", data: "x" }]],
    ["comment-only block", ": hi\n\n", [{ raw: ": hi\n\n", data: null }]],
    ["comments, event and id kept in raw", ": c\nevent: e\nid: 1\nretry: 5\ndata: d\n\n", [{ raw: ": c\nevent: e\nid: 1\nretry: 5\ndata: d\n\n", data: "d", event: "e" }]],
    ["field without colon", "data\n\n", [{ raw: "data\n\n", data: "" }]],
    ["stray blank lines dropped", "\n\r\n\rdata: a\n\n\n", [{ raw: "data: a\n\n", data: "a" }]],
    ["BOM skipped", "\uFEFFdata: a\n\n", [{ raw: "data: a\n\n", data: "a" }]],
    ["two blocks", "data: 1\n\ndata: 2\r\n\r\n", [{ raw: "data: 1\n\n", data: "1" }, { raw: "data: 2\r\n\r\n", data: "2" }]],
    ["UTF-8", "data: é😀\n\n", [{ raw: "data: é😀\n\n", data: "é😀" }]],
  ] as const)("%s", (_name, input, expected) => {
    const [whole, ...splits] = allSplits(input);
    expect(whole!.blocks).toEqual(expected as never);
    for (const r of splits) {
      // Exact bytes, except the documented case: a block-ending CRLF split between its CR and
      // LF loses the LF (the block was already handed on at the CR).
      const raws = r.blocks.map((b, i) => {
        const want = (expected[i] as { raw: string } | undefined)?.raw;
        return want !== undefined && want.endsWith("\r\n") && b.raw === want.slice(0, -1) ? want : b.raw;
      });
      expect(raws).toEqual(expected.map((e) => e.raw));
      expect(r.blocks.map(({ raw: _r, ...rest }) => rest)).toEqual(expected.map(({ raw: _r, ...rest }) => rest) as never);
      expect(r.discarded).toBe(0);
    }
  });

  test("a CRLF split after a dispatched block: the orphan LF is dropped, the next block is intact", () => {
    const r = parse(["data: a\r\n\r", "\ndata: b\n\n"]);
    expect(r.blocks.map((b) => b.raw)).toEqual(["data: a\r\n\r", "data: b\n\n"]);
  });

  test("an unterminated block at the end is discarded", () => {
    const r = parse(["data: a\n\ndata: b\n"]);
    expect(r.blocks.map((b) => b.data)).toEqual(["a"]);
    expect(r.discarded).toBe(8);
  });

  test("an oversized block is skipped in bounded memory, later blocks survive", () => {
    const big = "data: " + "x".repeat(5000) + "\n\n";
    const r = parse(["data: a\n\n", big.slice(0, 3000), big.slice(3000), "data: b\n\n"], 1024);
    expect(r.blocks.map((b) => b.data)).toEqual(["a", "b"]);
    expect(r.oversized).toEqual([big.length]);
  });
});
