import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Command } from 'commander';
import type { ApiClient } from '../api-client.js';
import type { OutputFile } from '../api-schemas.js';
import { CliError } from '../cli-error.js';
import { printJson, signedInClient } from '../session.js';

/** Streams a response body to `dest` through a `.part` file, returning its sha256 and size. */
async function saveBody(res: Response, dest: string): Promise<{ sha256: string; bytes: number }> {
  if (!res.body) throw new CliError('BAD_RESPONSE', `The API sent no body for ${path.basename(dest)}.`);
  const hash = createHash('sha256');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const part = `${dest}.part`;
  try {
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), meter, createWriteStream(part));
  } catch (err) {
    await rm(part, { force: true });
    throw err;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** Downloads one listed output and keeps it only if its digest and size match the listing. */
async function downloadOutput(client: ApiClient, jobId: string, output: OutputFile, dir: string): Promise<string> {
  const dest = path.join(dir, output.name);
  const got = await saveBody(await client.download(jobId, output.name), dest);
  if (got.sha256 !== output.sha256 || got.bytes !== output.bytes) {
    await rm(`${dest}.part`, { force: true });
    throw new CliError(
      'CHECKSUM_MISMATCH',
      `${output.name} arrived damaged (sha256 ${got.sha256.slice(0, 12)}…, ${got.bytes} bytes; expected ${output.sha256.slice(0, 12)}…, ` +
        `${output.bytes} bytes); nothing was kept. Run the download again.`,
    );
  }
  await rename(`${dest}.part`, dest);
  return dest;
}

export function registerDownload(program: Command): void {
  program
    .command('download')
    .description("save a completed job's outputs, each checked against the listing's sha256")
    .argument('<id>', 'job id')
    .option('--out <dir>', 'folder to save into (default: ./<job id>)')
    .option('--zip', 'save all outputs as one outputs.zip instead')
    .option('--json', 'print {jobId, dir, files} as JSON')
    .action(async (id: string, options: { out?: string; zip?: boolean; json?: boolean }) => {
      const client = await signedInClient();
      const dir = path.resolve(options.out ?? id);
      const outputs = await client.outputs(id);
      await mkdir(dir, { recursive: true });
      if (outputs.length === 0) {
        throw new CliError('REQUEST_REFUSED', `${id} has no outputs yet; \`asset-farm watch ${id}\` waits for it to complete.`);
      }
      const files: { name: string; path: string; bytes: number; sha256: string; verified: boolean }[] = [];
      if (options.zip) {
        // The zip itself is not in the listing, so only its transfer is checked; its entries are the listed files.
        const dest = path.join(dir, `${id}.zip`);
        const got = await saveBody(await client.download(id, null), dest);
        await rename(`${dest}.part`, dest);
        files.push({ name: path.basename(dest), path: dest, bytes: got.bytes, sha256: got.sha256, verified: false });
      } else {
        for (const output of outputs) {
          const saved = await downloadOutput(client, id, output, dir);
          files.push({ name: output.name, path: saved, bytes: output.bytes, sha256: output.sha256, verified: true });
        }
      }
      if (options.json) printJson({ jobId: id, dir, files });
      else for (const file of files) process.stdout.write(`${file.path}  ${file.bytes} bytes${file.verified ? '  sha256 ok' : ''}\n`);
    });
}
