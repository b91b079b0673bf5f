import { withoutModelExtension } from '../../common/model-files.js';
import { PREVIEW_FILES } from '../../common/pipeline.js';
import { ApiError, ApiClient } from './api-client.js';
import { announce, byId, saveBlob, setText } from './dom.js';
import {
  applyMessage,
  applyQueuePlace,
  applySnapshot,
  byNewest,
  jobFromSummary,
  markCancelling,
  mergeSummary,
  newJob,
  TERMINAL_PHASES,
  type JobView,
} from './job-model.js';
import { JobsView } from './jobs-view.js';
import { ProgressSocket, type ConnectionState } from './progress-socket.js';
import { ResultView } from './result-view.js';
import { JobDetailBody, JobListBody, StartedJobBody, type ServerFrame } from './server-frames.js';
import type { Session } from './session.js';

const LIST_LIMIT = 50;
const PHASE_ANNOUNCEMENT = { completed: 'is ready', failed: 'failed', cancelled: 'was cancelled' } as const;

/**
 * The signed-in page: the artist's jobs from REST, kept live by the socket. REST gives the list (and jobs
 * started while the page was away); the socket gives every change, resumed from each job's lastSeq.
 */
export class JobBoard {
  readonly api: ApiClient;
  private readonly jobs = new Map<string, JobView>();
  /** Files uploaded from this tab, for the result view's "original" pane. */
  private readonly originals = new Map<string, File[]>();
  /** Jobs whose REST summary was asked for after the socket first mentioned them. */
  private readonly summaryRequested = new Set<string>();
  private readonly socket: ProgressSocket;
  private readonly view: JobsView;
  private readonly result: ResultView;
  private readonly ticker: ReturnType<typeof setInterval>;
  private readonly connection = byId('connection');
  private readonly problem = byId('jobs-problem');
  private stopped = false;
  /** Start time of the oldest job listed, when the API has older ones (GET /api/jobs?before=). */
  private olderBefore: string | null = null;
  private readonly olderButton = byId<HTMLButtonElement>('older-jobs');
  private readonly onOlder = () => void this.loadList(this.olderBefore ?? undefined);

  constructor(
    private readonly session: Session,
    private readonly onSignedOut: (message: string) => void,
  ) {
    this.api = new ApiClient(session.token, (err) => this.signOutWith(err.message));
    byId('job-list').replaceChildren();
    this.view = new JobsView(byId('job-list'), byId('jobs-empty'), {
      cancel: (id) => void this.cancel(id),
      retry: (id) => void this.retry(id),
      openResult: (id) => void this.result.open(id, this.jobs.get(id)?.assetName ?? id),
      downloadAll: (id) => void this.downloadAll(id),
      thumbnail: (id) => this.thumbnail(id),
    });
    this.result = new ResultView(
      () => this.api,
      (id) => this.originals.get(id),
    );
    this.socket = new ProgressSocket({
      token: session.token,
      onFrame: (frame) => this.onFrame(frame),
      onState: (state) => this.showConnection(state),
      onAuthRefused: (message) => this.signOutWith(message),
      onOpen: () => void this.resync(),
    });
    // Elapsed time and the stalled mark change with the clock, not with messages.
    this.ticker = setInterval(() => this.render(), 1000);
    if (session.expiresAt !== null) {
      const ms = session.expiresAt - Date.now();
      // setTimeout takes at most 2^31-1 ms; a longer-lived token is checked again on the next load.
      if (ms < 2 ** 31 - 1) setTimeout(() => this.signOutWith('Your session has expired; sign in again.'), Math.max(0, ms));
    }
  }

