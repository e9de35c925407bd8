// A Vite plugin that packs designer/.bpmnlintrc into the bundle (what bpmnlint-loader does
// for webpack): `import config from 'virtual:bpmnlint-config'` gives bpmn-js-bpmnlint the
// config with every rule it enables imported as a module, resolved from designer/node_modules.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';

const VIRTUAL_ID = 'virtual:bpmnlint-config';
const RESOLVED_ID = `\0${VIRTUAL_ID}`;

export default function bpmnlintConfig({ root }) {
  const rcFile = resolve(root, '.bpmnlintrc');
  const require = createRequire(resolve(root, 'package.json'));
  const compileConfig = require('bpmnlint/lib/support/compile-config');
  const NodeResolver = require('bpmnlint/lib/resolver/node-resolver');

  return {
    name: 'paidan-bpmnlint-config',
    resolveId(id) {
      return id === VIRTUAL_ID ? RESOLVED_ID : null;
    },
    async load(id) {
      if (id !== RESOLVED_ID) return null;
      this.addWatchFile(rcFile);
      const config = JSON.parse(readFileSync(rcFile, 'utf-8'));
      return compileConfig(config, new NodeResolver({ require }));
    },
  };
}
