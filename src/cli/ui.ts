/**
 * `memvisor ui`: serve the web visualizer's static build (dist-web/, made by `npm install`'s
 * prepare step) on a loopback address, and nothing else: GET and HEAD of files under that folder,
 * with their content types; no directory listings, no way out of the folder.
 */

import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "./errors.js";

export const DEFAULT_UI_PORT = 5178;
export const LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1"];

/** The page's build: dist-web/ at the package root (this file is in src/cli or dist/cli). */
export const WEB_ROOT = fileURLToPath(new URL("../../dist-web/", import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".woff2": "font/woff2",
};

export interface UiServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export interface UiOptions {
  host?: string;
  port?: number;
  root?: string;
}

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "x-content-type-options": "nosniff",
  });
  res.end(`${body}\n`);
}

/** The file a request path names under root, or null when it would leave root or is bad. */
export function resolveUnder(root: string, urlPath: string): string | null {
  let path: string;
  try {
    path = decodeURIComponent(urlPath.split("?")[0].split("#")[0]);
  } catch {
    return null;
  }
  if (path.includes("\0") || path.includes("\\")) return null;
  if (path.split("/").includes("..")) return null;
  if (path.endsWith("/")) path += "index.html";
  const base = resolve(root);
  const file = resolve(join(base, path));
  return file.startsWith(base + sep) ? file : null;
}

function handler(root: string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      send(res, 405, "method not allowed");
      return;
    }
    const file = resolveUnder(root, req.url ?? "/");
    if (file === null) {
      send(res, 400, "bad path");
      return;
    }
    let body: Buffer;
    try {
      if (!statSync(file).isFile()) throw new Error("not a file");
      body = readFileSync(file);
    } catch {
      send(res, 404, "not found");
      return;
    }
    res.writeHead(200, {
      "content-type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
      "content-length": body.length,
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
    });
    res.end(req.method === "HEAD" ? undefined : body);
  };
}

/** Start serving the page; resolves once listening (port 0: any free port). */
export async function startUiServer(options: UiOptions = {}): Promise<UiServer> {
  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? DEFAULT_UI_PORT;
  const root = options.root ?? WEB_ROOT;
  if (!LOOPBACK_HOSTS.includes(host)) {
    throw new UsageError(
      `--host ${host}: the page is served on a loopback address only (${LOOPBACK_HOSTS.join(", ")})`,
    );
  }
  if (!existsSync(join(root, "index.html"))) {
    throw new UsageError(
      `the page is not built (no ${join(root, "index.html")}): run \`npm run build:web\``,
    );
  }
  const server = createServer(handler(root));
  return new Promise((resolvePromise, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      reject(
        e.code === "EADDRINUSE"
          ? new UsageError(`port ${port} is in use on ${host} (choose another with --port)`)
          : e,
      );
    });
    server.listen(port, host, () => {
      const address = server.address();
      const actual = typeof address === "object" && address !== null ? address.port : port;
      const shown = host.includes(":") ? `[${host}]` : host;
      resolvePromise({
        url: `http://${shown}:${actual}/`,
        server,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}

export interface UiCommandOptions {
  port?: string;
  host?: string;
}

/** The command: serve until interrupted (Ctrl-C), then exit 0. */
export async function uiCommand(options: UiCommandOptions): Promise<number> {
  const port = options.port === undefined ? DEFAULT_UI_PORT : Number(options.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port ${options.port}: expected a port number, 0 to 65535`);
  }
  const ui = await startUiServer({ port, ...(options.host ? { host: options.host } : {}) });
  process.stdout.write(`memvisor ui: serving the page at ${ui.url} (Ctrl-C to stop)\n`);
  await new Promise<void>((done) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      done();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  await ui.close();
  return 0;
}
