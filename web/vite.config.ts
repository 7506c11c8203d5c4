// Builds the app into dist/, which the server embeds (crates/server/build.rs); `npm test` runs the
// component tests in a simulated DOM.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { target: 'es2022', assetsInlineLimit: 0, reportCompressedSize: true },
  test: { environment: 'happy-dom', include: ['test/**/*.test.{ts,tsx}'] },
});
