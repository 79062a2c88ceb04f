/** `memvisor ui`'s static server: loopback only, content types, 404s, no way out of its folder. */

import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { main } from "../src/cli/main.js";
import { resolveUnder, startUiServer, type UiServer, WEB_ROOT } from "../src/cli/ui.js";

/** A raw GET (fetch would normalize "/../" away before sending it). */
function get(url: string, path: string, method = "GET") {
  const { hostname, port } = new URL(url);
  return new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
    const req = request({ host: hostname, port, path, method }, (res) => {
      let body = "";
      res.on("data", (c) => {
        body += c;
      });
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, type: res.headers["content-type"] ?? "", body }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the ui server", () => {
  let dir: string;
  let ui: UiServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "memvisor-ui-"));
    const root = join(dir, "www");
    mkdirSync(join(root, "assets"), { recursive: true });
    writeFileSync(join(root, "index.html"), "<!doctype html><title>t</title>");
    writeFileSync(join(root, "assets", "a.js"), "export {};");
    writeFileSync(join(root, "assets", "a.css"), "body{}");
    writeFileSync(join(dir, "secret.txt"), "secret");
    ui = await startUiServer({ port: 0, root });
  });

  afterAll(async () => {
    await ui.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("serves the files with their content types, and 404 for the rest", async () => {
    expect(ui.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(await get(ui.url, "/")).toMatchObject({ status: 200, type: "text/html; charset=utf-8" });
    expect((await get(ui.url, "/assets/a.js")).type).toBe("text/javascript; charset=utf-8");
    expect((await get(ui.url, "/assets/a.css?v=1")).type).toBe("text/css; charset=utf-8");
    expect((await get(ui.url, "/nope.js")).status).toBe(404);
    expect((await get(ui.url, "/assets")).status).toBe(404);
    expect((await get(ui.url, "/assets/")).status).toBe(404);
    expect((await get(ui.url, "/", "POST")).status).toBe(405);
    expect((await get(ui.url, "/", "HEAD")).body).toBe("");
  });

  test("never leaves its folder", async () => {
    for (const path of [
      "/../secret.txt",
      "/%2e%2e/secret.txt",
      "/assets/..%2f..%2fsecret.txt",
      "/..%5csecret.txt",
      "/%00",
      "/%zz",
    ]) {
      const res = await get(ui.url, path);
      expect(res.status, path).toBe(400);
      expect(res.body).not.toContain("secret");
    }
    expect(resolveUnder("/srv/www", "/a/../../b")).toBeNull();
    expect(resolveUnder("/srv/www", "/a/b.js")).toBe("/srv/www/a/b.js");
  });

  test("refuses an address that is not loopback, and a bad port", async () => {
    await expect(startUiServer({ host: "0.0.0.0", root: dir })).rejects.toThrow(/loopback/);
    const err = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      expect(await main(["ui", "--host", "192.168.1.2"])).toBe(2);
      expect(await main(["ui", "--port", "70000"])).toBe(2);
      const port = new URL(ui.url).port;
      expect(await main(["ui", "--port", port])).toBe(2);
    } finally {
      err.mockRestore();
    }
  });

  test.skipIf(!existsSync(join(WEB_ROOT, "index.html")))(
    "memvisor ui prints the URL and serves the page until interrupted",
    async () => {
      let stdout = "";
      const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk: unknown) => {
        stdout += String(chunk);
        return true;
      });
      try {
        const done = main(["ui", "--port", "0"]);
        await vi.waitFor(() => expect(stdout).toMatch(/http:\/\/127\.0\.0\.1:\d+\//));
        const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(stdout)![0];
        const page = await get(url, "/");
        expect(page.status).toBe(200);
        expect(page.body).toContain("memvisor");
        process.emit("SIGINT");
        expect(await done).toBe(0);
      } finally {
        out.mockRestore();
      }
    },
  );
});