  start(): void {
    this.olderButton.addEventListener('click', this.onOlder);
    void this.loadList();
    this.socket.start();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.ticker);
    this.olderButton.removeEventListener('click', this.onOlder);
    this.olderButton.hidden = true;
    this.socket.stop();
    this.connection.hidden = true;
  }

  /** A job this page just uploaded: shown at once, followed live from its first message. */
  jobStarted(jobId: string, assetName: string, files: File[], kind: JobView['kind'] = 'asset'): void {
    this.originals.set(jobId, files);
    if (!this.jobs.has(jobId)) this.jobs.set(jobId, { ...newJob(jobId, assetName, Date.now()), kind });
    this.socket.send({ type: 'subscribe', jobId });
    announce(`${assetName} uploaded; the job has started.`);
    this.render();
  }

  private signOutWith(message: string): void {
    if (this.stopped) return;
    this.stop();
    this.onSignedOut(message);
  }

  /** Loads the newest page of jobs, or with `before` the page of older ones, and follows any new to the page. */
  private async loadList(before?: string): Promise<void> {
    try {
      const query = `limit=${LIST_LIMIT}${before ? `&before=${encodeURIComponent(before)}` : ''}`;
      const body = await this.api.json(`/api/jobs?${query}`, JobListBody);
      const now = Date.now();
      for (const summary of body.jobs) {
        const known = this.jobs.get(summary.jobId);
        this.jobs.set(summary.jobId, known ? mergeSummary(known, summary) : jobFromSummary(summary, now));
        if (before && !known) this.socket.send({ type: 'subscribe', jobId: summary.jobId });
      }
      // The newest page says whether older ones exist only the first time; later pages move the cursor.
      if (before || this.olderBefore === null) this.olderBefore = body.nextBefore;
      this.olderButton.hidden = this.olderBefore === null;
      this.problem.hidden = true;
      this.render();
    } catch (err) {
      if (err instanceof ApiError && err.isAuth) return;
      setText(this.problem, `Could not load your jobs. ${err instanceof ApiError ? err.message : ''}`);
      this.problem.hidden = false;
    }
  }

  /** After every (re)connect: refresh the list, then follow each job from where the page left it. */
  private async resync(): Promise<void> {
    await this.loadList();
    for (const job of this.jobs.values()) {
      if (TERMINAL_PHASES.has(job.phase) && job.lastSeq > 0) continue;
      this.socket.send({ type: 'subscribe', jobId: job.jobId, ...(job.lastSeq > 0 ? { lastSeq: job.lastSeq } : {}) });
    }
  }

  private onFrame(frame: ServerFrame): void {
    const now = Date.now();
    if (frame.type === 'subscribed') return;
    if (frame.type === 'error') {
      if (frame.code === 'UNAVAILABLE') {
        setText(this.problem, 'Live progress is unavailable right now; the page retries by itself.');
        this.problem.hidden = false;
        setTimeout(() => void this.resync(), 5000);
      } else if (frame.code === 'JOB_NOT_FOUND' && frame.jobId) {
        this.jobs.delete(frame.jobId);
        this.render();
      } else console.warn('asset-farm socket error', frame);
      return;
    }
    const before = this.jobs.get(frame.jobId) ?? this.unknownJob(frame.jobId, now);
    const after =
      frame.type === 'snapshot'
        ? applySnapshot(before, frame, now)
        : frame.type === 'queue'
          ? applyQueuePlace(before, frame)
          : applyMessage(before, frame, now);
    this.jobs.set(frame.jobId, after);
    if (after.phase !== before.phase && after.phase in PHASE_ANNOUNCEMENT) {
      announce(`${after.assetName} ${PHASE_ANNOUNCEMENT[after.phase as keyof typeof PHASE_ANNOUNCEMENT]}.`);
      if (after.phase !== 'completed') this.view.setNotice(after.jobId, null);
    }
    // subscribeAll keeps delivering a finished job's messages, so its own subscription can go.
    if (TERMINAL_PHASES.has(after.phase)) this.socket.send({ type: 'unsubscribe', jobId: after.jobId });
    this.render();
  }

  /** A job first heard of on the socket (started in another tab): its name comes from REST. */
  private unknownJob(jobId: string, now: number): JobView {
    const job = newJob(jobId, jobId, now);
    if (!this.summaryRequested.has(jobId)) {
      this.summaryRequested.add(jobId);
      this.api
        .json(`/api/jobs/${encodeURIComponent(jobId)}`, JobDetailBody)
        .then((detail) => {
          const known = this.jobs.get(jobId);
          if (known) this.jobs.set(jobId, mergeSummary(known, detail));
          this.render();
        })
        .catch((err: unknown) => console.warn('asset-farm: no summary for', jobId, err));
    }
    return job;
  }

  private async cancel(jobId: string): Promise<void> {
    const job = this.jobs.get(jobId);
    if (!job) return;
    this.jobs.set(jobId, markCancelling(job));
    this.view.setNotice(jobId, null);
    this.render();
    try {
      await this.api.fetch(`/api/jobs/${encodeURIComponent(jobId)}/cancel`, { method: 'POST' });
      announce(`Cancelling ${job.assetName}…`);
    } catch (err) {
      const now = this.jobs.get(jobId);
      if (now?.phase === 'cancelling') this.jobs.set(jobId, { ...now, phase: job.phase, cancelRequested: false });
      this.view.setNotice(jobId, `Could not cancel: ${err instanceof ApiError ? err.message : 'unknown error'}`);
      this.render();
    }
  }

  private async retry(jobId: string): Promise<void> {
    const job = this.jobs.get(jobId);
    if (!job) return;
    this.view.setNotice(jobId, 'Asking the farm to retry…');
    this.render();
    try {
      const response = await this.api.fetch(`/api/jobs/${encodeURIComponent(jobId)}/retry`, { method: 'POST' });
      const body = StartedJobBody.safeParse(await response.json().catch(() => null));
      const newId = body.success ? body.data.jobId : jobId;
      this.view.setNotice(jobId, newId === jobId ? null : `Retried as a new job.`);
      if (newId === jobId) this.jobs.set(jobId, { ...job, phase: 'queued', closedAt: null });
      else {
        const files = this.originals.get(jobId);
        if (files) this.originals.set(newId, files);
        this.jobs.set(newId, newJob(newId, job.assetName, Date.now()));
      }
      this.socket.send({ type: 'subscribe', jobId: newId, ...(newId === jobId && job.lastSeq > 0 ? { lastSeq: job.lastSeq } : {}) });
      announce(`Retrying ${job.assetName}.`);
      void this.loadList();
    } catch (err) {
      this.view.setNotice(jobId, `Could not retry: ${err instanceof ApiError ? err.message : 'unknown error'}`);
    }
    this.render();
  }

  /** The job's turntable still (preview stage) as an object URL; null for a job without one (no Blender, older jobs). */
  private async thumbnail(jobId: string): Promise<string | null> {
    try {
      return URL.createObjectURL(await this.api.blob(`/api/jobs/${encodeURIComponent(jobId)}/outputs/${PREVIEW_FILES.thumbnail}`));
    } catch {
      return null;
    }
  }

  private async downloadAll(jobId: string): Promise<void> {
    const job = this.jobs.get(jobId);
    this.view.setNotice(jobId, 'Preparing the download…');
    this.render();
    try {
      const blob = await this.api.blob(`/api/jobs/${encodeURIComponent(jobId)}/outputs.zip`);
      saveBlob(blob, `${withoutModelExtension(job?.assetName ?? jobId)}-outputs.zip`);
      this.view.setNotice(jobId, null);
    } catch (err) {
      this.view.setNotice(jobId, `Could not download: ${err instanceof ApiError ? err.message : 'unknown error'}`);
    }
    this.render();
  }

  private showConnection(state: ConnectionState): void {
    this.connection.hidden = false;
    this.connection.dataset.state = state.kind;
    setText(
      this.connection,
      state.kind === 'online'
        ? 'Live'
        : state.kind === 'connecting'
          ? 'Connecting…'
          : `Offline: ${state.reason} Retrying in ${Math.ceil(state.retryInMs / 1000)} s; progress resumes where it left off.`,
    );
  }

  private render(): void {
    // A batch's asset jobs show inside the batch's card, not as cards of their own.
    const all = [...this.jobs.values()].sort(byNewest);
    const assetsOf = new Map<string, JobView[]>();
    for (const job of all)
      if (job.batchId && this.jobs.has(job.batchId)) assetsOf.set(job.batchId, [...(assetsOf.get(job.batchId) ?? []), job]);
    this.view.render(
      all.filter((job) => !(job.batchId && this.jobs.has(job.batchId))),
      Date.now(),
      assetsOf,
    );
  }
}
