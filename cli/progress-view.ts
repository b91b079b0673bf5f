import cliProgress from 'cli-progress';
import type { WatchResult } from './job-watcher.js';
import type { ServerMessage } from './socket-messages.js';
import { StageBoard, type StageLine, type StageState } from './stage-board.js';
import { failureOf } from '../common/failures.js';

/** How a watched job is shown: bars on a terminal, lines in CI logs, NDJSON for scripts. */
export interface JobView {
  message(message: ServerMessage): void;
  reconnecting(attempt: number, reason: string): void;
  /** Shows the outcome; the caller turns it into the exit code. */
  finish(jobId: string, result: WatchResult): void;
  /** Leaves the terminal clean when the watch ends without an outcome (an error, Ctrl-C). */
  abandon(): void;
}

/** Defaults of createJobView's options. */
export const JOB_VIEW_DEFAULTS = { lineIntervalMs: 5_000 } as const;

/** Picks the view: --json wins, then a terminal gets bars, anything else (CI, pipes) gets plain lines. */
export function createJobView(options: {
  json: boolean;
  out: NodeJS.WriteStream;
  /**
   * Without a terminal, at most one progress line this often.
   * @default 5000 (JOB_VIEW_DEFAULTS.lineIntervalMs)
   */
  lineIntervalMs?: number;
}): JobView {
  if (options.json) return new NdjsonView(options.out);
  if (options.out.isTTY) return new TerminalView(options.out);
  return new LineView(options.out, options.lineIntervalMs ?? JOB_VIEW_DEFAULTS.lineIntervalMs);
}

/** The last line of every human view: the job, its outcome and why. */
export function outcomeLine(jobId: string, result: WatchResult): string {
  const why = result.event?.error?.message && result.event.error.message !== result.event.message ? ` (${result.event.error.message})` : '';
  const message = result.event?.message ?? `the job ended as ${result.outcome}`;
  // Only a failure the catalogue marks retryable is worth running again unchanged.
  const error = result.event?.error;
  const retry = error && failureOf(error.type).retryable ? `; retrying may succeed: asset-farm retry ${jobId}` : '';
  return `${jobId} ${result.outcome}: ${message}${why}${retry}`;
}

/** "crate-3.glb completed (4 of 10 assets)": one asset of a batch ended (its `stage-finished` with stage `asset`). */
export function batchAssetLine(message: ServerMessage): string | null {
  if (message.type !== 'event' || message.event !== 'stage-finished' || message.stage !== 'asset') return null;
  const counts = message.result as { total?: number; done?: number; failed?: number; cancelled?: number } | undefined;
  const ended = (counts?.done ?? 0) + (counts?.failed ?? 0) + (counts?.cancelled ?? 0);
  return `${message.message} (${ended} of ${counts?.total ?? '?'} assets)`;
}

const STATE_LABEL: Record<StageState, string> = {
  pending: 'pending',
  active: 'running',
  done: 'done',
  failed: 'FAILED',
  cancelled: 'cancelled',
  skipped: 'skipped',
};

/** One JSON object per line, exactly as the server sent it, for `jq` and scripts. */
class NdjsonView implements JobView {
  constructor(private readonly out: NodeJS.WriteStream) {}
  message(message: ServerMessage): void {
    this.out.write(JSON.stringify(message) + '\n');
  }
  reconnecting(): void {
    // Reconnects are invisible to scripts: the resumed stream has no gap and no duplicate.
  }
  abandon(): void {}
  finish(jobId: string, result: WatchResult): void {
    // Learnt from REST rather than a socket event: still tell the script how the job ended.
    if (!result.event) this.out.write(JSON.stringify({ type: 'status', jobId, outcome: result.outcome }) + '\n');
  }
}

/** Plain lines for logs without a terminal: one per stage change, and the current stage every few seconds. */
class LineView implements JobView {
  private readonly board = new StageBoard();
  private lastWaiting: string | null = null;
  private lastLineAt = 0;
  private pendingProgress = false;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly intervalMs: number,
  ) {}

  message(message: ServerMessage): void {
    const changed = this.board.apply(message);
    for (const stage of changed) this.print(`${stage.name}: ${STATE_LABEL[stage.state]}`);
    if (message.type === 'event' && ['retrying', 'cancelling', 'failed', 'cancelled', 'terminated'].includes(message.event)) {
      this.print(`${message.event}: ${message.message}`);
    }
    const asset = batchAssetLine(message);
    if (asset) this.print(asset);
    if (message.type === 'queue' && this.board.waiting && this.board.waiting !== this.lastWaiting) this.print(this.board.waiting);
    this.lastWaiting = this.board.waiting;
    if (message.type === 'progress') this.pendingProgress = true;
    const active = this.board.stages.find((s) => s.state === 'active');
    if (this.pendingProgress && active && Date.now() - this.lastLineAt >= this.intervalMs) {
      this.print(`${active.name}: ${Math.floor(active.percent)}% ${active.detail} (job ${Math.floor(this.board.jobPercent)}%)`);
    }
  }

  reconnecting(attempt: number, reason: string): void {
    this.print(`connection lost (${reason}); reconnecting, attempt ${attempt}`);
  }

  finish(jobId: string, result: WatchResult): void {
    this.out.write(outcomeLine(jobId, result) + '\n');
  }

  abandon(): void {}

  private print(line: string): void {
    this.out.write(line + '\n');
    this.lastLineAt = Date.now();
    this.pendingProgress = false;
  }
}

/** A live bar per stage (cli-progress), redrawn in place. */
class TerminalView implements JobView {
  private readonly board = new StageBoard();
  private readonly bars: cliProgress.MultiBar;
  private readonly rows = new Map<StageLine, cliProgress.SingleBar>();
  private readonly width: number;

  constructor(private readonly out: NodeJS.WriteStream) {
    this.width = Math.max(...this.board.stages.map((s) => s.name.length));
    this.bars = new cliProgress.MultiBar(
      {
        stream: out,
        format: '{stage} {bar} {pct}  {state}  {detail}',
        barsize: 24,
        hideCursor: true,
        clearOnComplete: false,
        autopadding: true,
      },
      cliProgress.Presets.shades_classic,
    );
    this.sync();
  }

  message(message: ServerMessage): void {
    const asset = batchAssetLine(message);
    if (asset) this.bars.log(`${asset}\n`);
    this.board.apply(message);
    this.sync();
  }

  reconnecting(attempt: number, reason: string): void {
    this.bars.log(`connection lost (${reason}); reconnecting, attempt ${attempt}\n`);
  }

  finish(jobId: string, result: WatchResult): void {
    this.sync();
    this.bars.stop();
    this.out.write(outcomeLine(jobId, result) + '\n');
  }

  abandon(): void {
    // Stopping the bars also shows the cursor again.
    this.bars.stop();
  }

  private sync(): void {
    for (const stage of this.board.stages) {
      const payload = {
        stage: stage.name.padEnd(this.width),
        pct: `${Math.floor(stage.percent)}%`.padStart(4),
        state: STATE_LABEL[stage.state],
        detail: stage.state === 'active' ? (this.board.waiting ?? stage.detail) : '',
      };
      const bar = this.rows.get(stage);
      if (bar) bar.update(Math.round(stage.percent), payload);
      else this.rows.set(stage, this.bars.create(100, Math.round(stage.percent), payload));
    }
  }
}
