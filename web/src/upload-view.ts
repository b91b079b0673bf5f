import { PRESET_SETTINGS } from '../../common/pipeline.js';
import { JobOptions, Preset } from '../../common/jobs.js';
import { MODEL_FORMATS_IN_WORDS } from '../../common/model-files.js';
import { ApiError, type ApiClient } from './api-client.js';
import { groupAssets, type AssetGroup, type PickedFile } from '../../common/asset-grouping.js';
import { byId, el, setText } from './dom.js';
import { formatBytes } from './format.js';
import { StartedJobBody } from './server-frames.js';
import { sha256OfFile } from './resumable-upload.js';

/**
 * Largest upload per asset. The API's default UPLOAD_MAX_BYTES; a server configured lower answers 413 with
 * its own limit, which the page then shows.
 */
export const UPLOAD_LIMIT_BYTES = 2 * 1024 ** 3;

interface QueuedAsset {
  group: AssetGroup;
  row: HTMLLIElement;
  bars: HTMLProgressElement[];
  status: HTMLElement;
  state: 'ready' | 'uploading' | 'sent' | 'failed';
}

/** The upload panel: pick or drop files or folders, group them into assets, set options, send with progress. */
export class UploadView {
  private queue: QueuedAsset[] = [];
  private readonly dropZone = byId('drop-zone');
  private readonly queueList = byId<HTMLUListElement>('upload-queue');
  private readonly uploadButton = byId<HTMLButtonElement>('upload-button');
  private readonly clearButton = byId<HTMLButtonElement>('clear-button');
  private readonly optionsError = byId('options-error');
  private readonly preset = byId<HTMLSelectElement>('preset');

