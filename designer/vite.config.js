// Builds the browser islands of the pages into app/static/dist (not committed; `make run`
// and `make test` build it). Templates find the hashed files through the manifest.
import { resolve } from 'node:path';
import { defineConfig } from 'vite';

import bpmnlintConfig from './build/bpmnlint-config.js';

const entry = (name) => resolve(import.meta.dirname, 'src/pages', `${name}.js`);

export default defineConfig({
  base: '/static/dist/',
  // designer/.bpmnlintrc packed into the bundle as `virtual:bpmnlint-config`
  plugins: [bpmnlintConfig({ root: import.meta.dirname })],
  build: {
    outDir: resolve(import.meta.dirname, '../app/static/dist'),
    emptyOutDir: true,
    manifest: true,
    sourcemap: false,
    chunkSizeWarningLimit: 2000,
    rolldownOptions: {
      input: {
        app: entry('app'),
        form: entry('form'),
        diagram: entry('diagram'),
        site: entry('site'),
        position: entry('position'),
        designer: entry('designer'),
        designer_instances: entry('designer_instances'),
      },
    },
  },
});
