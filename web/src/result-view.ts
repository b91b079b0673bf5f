import { JobInputsSchema } from '../../common/jobs.js';
import { MODEL_FILE, needsImport, withoutModelExtension } from '../../common/model-files.js';
import { PREVIEW_FILES, PreviewResult } from '../../common/pipeline.js';
import { ApiError, type ApiClient } from './api-client.js';
import { explainValidatorMessage } from './artist-messages.js';
import { byId, el, saveBlob, setText } from './dom.js';
import { formatBytes, formatCount } from './format.js';
import {
  JobDetailBody,
  JobReportBody,
  OutputListBody,
  type AssetStatsBody,
  type JobReportBody as Report,
  type OutputFileBody,
} from './server-frames.js';

const textureBytes = (s: AssetStatsBody) => s.textures.reduce((sum, t) => sum + t.bytes, 0);
const dash = '—';

/** Before/after table: the original, LOD0 as delivered, and each simplified LOD. */
function comparisonTable(report: Report, outputs: OutputFileBody[]): HTMLTableElement {
  const after = report.package?.stats ?? report.optimize?.stats ?? null;
  const lods = report.lods ?? [];
  const glbOf = (level: number) => outputs.find((o) => o.kind === 'glb' && (o.level ?? 0) === level);
  const columns: { head: string; size: string; triangles: string; vertices: string; textures: string }[] = [
    {
      head: 'Original',
      size: formatBytes(report.input.fileBytes),
      triangles: formatCount(report.input.triangles),
      vertices: formatCount(report.input.vertices),
      textures: `${report.input.textures.length} (${formatBytes(textureBytes(report.input))})`,
    },
  ];
  if (after) {
    const lod0 = glbOf(0);
    columns.push({
      head: 'Optimised (LOD0)',
      size: lod0 ? formatBytes(lod0.bytes) : formatBytes(after.fileBytes),
      triangles: formatCount(after.triangles),
      vertices: formatCount(after.vertices),
      textures: `${after.textures.length} (${formatBytes(textureBytes(after))})`,
    });
  }
  // A LOD carries each texture's smaller copy for its level, or LOD0's image when it has none (a palette).
  const processed = report.textures ?? [];
  const lodTextureBytes = (level: number) =>
    processed.reduce((sum, t) => sum + (t.lods?.find((l) => l.level === level)?.bytes ?? t.after.bytes), 0);
  for (const lod of lods) {
    const glb = glbOf(lod.level);
    columns.push({
      head: `LOD${lod.level} (${Math.round(lod.ratio * 100)}%)`,
      size: glb ? formatBytes(glb.bytes) : dash,
      triangles: formatCount(lod.triangles),
      vertices: dash,
      textures: processed.length ? `${processed.length} (${formatBytes(lodTextureBytes(lod.level))})` : dash,
    });
  }
  const row = (label: string, key: 'size' | 'triangles' | 'vertices' | 'textures') =>
    el('tr', {}, el('th', { scope: 'row' }, label), ...columns.map((c) => el('td', {}, c[key])));
  return el(
    'table',
    {},
    el('caption', { class: 'visually-hidden' }, 'Before and after'),
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, ''), ...columns.map((c) => el('th', { scope: 'col' }, c.head)))),
    el('tbody', {}, row('File size', 'size'), row('Triangles', 'triangles'), row('Vertices', 'vertices'), row('Textures', 'textures')),
  );
}

/** How closely a delivered texture matches its upload, in words and the measured figures. */
function fidelityText(fidelity: Report['textures'][number]['fidelity']): string {
  if (!fidelity) return dash;
  if (fidelity.encoding === 'source') return 'kept as uploaded';
  const error = `max error ${fidelity.maxChannelError}/255${fidelity.psnrDb === null ? '' : `, PSNR ${fidelity.psnrDb.toFixed(1)} dB`}`;
  return fidelity.maxChannelError === 0 ? `${fidelity.encoding}, identical` : `${fidelity.encoding}, ${error}`;
}