  constructor(
    private readonly api: () => ApiClient,
    private readonly onStarted: (jobId: string, assetName: string, files: File[], kind?: 'asset' | 'batch') => void,
  ) {
    setText(byId('size-limit'), `Up to ${formatBytes(UPLOAD_LIMIT_BYTES)} per asset.`);
    const fileInput = byId<HTMLInputElement>('file-input');
    const folderInput = byId<HTMLInputElement>('folder-input');
    for (const input of [fileInput, folderInput]) {
      input.addEventListener('change', () => {
        const picked = Array.from(input.files ?? []).map((file) => ({ file, dir: dirOf(file.webkitRelativePath) }));
        input.value = '';
        void this.add(picked);
      });
    }
    this.dropZone.addEventListener('dragover', (e) => {
      e.preventDefault();
      this.dropZone.classList.add('dragging');
    });
    this.dropZone.addEventListener('dragleave', () => this.dropZone.classList.remove('dragging'));
    this.dropZone.addEventListener('drop', (e) => {
      e.preventDefault();
      this.dropZone.classList.remove('dragging');
      if (e.dataTransfer) void filesFromDrop(e.dataTransfer).then((picked) => this.add(picked));
    });
    this.preset.addEventListener('change', () => this.describePreset());
    this.describePreset();
    this.clearButton.addEventListener('click', () => this.clear());
    byId<HTMLFormElement>('upload-form').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.send();
    });
  }

  private describePreset(): void {
    const preset = Preset.parse(this.preset.value);
    const s = PRESET_SETTINGS[preset];
    const lods = s.lodRatios.length ? s.lodRatios.join(', ') : 'none';
    setText(
      byId('preset-hint'),
      `LODs ${lods}; textures up to ${s.maxTextureSize} px as ${s.textureFormat}; ${s.geometryCompression} geometry.`,
    );
    byId<HTMLInputElement>('lod-ratios').placeholder = s.lodRatios.join(', ') || 'no LODs';
    byId<HTMLSelectElement>('texture-size').options[0]!.text = `Preset default (${s.maxTextureSize})`;
    byId<HTMLSelectElement>('texture-format').options[0]!.text = `Preset default (${s.textureFormat})`;
  }

  /** The options form as the API's JobOptions: the preset plus only what the artist changed. */
  private readOptions(): JobOptions {
    const lodText = byId<HTMLInputElement>('lod-ratios').value.trim();
    const size = byId<HTMLSelectElement>('texture-size').value;
    const format = byId<HTMLSelectElement>('texture-format').value;
    const priority = byId<HTMLSelectElement>('priority').value;
    const parsed = JobOptions.safeParse({
      preset: this.preset.value,
      ...(lodText
        ? {
            lodRatios: lodText
              .split(/[\s,;]+/)
              .filter(Boolean)
              .map(Number),
          }
        : {}),
      ...(size ? { maxTextureSize: Number(size) } : {}),
      ...(format ? { textureFormat: format } : {}),
      ...(priority && priority !== 'normal' ? { priority } : {}),
    });
    if (!parsed.success)
      throw new ApiError('BAD_OPTIONS', 0, 'LOD ratios must be numbers between 0 and 1 (for example 0.5, 0.25), at most 6 of them.');
    return parsed.data;
  }

  private async add(picked: PickedFile[]): Promise<void> {
    if (picked.length === 0) return;
    const { assets, unused } = await groupAssets(picked, (f) => f.text(), UPLOAD_LIMIT_BYTES);
    for (const group of assets) this.queue.push(this.row(group));
    if (unused.length > 0) {
      const note = el('li', { class: 'notice' }, `Left out (no model uses them): ${unused.map((u) => u.file.name).join(', ')}`);
      this.queueList.append(note);
    }
    if (assets.length === 0)
      this.queueList.append(el('li', { class: 'problem' }, `No model file (${MODEL_FORMATS_IN_WORDS}) among what was picked.`));
    this.refresh();
  }

  private row(group: AssetGroup): QueuedAsset {
    const bars = group.files.map((f) => el('progress', { max: 100, value: 0, 'aria-label': `Upload of ${f.file.name}` }));
    const status = el('span', { class: 'hint', role: 'status' });
    const row = el(
      'li',
      { 'data-asset': group.name },
      el('strong', {}, group.name),
      ` ${formatBytes(group.bytes)} of ${formatBytes(UPLOAD_LIMIT_BYTES)} allowed`,
      ...group.files.map((f, i) =>
        el('div', { class: 'file' }, el('span', {}, f.file.name), el('span', {}, formatBytes(f.file.size)), bars[i]!),
      ),
      group.problems.length > 0 ? el('div', { class: 'problem' }, el('ul', {}, ...group.problems.map((p) => el('li', {}, p)))) : null,
      status,
    );
    this.queueList.append(row);
    return { group, row, bars, status, state: group.problems.length > 0 ? 'failed' : 'ready' };
  }

  private refresh(): void {
    const ready = this.queue.filter((q) => q.state === 'ready').length;
    byId('queue-empty').hidden = this.queueList.childElementCount > 0;
    this.uploadButton.disabled = ready === 0;
    setText(this.uploadButton, ready > 1 ? `Upload ${ready} assets` : 'Upload');
    this.clearButton.disabled = this.queueList.childElementCount === 0 || this.queue.some((q) => q.state === 'uploading');
  }

  private clear(): void {
    this.queue = [];
    this.queueList.replaceChildren();
    this.refresh();
  }

  private async send(): Promise<void> {
    let options: JobOptions;
    try {
      options = this.readOptions();
      this.optionsError.hidden = true;
    } catch (err) {
      setText(this.optionsError, (err as Error).message);
      this.optionsError.hidden = false;
      return;
    }
    // A dropped or picked folder of several assets goes as one batch (POST /api/batches); the rest one job each.
    const ready = this.queue.filter((q) => q.state === 'ready');
    for (const [folder, items] of foldersOf(ready)) await this.sendBatch(folder, items, options);
    // One asset at a time: the HPC machine queues jobs anyway, and one upload gets the whole bandwidth.
    for (const item of this.queue.filter((q) => q.state === 'ready')) {
      item.state = 'uploading';
      this.refresh();
      try {
        const files = await this.sendFiles(item);
        setText(item.status, 'Starting the job…');
        const body = StartedJobBody.parse(
          await this.api().json('/api/jobs', StartedJobBody, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ files, options }),
          }),
        );
        item.state = 'sent';
        setText(item.status, 'Uploaded; the job is below.');
        this.onStarted(
          body.jobId,
          body.assetName ?? item.group.name,
          item.group.files.map((f) => f.file),
        );
        item.row.remove();
        this.queue.splice(this.queue.indexOf(item), 1);
      } catch (err) {
        item.state = 'ready';
        const message =
          err instanceof ApiError ? err.message : 'The server answered in a way this page does not understand; reload the page.';
        setText(item.status, `Not sent: ${message}`);
        item.status.className = 'problem';
        // Back online, the upload goes on by itself from what the server holds.
        if (err instanceof ApiError && err.code === 'NETWORK' && !navigator.onLine)
          window.addEventListener('online', () => void this.send(), { once: true });
      }
      this.refresh();
    }
  }

  /** Uploads every asset of a folder, then starts them as one batch named after the folder. */
  private async sendBatch(folder: string, items: QueuedAsset[], options: JobOptions): Promise<void> {
    for (const item of items) item.state = 'uploading';
    this.refresh();
    try {
      const assets: { files: { uploadId: string; name: string }[] }[] = [];
      for (const item of items) {
        assets.push({ files: await this.sendFiles(item) });
        setText(item.status, 'Uploaded; waiting for the rest of the folder…');
      }
      const body = await this.api().json('/api/batches', StartedJobBody, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: folder, assets, options }),
      });
      this.onStarted(body.jobId, folder, [], 'batch');
      for (const item of items) {
        item.row.remove();
        this.queue.splice(this.queue.indexOf(item), 1);
      }
    } catch (err) {
      const message =
        err instanceof ApiError ? err.message : 'The server answered in a way this page does not understand; reload the page.';
      for (const item of items) {
        item.state = 'ready';
        setText(item.status, `Not sent: ${message}`);
        item.status.className = 'problem';
      }
    }
    this.refresh();
  }

  /**
   * Sends each file of an asset that the server does not hold yet for this artist (same sha256), each
   * resumably; the finished upload ids under the files' names.
   */
  private async sendFiles(item: QueuedAsset): Promise<{ uploadId: string; name: string }[]> {
    const files: { uploadId: string; name: string }[] = [];
    for (const [i, { file }] of item.group.files.entries()) {
      const bar = item.bars[i]!;
      const percent = (bytes: number) => (file.size === 0 ? 100 : Math.min(100, (bytes / file.size) * 100));
      item.status.className = 'hint';
      setText(item.status, `Checking ${file.name}…`);
      const sha256 = await sha256OfFile(file);
      const held = await this.api().reuse(sha256, file.size);
      if (held) {
        bar.value = 100;
        files.push({ uploadId: held, name: file.name });
        continue;
      }
      setText(item.status, `Uploading ${file.name}…`);
      const uploadId = await this.api().sendFile(
        file,
        sha256,
        (sent) => (bar.value = percent(sent)),
        () => setText(item.status, `Going on with ${file.name} from where it stopped…`),
      );
      bar.value = 100;
      files.push({ uploadId, name: file.name });
    }
    return files;
  }
}

