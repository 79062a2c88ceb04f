import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// The page is a static build: web/ is the root, the output goes to dist-web/ at the repo root,
// which `memvisor ui` serves. Relative asset URLs, so the page works under any path.
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "./",
  logLevel: "warn",
  build: {
    outDir: fileURLToPath(new URL("../dist-web", import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
  },
  worker: { format: "es" },
});