function texturesTable(report: Report): HTMLElement | null {
  if (!report.textures?.length) return null;
  const side = (s: { width: number; height: number; bytes: number; mimeType: string }) =>
    `${s.width}×${s.height} ${s.mimeType.replace('image/', '')}, ${formatBytes(s.bytes)}`;
  return el(
    'table',
    {},
    el('caption', {}, 'Textures'),
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        el('th', { scope: 'col' }, 'Texture'),
        el('th', { scope: 'col' }, 'Before'),
        el('th', { scope: 'col' }, 'After'),
        el('th', { scope: 'col' }, 'In the LODs'),
        el('th', { scope: 'col' }, 'Colours'),
        el('th', { scope: 'col' }, 'Notes'),
      ),
    ),
    el(
      'tbody',
      {},
      // Notes say where the result differs from what was asked (e.g. KTX2 asked, WebP written): never only in the JSON.
      ...report.textures.map((t) =>
        el(
          'tr',
          {},
          el('td', {}, t.name),
          el('td', {}, side(t.before)),
          el('td', {}, side(t.after)),
          el(
            'td',
            {},
            t.lods?.length ? t.lods.map((l) => `LOD${l.level}: ${l.width}×${l.height}, ${formatBytes(l.bytes)}`).join('; ') : dash,
          ),
          el('td', { 'data-fidelity': t.fidelity?.encoding ?? '' }, fidelityText(t.fidelity)),
          el('td', { class: t.warnings?.length ? 'texture-warning' : '' }, t.warnings?.length ? t.warnings.join(' ') : dash),
        ),
      ),
    ),
  );
}

/**
 * The result dialog of a completed job: before/after, validator warnings, downloads and the 3D viewer.
 */
export class ResultView {
  private readonly dialog = byId<HTMLDialogElement>('result-dialog');
  private readonly body = byId('result-body');
  private disposeViewer: (() => void) | null = null;
  /** Object URLs of what the dialog shows (the turntable), released when it closes. */
  private objectUrls: string[] = [];

  constructor(
    private readonly api: () => ApiClient,
    /** The files uploaded from this tab, drawn without fetching them back (else the API's inputs route). */
    private readonly originals: (jobId: string) => File[] | undefined,
  ) {
    byId('result-close').addEventListener('click', () => this.dialog.close());
    this.dialog.addEventListener('close', () => {
      this.disposeViewer?.();
      this.disposeViewer = null;
      for (const url of this.objectUrls.splice(0)) URL.revokeObjectURL(url);
      this.body.replaceChildren();
    });
  }

  async open(jobId: string, assetName: string): Promise<void> {
    setText(byId('result-title'), `Result: ${assetName}`);
    const status = el('p', { role: 'status' }, 'Loading the report…');
    this.body.replaceChildren(status);
    if (!this.dialog.open) this.dialog.showModal();
    try {
      let detail = await this.api().json(`/api/jobs/${encodeURIComponent(jobId)}`, JobDetailBody);
      // `completed` reaches the page a moment before the workflow closes (it starts the outputs' expiry
      // timer last): a report asked for in between waits for it rather than saying there is none.
      for (let wait = 250; detail.status === 'RUNNING' && detail.result == null && wait <= 4000 && this.dialog.open; wait *= 2) {
        setText(status, 'Finishing up…');
        await new Promise((resolve) => setTimeout(resolve, wait));
        detail = await this.api().json(`/api/jobs/${encodeURIComponent(jobId)}`, JobDetailBody);
      }
      const report = JobReportBody.safeParse(detail.result);
      if (!report.success) {
        setText(status, 'This job has no report to show (it did not complete).');
        return;
      }
      const outputs = await this.outputs(jobId);
      this.render(jobId, report.data, outputs);
    } catch (err) {
      setText(status, err instanceof ApiError ? err.message : 'The report could not be shown; reload the page and try again.');
    }
  }

  /** The job's outputs, or a sentence saying why there are none to list. */
  private async outputs(jobId: string): Promise<OutputFileBody[] | string> {
    try {
      return await this.api().json(`/api/jobs/${encodeURIComponent(jobId)}/outputs`, OutputListBody);
    } catch (err) {
      return err instanceof ApiError ? err.message : 'The list of outputs could not be read.';
    }
  }