/** Ready assets by the top folder they were picked or dropped in, for folders holding more than one. */
function foldersOf(items: QueuedAsset[]): Map<string, QueuedAsset[]> {
  const byFolder = new Map<string, QueuedAsset[]>();
  for (const item of items) {
    const top = item.group.files[0]?.dir.split('/')[0];
    if (top) byFolder.set(top, [...(byFolder.get(top) ?? []), item]);
  }
  for (const [folder, list] of byFolder) if (list.length < 2) byFolder.delete(folder);
  return byFolder;
}

function dirOf(relativePath: string): string {
  const at = relativePath.lastIndexOf('/');
  return at < 0 ? '' : relativePath.slice(0, at);
}

/** Files of a drop, walking dropped folders (a folder becomes a batch of assets). */
async function filesFromDrop(transfer: DataTransfer): Promise<PickedFile[]> {
  const entries = Array.from(transfer.items)
    .map((item) => item.webkitGetAsEntry())
    .filter((e): e is FileSystemEntry => e !== null);
  if (entries.length === 0) return Array.from(transfer.files).map((file) => ({ file, dir: '' }));
  const out: PickedFile[] = [];
  async function walk(entry: FileSystemEntry, dir: string): Promise<void> {
    if (entry.isFile) {
      const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
      out.push({ file, dir });
      return;
    }
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    const path = dir ? `${dir}/${entry.name}` : entry.name;
    // readEntries returns the folder in batches until an empty one.
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
      if (batch.length === 0) break;
      for (const child of batch) await walk(child, path);
    }
  }
  for (const entry of entries) await walk(entry, '');
  return out;
}
