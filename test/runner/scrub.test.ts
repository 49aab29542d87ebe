import { describe, expect, test } from "bun:test";
import { MIN_SECRET_LENGTH, REDACTED, SecretScrubber } from "../../src/runner/scrub.ts";
import { LineSplitter, parseEventLine } from "../../src/runner/events.ts";

const TOKEN = "ghp_SECRETtoken123456";
const QUOTED = 'pa"ss\\word-42';

describe("SecretScrubber.scrub", () => {
  const s = new SecretScrubber([TOKEN, QUOTED, "short", "", undefined]);
  test.each([
    ["raw", `token=${TOKEN}!`, `token=${REDACTED}!`],
    ["twice", `${TOKEN}${TOKEN}`, `${REDACTED}${REDACTED}`],
    ["json-escaped", JSON.stringify({ p: QUOTED }), `{"p":"${REDACTED}"}`],
    ["base64", Buffer.from(TOKEN).toString("base64"), REDACTED],
    ["url-encoded", encodeURIComponent(QUOTED), REDACTED],
    ["no secret", "hello world", "hello world"],
    ["short secrets are ignored", "a short word", "a short word"],
  ])("%s", (_n, input, want) => expect(s.scrub(input)).toBe(want));

  test.each([
    ["GitLab Basic auth (7-byte prefix)", "oauth2:"],
    ["GitHub Basic auth (15-byte prefix)", "x-access-token:"],
    ["1-byte prefix", "x"],
    ["2-byte prefix", "xy"],
    ["prefix and suffix", "user:"],
  ])("base64 of the secret inside a longer value, %s: no run of the secret's own bits survives", (_n, prefix) => {
    for (const suffix of ["", "!", "!!", "@host"]) {
      const raw = Buffer.from(prefix + TOKEN + suffix);
      for (const encoded of [raw.toString("base64"), raw.toString("base64url")]) {
        const out = s.scrub(`Authorization: Basic ${encoded}`);
        expect(out).toContain(REDACTED);
        // What is left around [REDACTED] decodes to no 4-character piece of the token.
        const left = out.replace("Authorization: Basic ", "").split(REDACTED).join("");
        const decoded = Buffer.from(left, "base64").toString("latin1");
        for (let i = 0; i + 4 <= TOKEN.length; i++) {
          const piece = TOKEN.slice(i, i + 4);
          if (!(prefix + suffix).includes(piece)) expect(decoded).not.toContain(piece);
        }
      }
    }
  });

  test(`secrets under ${MIN_SECRET_LENGTH} chars are not counted`, () => expect(s.size).toBe(2));

  test("a secret containing another is replaced whole", () => {
    const t = new SecretScrubber(["abcdefgh", "abcdefgh-longer"]);
    expect(t.scrub("x abcdefgh-longer y")).toBe(`x ${REDACTED} y`);
  });

  test("regex metacharacters in secrets are literal", () => {
    const t = new SecretScrubber(["a.b*c+d?(e)"]);
    expect(t.scrub("a.b*c+d?(e) aXbbcd")).toBe(`${REDACTED} aXbbcd`);
  });

  test("scrubTruncated hides a secret cut in half at the end", () => {
    const t = new SecretScrubber([TOKEN]);
    const cut = `log line ${TOKEN.slice(0, 10)}`;
    expect(t.scrubTruncated(cut)).not.toContain(TOKEN.slice(0, 4));
  });
});

describe("SecretScrubber.scrubValue", () => {
  const s = new SecretScrubber([TOKEN]);
  test("nested objects, arrays and keys", () => {
    const event = {
      type: "STATE_SNAPSHOT",
      snapshot: { env: { GITHUB_TOKEN: TOKEN }, list: [1, `x${TOKEN}`, { [TOKEN]: true }], n: null, b: false },
    };
    const out = s.scrubValue(event);
    expect(JSON.stringify(out)).not.toContain(TOKEN);
    expect(out.snapshot.env.GITHUB_TOKEN).toBe(REDACTED);
    expect(out.snapshot.list[1]).toBe(`x${REDACTED}`);
    expect(out.snapshot.list[2] as unknown).toEqual({ [REDACTED]: true });
    expect(out.snapshot.n).toBeNull();
    expect(event.snapshot.env.GITHUB_TOKEN).toBe(TOKEN); // input untouched
  });
  test("a JSON string inside a string field (escaped quotes) is scrubbed", () => {
    const q = new SecretScrubber([QUOTED]);
    const out = q.scrubValue({ type: "TOOL_CALL_RESULT", content: JSON.stringify({ password: QUOTED }) });
    expect(out.content).toBe(`{"password":"${REDACTED}"}`);
  });
});

describe("secret split across stdout chunks", () => {
  test("scrubbing per complete line catches it", () => {
    const s = new SecretScrubber([TOKEN]);
    const line = JSON.stringify({ type: "TEXT_MESSAGE_CONTENT", messageId: "m", delta: `token ${TOKEN}` }) + "\n";
    const bytes = Buffer.from(line);
    const cut = line.indexOf(TOKEN) + 5;
    const out: string[] = [];
    const splitter = new LineSplitter(1 << 20, (l) => out.push(l));
    splitter.push(bytes.subarray(0, cut));
    expect(out).toEqual([]); // nothing delivered mid-line
    splitter.push(bytes.subarray(cut));
    expect(out).toHaveLength(1);
    const parsed = parseEventLine(out[0]!);
    expect(parsed.kind).toBe("event");
    if (parsed.kind === "event") expect((s.scrubValue(parsed.event) as unknown as { delta: string }).delta).toBe(`token ${REDACTED}`);
  });
});