  private render(jobId: string, report: Report, outputs: OutputFileBody[] | string): void {
    const files = typeof outputs === 'string' ? [] : outputs;
    const warnings = report.validation?.messages ?? [];
    const downloads =
      typeof outputs === 'string'
        ? el('p', { class: 'notice' }, outputs)
        : el(
            'ul',
            { class: 'downloads' },
            ...files.map((o) => el('li', {}, this.downloadButton(jobId, o.name, `${o.name} (${formatBytes(o.bytes)})`))),
            el(
              'li',
              {},
              this.downloadButton(jobId, 'outputs.zip', 'Everything as a .zip', `${withoutModelExtension(report.assetName)}-outputs.zip`),
            ),
          );
    const lodSelect = el('select', { id: 'lod-select' });
    const glbs = files.filter((o) => o.kind === 'glb').sort((a, b) => (a.level ?? 0) - (b.level ?? 0));
    for (const o of glbs) lodSelect.append(el('option', { value: o.name }, `LOD${o.level ?? 0}`));
    const turntable = files.find((o) => o.name === PREVIEW_FILES.turntable);
    const turntableImage = el('img', { class: 'turntable', alt: `Turntable of ${report.assetName}`, width: 256, height: 256 });
    // The preview stage's result, in the report's other stages (common/stages.ts).
    const preview = PreviewResult.safeParse(report.stages?.preview).data;
    const originalCanvas = el('canvas', { 'aria-label': 'Original model, drag to orbit', tabindex: 0 });
    const optimisedCanvas = el('canvas', { 'aria-label': 'Optimised model, drag to orbit', tabindex: 0 });
    const viewerStatus = el('p', { class: 'hint', role: 'status' });

    this.body.replaceChildren(
      ...[
        el(
          'div',
          { class: 'result-grid' },
          el(
            'section',
            { 'aria-labelledby': 'before-after-title' },
            el('h3', { id: 'before-after-title' }, 'Before and after'),
            comparisonTable(report, files),
            // Why an output differs from what the settings promise (e.g. LOD0 larger than the upload).
            report.package.notes?.length ? el('ul', { class: 'notice' }, ...report.package.notes.map((n) => el('li', {}, n))) : null,
            texturesTable(report),
            report.expiresAt ? el('p', { class: 'hint' }, `Outputs are kept until ${new Date(report.expiresAt).toLocaleString()}.`) : null,
          ),
          el(
            'section',
            { 'aria-labelledby': 'warnings-title' },
            el('h3', { id: 'warnings-title' }, 'Validator warnings'),
            report.validation
              ? warnings.length > 0
                ? el('ul', { class: 'warnings' }, ...warnings.map((w) => el('li', {}, `${w.severity}: ${explainValidatorMessage(w)}`)))
                : el('p', {}, 'No warnings: the asset passed the glTF validator cleanly.')
              : el('p', { class: 'hint' }, 'This server does not validate assets yet.'),
            el('h3', {}, 'Downloads'),
            downloads,
          ),
        ),
        turntable || preview
          ? el(
              'section',
              { 'aria-labelledby': 'turntable-title' },
              el('h3', { id: 'turntable-title' }, 'Turntable'),
              turntable ? turntableImage : null,
              preview && !preview.rendered ? el('p', { class: 'notice' }, preview.note) : null,
            )
          : null,
        el(
          'section',
          { 'aria-labelledby': 'viewer-title' },
          el('h3', { id: 'viewer-title' }, '3D view'),
          glbs.length > 1 ? el('p', {}, el('label', { for: 'lod-select' }, 'Level of detail'), lodSelect) : null,
          el(
            'div',
            { class: 'viewer' },
            el('figure', {}, el('figcaption', {}, 'Original'), originalCanvas),
            el('figure', {}, el('figcaption', {}, 'Optimised'), optimisedCanvas),
          ),
          viewerStatus,
        ),
      ].filter((section): section is HTMLElement => section !== null),
    );
    if (turntable) void this.showTurntable(jobId, turntable.name, turntableImage);
    void this.startViewer(jobId, originalCanvas, optimisedCanvas, lodSelect, glbs, viewerStatus);
  }

  /** Plays the animated WebP the preview stage rendered (an <img> loops it); fetched with the token like every output. */
  private async showTurntable(jobId: string, name: string, image: HTMLImageElement): Promise<void> {
    try {
      const url = URL.createObjectURL(await this.api().blob(`/api/jobs/${encodeURIComponent(jobId)}/outputs/${outputPath(name)}`));
      this.objectUrls.push(url);
      image.src = url;
      await image.decode();
      image.dataset.ready = 'true';
    } catch {
      image.replaceWith(el('p', { class: 'notice' }, 'The turntable could not be loaded; it is still among the downloads.'));
    }
  }

