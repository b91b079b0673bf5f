import { describeQueuePlace } from '../../common/queue-place.js';
import { explainJobFailure } from './artist-messages.js';
import { el, setText } from './dom.js';
import { formatDuration, formatWhen } from './format.js';
import {
  batchPercent,
  elapsedMs,
  isStalled,
  jobPercent,
  stageEtaMs,
  stageRows,
  TERMINAL_PHASES,
  type JobPhase,
  type JobView,
} from './job-model.js';

export interface JobActions {
  cancel(jobId: string): void;
  retry(jobId: string): void;
  openResult(jobId: string): void;
  downloadAll(jobId: string): void;
  /** An object URL of the job's turntable still, or null when it has none. */
  thumbnail(jobId: string): Promise<string | null>;
}

const PHASE_LABEL: Record<JobPhase, string> = {
  queued: 'Queued',
  running: 'Running',
  cancelling: 'Cancelling…',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

/** The parts of one job card that change, kept so an update touches only them (focus stays put). */
interface JobCard {
  root: HTMLElement;
  badge: HTMLElement;
  priority: HTMLElement;
  retryOf: HTMLElement;
  queuePlace: HTMLElement;
  /** A batch's assets, collapsed until the artist opens them. */
  assets: HTMLDetailsElement;
  assetsSummary: HTMLElement;
  assetList: HTMLUListElement;
  stalled: HTMLElement;
  jobBar: HTMLProgressElement;
  jobValue: HTMLElement;
  stageLabel: HTMLElement;
  stageBar: HTMLProgressElement;
  stageValue: HTMLElement;
  stageMessage: HTMLElement;
  stages: HTMLOListElement;
  elapsed: HTMLElement;
  eta: HTMLElement;
  attemptRow: HTMLElement;
  attempt: HTMLElement;
  problem: HTMLElement;
  notice: HTMLElement;
  cancel: HTMLButtonElement;
  retry: HTMLButtonElement;
  result: HTMLButtonElement;
  zip: HTMLButtonElement;
  thumbnail: HTMLImageElement;
}

function fact(label: string): { row: HTMLElement; value: HTMLElement } {
  const value = el('dd');
  return { row: el('div', {}, el('dt', {}, label), value), value };
}

/** The live list of the artist's jobs, newest first, one card a job updated in place. */
export class JobsView {
  private readonly cards = new Map<string, JobCard>();
  /** Per-job messages from actions (e.g. "retry is not available"), shown until the next action. */
  private readonly notices = new Map<string, string>();

  constructor(
    private readonly list: HTMLElement,
    private readonly empty: HTMLElement,
    private readonly actions: JobActions,
  ) {}

  setNotice(jobId: string, text: string | null): void {
    if (text) this.notices.set(jobId, text);
    else this.notices.delete(jobId);
  }

  render(jobs: JobView[], now: number, assetsOf: ReadonlyMap<string, JobView[]> = new Map()): void {
    this.empty.hidden = jobs.length > 0;
    let previous: Element | null = null;
    for (const job of jobs) {
      const card = this.cards.get(job.jobId) ?? this.create(job);
      this.update(card, job, now);
      if (job.kind === 'batch') this.updateBatch(card, job, assetsOf.get(job.jobId) ?? []);
      // Keep DOM order newest first without re-creating nodes (which would lose focus).
      const expectedNext: Element | null = previous ? previous.nextElementSibling : this.list.firstElementChild;
      if (expectedNext !== card.root) {
        if (previous) previous.after(card.root);
        else this.list.prepend(card.root);
      }
      previous = card.root;
    }
    // A job no longer shown on its own (it turned out to be one of a batch's assets) loses its card.
    const shown = new Set(jobs.map((j) => j.jobId));
    for (const [jobId, card] of this.cards) {
      if (shown.has(jobId)) continue;
      card.root.remove();
      this.cards.delete(jobId);
    }
  }

  private create(job: JobView): JobCard {
    const titleId = `job-title-${job.jobId}`;
    const jobBarId = `job-bar-${job.jobId}`;
    const stageBarId = `stage-bar-${job.jobId}`;
    const elapsed = fact('Elapsed');
    const eta = fact('Time left');
    const attempt = fact('Attempt');
    const card: JobCard = {
      root: el('article', { class: 'job', 'data-job-id': job.jobId, 'aria-labelledby': titleId }),
      badge: el('span', { class: 'badge' }),
      stalled: el('span', { class: 'badge stalled', title: 'No progress has arrived for a while' }, 'Stalled'),
      priority: el('span', { class: 'badge priority' }),
      retryOf: el('p', { class: 'retry-of' }),
      queuePlace: el('p', { class: 'queue-place', role: 'status' }),
      assets: el('details', { class: 'batch-assets', hidden: true }),
      assetsSummary: el('summary'),
      assetList: el('ul'),
      jobBar: el('progress', { id: jobBarId, max: 100, value: 0 }),
      jobValue: el('span', { class: 'value' }),
      stageLabel: el('label', { for: stageBarId }),
      stageBar: el('progress', { id: stageBarId, max: 100, value: 0 }),
      stageValue: el('span', { class: 'value' }),
      stageMessage: el('p', { class: 'stage-message' }),
      stages: el('ol', { class: 'stages', 'aria-label': 'Stages' }),
      elapsed: elapsed.value,
      eta: eta.value,
      attemptRow: attempt.row,
      attempt: attempt.value,
      problem: el('div', { class: 'problem', role: 'alert' }),
      notice: el('p', { class: 'notice', role: 'status' }),
      cancel: el('button', { type: 'button', class: 'danger' }, 'Cancel'),
      retry: el('button', { type: 'button', class: 'secondary' }, 'Retry'),
      result: el('button', { type: 'button' }, 'Result & downloads'),
      zip: el('button', { type: 'button', class: 'secondary' }, 'Download all (.zip)'),
      thumbnail: el('img', { class: 'thumbnail', alt: '', width: 64, height: 64, hidden: true }),
    };
    card.assets.append(card.assetsSummary, card.assetList);
    card.cancel.addEventListener('click', () => this.actions.cancel(job.jobId));
    card.retry.addEventListener('click', () => this.actions.retry(job.jobId));
    card.result.addEventListener('click', () => this.actions.openResult(job.jobId));
    card.zip.addEventListener('click', () => this.actions.downloadAll(job.jobId));
    card.root.append(
      el(
        'div',
        { class: 'job-head' },
        card.thumbnail,
        el('h3', { id: titleId }),
        card.badge,
        card.priority,
        card.stalled,
        el('span', { class: 'job-id' }, job.jobId),
      ),
      card.retryOf,
      card.queuePlace,
      el(
        'div',
        { class: 'bars' },
        el('label', { for: jobBarId }, 'Whole job'),
        card.jobBar,
        card.jobValue,
        card.stageLabel,
        card.stageBar,
        card.stageValue,
        card.stageMessage,
      ),
      card.stages,
      card.assets,
      el('dl', { class: 'facts' }, elapsed.row, eta.row, attempt.row),
      card.problem,
      card.notice,
      el('div', { class: 'actions' }, card.cancel, card.retry, card.result, card.zip),
    );
    this.cards.set(job.jobId, card);
    return card;
  }

  /** A batch's card: its percent over its assets, and a collapsible list of them with each one's state. */
  private updateBatch(card: JobCard, batch: JobView, assets: JobView[]): void {
    card.root.dataset.kind = 'batch';
    // A batch has no stages or outputs of its own: its assets have.
    for (const part of [card.stages, card.stageLabel, card.stageBar, card.stageValue, card.result, card.zip]) part.hidden = true;
    setText(card.stageMessage, batch.lastEvent?.message ?? 'Starting the batch…');
    const percent = Math.round(batchPercent(batch, assets));
    card.jobBar.value = percent;
    setText(card.jobValue, `${percent}%`);
    const count = (phase: JobPhase) => assets.filter((a) => a.phase === phase).length;
    const total = Math.max(assets.length, (batch.lastEvent?.result as { total?: number } | undefined)?.total ?? 0);
    setText(
      card.assetsSummary,
      `${total} assets: ${count('completed')} done, ${count('failed')} failed, ${count('running') + count('cancelling')} running, ${Math.max(0, total - assets.length) + count('queued')} waiting`,
    );
    card.assets.hidden = false;
    const key = assets.map((a) => `${a.jobId}:${a.phase}:${Math.round(jobPercent(a))}`).join(',');
    if (card.assetList.dataset.key === key) return;
    card.assetList.dataset.key = key;
    card.assetList.replaceChildren(
      ...[...assets]
        .reverse()
        .map((a) =>
          el(
            'li',
            { 'data-job-id': a.jobId, 'data-phase': a.phase },
            el('span', { class: 'asset-name' }, a.assetName),
            ` ${PHASE_LABEL[a.phase]} ${Math.round(TERMINAL_PHASES.has(a.phase) && a.phase === 'completed' ? 100 : jobPercent(a))}%`,
          ),
        ),
    );
  }

  private update(card: JobCard, job: JobView, now: number): void {
    const { root } = card;
    root.dataset.phase = job.phase;
    // The sequence number the card is at (docs/PROTOCOL.md): what the page resubscribes from.
    root.dataset.seq = String(job.lastSeq);
    setText(root.querySelector('h3')!, job.assetName);
    card.badge.dataset.phase = job.phase;
    setText(card.badge, PHASE_LABEL[job.phase]);
    card.stalled.hidden = !isStalled(job, now);
    // Only a job that is not normal says so: urgent ones jump the queue, background ones wait for the rest.
    card.priority.hidden = !job.priority || job.priority === 'normal';
    card.priority.dataset.priority = job.priority ?? 'normal';
    setText(card.priority, job.priority === 'urgent' ? 'Urgent' : 'Background');
    const waiting = job.queuePlace ? describeQueuePlace(job.queuePlace) : null;
    card.queuePlace.hidden = !waiting;
    // "Waiting for the HPC machine: 3 jobs ahead of yours, about 2 min" (common/queue-place.ts).
    setText(card.queuePlace, waiting ? waiting.charAt(0).toUpperCase() + waiting.slice(1) : '');
    card.retryOf.hidden = !job.retryOf;
    setText(card.retryOf, job.retryOf ? retryLine(job) : '');

    const percent = Math.round(jobPercent(job));
    card.jobBar.value = percent;
    setText(card.jobValue, `${percent}%`);
    const stages = stageRows(job);
    const current = stages.find((s) => s.state === 'active' || s.state === 'failed' || s.state === 'cancelled');
    const shown = current ?? (job.phase === 'completed' ? stages.at(-1) : stages.find((s) => s.state === 'pending'));
    setText(card.stageLabel, shown ? `Stage: ${shown.name}` : 'Stage');
    card.stageBar.value = Math.round((shown?.fraction ?? 0) * 100);
    setText(card.stageValue, `${Math.round((shown?.fraction ?? 0) * 100)}%`);
    const message =
      job.phase === 'queued' || (!job.progress && job.phase === 'running')
        ? 'Waiting for the HPC machine to pick the job up.'
        : job.phase === 'failed'
          ? `Stopped during ${shown?.name ?? 'the first stage'}.`
          : TERMINAL_PHASES.has(job.phase) || job.phase === 'cancelling'
            ? (job.lastEvent?.message ?? '')
            : (job.progress?.message ?? '');
    setText(card.stageMessage, message);

    const stagesKey = stages.map((s) => `${s.name}:${s.state}`).join(',');
    if (card.stages.dataset.key !== stagesKey) {
      card.stages.dataset.key = stagesKey;
      card.stages.replaceChildren(
        ...stages.map((s) =>
          el(
            'li',
            { 'data-state': s.state },
            `${s.state === 'done' ? '✓ ' : s.state === 'active' ? '▶ ' : ''}${s.name}`,
            el('span', { class: 'visually-hidden' }, ` (${s.state})`),
          ),
        ),
      );
    }

    setText(card.elapsed, formatDuration(elapsedMs(job, now)));
    const etaMs = stageEtaMs(job);
    setText(
      card.eta,
      TERMINAL_PHASES.has(job.phase)
        ? '—'
        : etaMs === null
          ? 'estimating…'
          : etaMs < 1000
            ? 'under a second in this stage'
            : `about ${formatDuration(etaMs)} in this stage`,
    );
    card.attemptRow.hidden = job.attempt <= 1;
    setText(card.attempt, `${job.attempt} (retried after a failure)`);

    const failure = job.phase === 'failed' ? explainJobFailure(job.lastEvent?.error) : null;
    if (failure) {
      const key = JSON.stringify(failure);
      if (card.problem.dataset.key !== key) {
        card.problem.dataset.key = key;
        card.problem.replaceChildren(el('strong', {}, failure.title), el('p', {}, failure.advice));
        if (failure.details.length > 0) card.problem.append(el('ul', {}, ...failure.details.map((d) => el('li', {}, d))));
      }
      card.problem.hidden = false;
    } else card.problem.hidden = true;

    const notice = this.notices.get(job.jobId);
    card.notice.hidden = !notice;
    setText(card.notice, notice ?? '');

    const running = !TERMINAL_PHASES.has(job.phase);
    card.cancel.hidden = !running;
    card.cancel.disabled = job.phase === 'cancelling';
    setText(card.cancel, job.phase === 'cancelling' ? 'Cancelling…' : 'Cancel');
    // A failure that can only repeat (a broken asset, a farm bug) is not offered Retry.
    card.retry.hidden = !(job.phase === 'cancelled' || failure?.retryable === true);
    card.result.hidden = job.phase !== 'completed';
    if (job.phase === 'completed' && !card.thumbnail.dataset.requested) {
      card.thumbnail.dataset.requested = 'true';
      void this.actions.thumbnail(job.jobId).then((url) => {
        if (!url) return;
        card.thumbnail.src = url;
        card.thumbnail.alt = `Turntable still of ${job.assetName}`;
        card.thumbnail.hidden = false;
      });
    }
    card.zip.hidden = job.phase !== 'completed';
  }
}

/** "Retry of asset-… by alice at 2 Dec 2026, 01:45": who asked and when, from the job's memo. */
function retryLine(job: JobView): string {
  const who = job.retry ? ` by ${job.retry.by} at ${formatWhen(job.retry.at)}` : '';
  return `Retry of ${job.retryOf}${who}`;
}
