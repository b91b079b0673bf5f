import { BUILTIN_STAGE_NAMES } from '../common/stages.js';
import type { JobEventMessage, ProgressMessage } from '../common/progress.js';
import { describeQueuePlace } from '../common/queue-place.js';
import type { ServerMessage } from './socket-messages.js';

export type StageState = 'pending' | 'active' | 'done' | 'failed' | 'cancelled' | 'skipped';

export interface StageLine {
  name: string;
  state: StageState;
  /** Percent of this stage, 0..100. */
  percent: number;
  /** Latest progress text of the stage ("12/30 meshes"). */
  detail: string;
}

/**
 * The pipeline's stages (the job's plan from its `started` event, the built-in stages of common/stages.ts until then) and where a job is in each, folded from its socket
 * messages. Views render it; it knows nothing about terminals.
 */
export class StageBoard {
  readonly stages: StageLine[] = BUILTIN_STAGE_NAMES.map((name) => ({ name, state: 'pending', percent: 0, detail: '' }));
  /** Whole-job percent from the latest progress message. */
  jobPercent = 0;
  latestMessage = '';
  /** "waiting for the HPC machine: …" while the job's stage waits for a slot (common/queue-place.ts), else null. */
  waiting: string | null = null;

  /** Applies a message; returns the stages whose state changed (for views that print only changes). */
  apply(message: ServerMessage): StageLine[] {
    const before = this.stages.map((s) => s.state);
    if (message.type === 'snapshot') {
      if (message.progress) this.applyProgress(message.progress);
      if (message.event) this.applyEvent(message.event);
    } else if (message.type === 'progress') this.applyProgress(message);
    else if (message.type === 'event') this.applyEvent(message);
    else if (message.type === 'queue') this.waiting = describeQueuePlace(message);
    // A stage that reports progress or ends has its slot.
    if (message.type === 'progress' || (message.type === 'event' && message.event !== 'stage-started')) this.waiting = null;
    return this.stages.filter((s, i) => before[i] !== s.state);
  }

  private line(name: string, index?: number): StageLine {
    let line = this.stages.find((s) => s.name === name);
    if (!line) {
      // A stage this board does not list (a job whose `started` event it missed): shown where the server says it runs.
      line = { name, state: 'pending', percent: 0, detail: '' };
      this.stages.splice(Math.min(index ?? this.stages.length, this.stages.length), 0, line);
    }
    return line;
  }

  private applyProgress(progress: ProgressMessage): void {
    const line = this.line(progress.stage, progress.stageIndex);
    const position = this.stages.indexOf(line);
    // Stages run in order, so every stage before the one reporting has finished.
    for (const earlier of this.stages.slice(0, position)) {
      if (earlier.state === 'pending' || earlier.state === 'active') Object.assign(earlier, { state: 'done', percent: 100 });
    }
    line.percent = progress.total > 0 ? Math.min(100, (progress.done / progress.total) * 100) : line.percent;
    line.state = line.percent >= 100 ? 'done' : 'active';
    line.detail = progress.total > 0 ? `${progress.done}/${progress.total} ${progress.unit}` : progress.message;
    this.jobPercent = progress.percent;
    this.latestMessage = progress.message;
  }

  private applyEvent(event: JobEventMessage): void {
    this.latestMessage = event.message;
    // The job's own plan: it may have stages this CLI's registry does not list, or lack some it does.
    if (event.event === 'started' && event.stages?.length) {
      const known = new Map(this.stages.map((s) => [s.name, s]));
      this.stages.splice(
        0,
        this.stages.length,
        ...event.stages.map((name) => known.get(name) ?? { name, state: 'pending' as const, percent: 0, detail: '' }),
      );
    }
    const active = (event.stage ? this.line(event.stage) : undefined) ?? this.stages.find((s) => s.state === 'active');
    switch (event.event) {
      case 'stage-started':
        if (active) active.state = 'active';
        break;
      case 'stage-finished':
        if (active) Object.assign(active, { state: 'done', percent: 100 });
        break;
      case 'completed':
        this.jobPercent = 100;
        for (const s of this.stages) {
          if (s.state === 'active') Object.assign(s, { state: 'done', percent: 100 });
          // A completed job ran every stage it needed; one never reported was not part of this job.
          else if (s.state === 'pending') s.state = 'skipped';
        }
        break;
      case 'failed': {
        const failing = active && active.state !== 'done' ? active : this.stages.find((s) => s.state === 'pending');
        if (failing) failing.state = 'failed';
        break;
      }
      case 'cancelled':
      case 'terminated':
        for (const s of this.stages) if (s.state === 'active') s.state = 'cancelled';
        break;
      default:
        break;
    }
  }
}