  private downloadButton(jobId: string, name: string, label: string, saveAs = name): HTMLButtonElement {
    const button = el('button', { type: 'button', class: 'secondary', 'data-output': name }, `Download ${label}`);
    button.addEventListener('click', () => {
      button.disabled = true;
      this.api()
        .blob(`/api/jobs/${encodeURIComponent(jobId)}/${name === 'outputs.zip' ? 'outputs.zip' : `outputs/${outputPath(name)}`}`)
        .then((blob) => saveBlob(blob, saveAs))
        .catch((err: unknown) => alertInDialog(this.body, err instanceof ApiError ? err.message : 'The download failed; try again.'))
        .finally(() => (button.disabled = false));
    });
    return button;
  }

  /** The job's uploaded files from the API, as Files the viewer reads like a local pick; undefined when too large to draw. */
  private async uploadedFiles(jobId: string): Promise<File[] | undefined> {
    const base = `/api/jobs/${encodeURIComponent(jobId)}/inputs`;
    const listing = await this.api().json(base, JobInputsSchema);
    if (listing.inputs.reduce((n, f) => n + f.size, 0) > MAX_ORIGINAL_BYTES) return undefined;
    return Promise.all(listing.inputs.map(async (f) => new File([await this.api().blob(`${base}/${encodeURIComponent(f.name)}`)], f.name)));
  }

  private async startViewer(
    jobId: string,
    originalCanvas: HTMLCanvasElement,
    optimisedCanvas: HTMLCanvasElement,
    lodSelect: HTMLSelectElement,
    glbs: OutputFileBody[],
    status: HTMLElement,
  ): Promise<void> {
    setText(status, 'Loading the 3D view…');
    // three.js is loaded only when a result is opened, so the job list stays light.
    const { ComparisonViewer } = await import('./model-viewer.js');
    let viewer: InstanceType<typeof ComparisonViewer>;
    try {
      viewer = new ComparisonViewer(originalCanvas, optimisedCanvas);
    } catch {
      setText(status, 'This browser cannot show 3D (WebGL is off). The downloads still work.');
      return;
    }
    this.disposeViewer = () => viewer.dispose();
    const notes: string[] = [];
    // Files uploaded from this tab are drawn as they are; otherwise (a reload, another tab) the API serves
    // the job's uploaded files to their owner.
    const originals = this.originals(jobId) ?? (await this.uploadedFiles(jobId).catch(() => undefined));
    const loads: Promise<void>[] = [];
    // A pane is marked ready only once its model is drawn, so a pane that failed to load is never taken for shown.
    const ready = (canvas: HTMLCanvasElement) => () => void (canvas.dataset.ready = 'true');
    const model = originals?.find((f) => MODEL_FILE.test(f.name));
    if (model && needsImport(model.name)) {
      // The browser draws glTF; an FBX, OBJ or .blend is shown as Blender imported it, in the optimised pane.
      notes.push(
        `The original ${model.name} is not drawn here (the browser shows glTF); the optimised view shows what Blender made of it.`,
      );
    } else if (originals) {
      const glb = originals.find((f) => /\.glb$/i.test(f.name));
      loads.push(
        (glb
          ? glb.arrayBuffer().then((bytes) => viewer.showOriginal({ kind: 'glb', bytes }))
          : viewer.showOriginal({ kind: 'files', files: originals })
        ).then(ready(originalCanvas), () => void notes.push('The original could not be drawn.')),
      );
    } else notes.push('The original upload could not be loaded (or is too large to draw here).');
    const showLod = async (name: string) => {
      const bytes = await (await this.api().blob(`/api/jobs/${encodeURIComponent(jobId)}/outputs/${outputPath(name)}`)).arrayBuffer();
      await viewer.showOptimised({ kind: 'glb', bytes });
    };
    if (glbs[0])
      loads.push(showLod(glbs[0].name).then(ready(optimisedCanvas), () => void notes.push('The optimised model could not be loaded.')));
    else notes.push('This job has no optimised model to show.');
    lodSelect.addEventListener(
      'change',
      () => void showLod(lodSelect.value).catch(() => setText(status, 'That level could not be loaded.')),
    );
    await Promise.all(loads);
    setText(status, notes.length ? notes.join(' ') : 'Drag to orbit, scroll to zoom; both views move together.');
  }
}

/** Above this, the original is not fetched into the page just to be drawn (the downloads still work). */
const MAX_ORIGINAL_BYTES = 256 * 1024 * 1024;

/** An output's name may be a relative path (lods/x.glb): each segment is encoded, the slashes kept. */
function outputPath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

function alertInDialog(body: HTMLElement, text: string): void {
  body.prepend(el('p', { class: 'problem', role: 'alert' }, text));
}
