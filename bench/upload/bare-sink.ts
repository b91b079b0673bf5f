import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { serveCommands } from '../lib/rpc.js';

/**
 * The upload floor: a bare Node HTTP server that streams the request body straight to a file, with
 * no multipart parsing, hashing, auth or job start. What the API adds is measured against it.
 */
const dir = process.argv[2];
if (!dir) throw new Error('usage: bare-sink.ts <directory for received bodies>');
const file = path.join(dir, 'bare-sink-upload.bin');

const server = http.createServer((req, res) => {
  pipeline(req, createWriteStream(file)).then(
    () => res.writeHead(201).end(),
    (err: Error) => res.writeHead(500).end(err.message),
  );
});
const port = await new Promise<number>((resolve) =>
  server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
);

serveCommands({
  address: () => ({ url: `http://127.0.0.1:${port}/upload` }),
  cleanup: () => rm(file, { force: true }),
});
