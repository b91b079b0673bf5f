import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import helmet from 'helmet';

/** CSP hashes of the inline scripts in the pages served, so they run while any injected script does not. */
export function inlineScriptHashes(htmlFiles: readonly string[]): string[] {
  const hashes = new Set<string>();
  for (const file of htmlFiles) {
    let html: string;
    try {
      html = readFileSync(file, 'utf8');
    } catch {
      continue; // that page is not built or not present: nothing of it to allow
    }
    for (const match of html.matchAll(/<script(?![^>]*\bsrc\s*=)[^>]*>([\s\S]*?)<\/script>/gi)) {
      hashes.add(`'sha256-${createHash('sha256').update(match[1]!).digest('base64')}'`);
    }
  }
  return [...hashes];
}

/** The page's own origin as a WebSocket source (older browsers do not count ws: as 'self'). */
function socketOrigin(req: IncomingMessage): string {
  const host = req.headers.host ?? '';
  // Only a plain host[:port] goes into the header: a crafted Host cannot add directives.
  if (!/^[A-Za-z0-9.-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$/.test(host)) return "'self'";
  const secure = (req.headers['x-forwarded-proto'] ?? '') === 'https' || Boolean((req.socket as { encrypted?: boolean }).encrypted);
  return `${secure ? 'wss' : 'ws'}://${host}`;
}

/**
 * helmet with a CSP for the web page: its own scripts (files from 'self' plus the hashed inline ones),
 * XHR and WebSockets only to this origin, images and workers also from blob: (the 3D viewer).
 */
export function securityHeaders(pages: readonly string[]) {
  return helmet({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        // 'wasm-unsafe-eval' lets the viewer compile the meshopt/Draco decoders (WebAssembly) without
        // allowing eval() of strings.
        scriptSrc: ["'self'", "'wasm-unsafe-eval'", ...inlineScriptHashes(pages)],
        // blob:/data: because three.js's GLTFLoader fetches a GLB's embedded textures through them.
        connectSrc: ["'self'", 'blob:', 'data:', (req) => socketOrigin(req)],
        imgSrc: ["'self'", 'data:', 'blob:'],
        workerSrc: ["'self'", 'blob:'],
        objectSrc: ["'none'"],
        frameAncestors: ["'none'"],
        // A plain-http deployment on a LAN address must keep working; TLS is the proxy's decision.
        upgradeInsecureRequests: null,
      },
    },
  });
}
