/**
 * Command-line options of `npm run bench`, with the defaults of the full and quick modes.
 */
import { parseArgs } from "node:util";
import type { PinLayout } from "./cpu-plan.ts";

/** Everything that shapes a run; recorded verbatim in the JSON report. */
export interface BenchConfig {
  quick: boolean;
  /** Interleaved rounds (A B C A B C ...); the table reports the median over rounds. */
  rounds: number;
  /** Closed-loop connections (wrk -c). */
  connections: number;
  /** Closed-loop duration per measurement, seconds (whole seconds with wrk). */
  closedDurationS: number;
  /** Open-loop request rate, requests per second. */
  openRate: number;
  /** Open-loop duration per measurement, seconds. */
  openDurationS: number;
  /** Unrecorded open-loop lead-in before each measurement, seconds (see OpenLoopSpec.leadInS). */
  openLeadInS: number;
  /** Unmeasured warm-up requests per route and target before the first round. */
  warmupRequests: number;
  pin: PinLayout;
  /** Closed-loop generator: wrk when installed, else the Node one; `node` forces the fallback. */
  load: "auto" | "wrk" | "node";
  /**
   * Open-loop dispatch: `spin` (precise, needs a quiet core), `timer` (about 1 ms late), or
   * `auto`: spin when the generator has a pinned core and the machine is quiet at the start.
   */
  dispatch: "auto" | "spin" | "timer";
  /** Only run targets whose name is listed (all when empty). */
  targets: string[];
  /** Extra sections to run by id (all when undefined; none when empty). */
  sections: string[] | undefined;
  /** Back-to-back pairs (bare Node, then the target, or the reverse) per route; 0 for none. */
  pairs: number;
  /** Closed-loop seconds of each run of a pair. */
  pairDurationS: number;
  /** Targets measured in pairs against bare Node (see bench/paired.ts). */
  paired: string[];
  /** Where the JSON report goes. */
  outDir: string;
}

export const USAGE = `Usage: npm run bench [-- options]

  --quick               CI smoke mode: 1 round, short runs (< 1 minute); asserts nothing about speed
  --rounds N            interleaved rounds, medians reported (default 3; quick 1)
  --connections N       closed-loop connections (default 50)
  --duration S          closed-loop seconds per measurement (default 10; quick 1)
  --rate R              open-loop requests per second (default 1000)
  --open-duration S     open-loop seconds per measurement (default 10; quick 1)
  --warmup N            warm-up requests per route and target (default 20000; quick 1000)
  --pin split|none      core layout (default split: load generator on the last core, servers on the others)
  --load auto|wrk|node  closed-loop generator (default auto: wrk if installed, else built-in Node)
  --dispatch auto|spin|timer  open-loop send timing (default auto: spin on a pinned, quiet core)
  --targets a,b         only these targets (names as printed in the table; "none" for no table)
                        (--quick runs direct, nginx, bare-node and latchkey-embedded by default)
  --sections a,b|none   only these extra sections (paired-throughput, revocation-propagation,
                        audit-ingest; default all)
  --pairs N             paired-throughput: back-to-back pairs per route against bare-node
                        (default 16; quick 1; 0 for none; at most 1000)
  --pair-duration S     closed-loop seconds of each run of a pair (default 2; quick 1)
  --paired a,b          targets measured in pairs (default latchkey-cluster-1gw; quick latchkey-embedded)
  --out DIR             JSON report directory (default bench/results)
  --help
`;

/** A comma-separated list of names, blanks dropped. */
function names(value: string): string[] {
  return value
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");
}

function positiveNumber(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new Error(`--${name} must be a positive number, got ${value}`);
  return n;
}

function wholeNumber(
  name: string,
  value: string | undefined,
  fallback: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw new Error(`--${name} must be a whole number from 0 to ${max}, got ${value}`);
  return n;
}

/** Parses argv (without node and script); prints usage and exits on --help. */
export function parseConfig(argv: string[], defaultOutDir: string): BenchConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      rounds: { type: "string" },
      connections: { type: "string" },
      duration: { type: "string" },
      rate: { type: "string" },
      "open-duration": { type: "string" },
      warmup: { type: "string" },
      pin: { type: "string", default: "split" },
      load: { type: "string", default: "auto" },
      dispatch: { type: "string", default: "auto" },
      targets: { type: "string", default: "" },
      sections: { type: "string" },
      pairs: { type: "string" },
      "pair-duration": { type: "string" },
      paired: { type: "string" },
      out: { type: "string", default: defaultOutDir },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const quick = values.quick;
  if (values.pin !== "split" && values.pin !== "none")
    throw new Error(`--pin must be split or none, got ${values.pin}`);
  if (values.load !== "auto" && values.load !== "wrk" && values.load !== "node") {
    throw new Error(`--load must be auto, wrk or node, got ${values.load}`);
  }
  if (values.dispatch !== "auto" && values.dispatch !== "spin" && values.dispatch !== "timer") {
    throw new Error(`--dispatch must be auto, spin or timer, got ${values.dispatch}`);
  }
  const openDurationS = positiveNumber("open-duration", values["open-duration"], quick ? 1 : 10);
  return {
    quick,
    rounds: Math.round(positiveNumber("rounds", values.rounds, quick ? 1 : 3)),
    connections: Math.round(positiveNumber("connections", values.connections, 50)),
    closedDurationS: positiveNumber("duration", values.duration, quick ? 1 : 10),
    openRate: positiveNumber("rate", values.rate, 1000),
    openDurationS,
    // 1 s before a 10-s measurement; a fifth of a shorter one (0.2 s in quick mode).
    openLeadInS: Math.min(1, openDurationS / 5),
    warmupRequests: Math.round(positiveNumber("warmup", values.warmup, quick ? 1000 : 20000)),
    pin: values.pin,
    load: values.load,
    dispatch: values.dispatch,
    targets: names(values.targets),
    sections:
      values.sections === undefined
        ? undefined
        : values.sections === "none"
          ? []
          : names(values.sections),
    pairs: wholeNumber("pairs", values.pairs, quick ? 1 : 16, 1000),
    pairDurationS: positiveNumber("pair-duration", values["pair-duration"], quick ? 1 : 2),
    paired: names(values.paired ?? (quick ? "latchkey-embedded" : "latchkey-cluster-1gw")),
    outDir: values.out,
  };
}
