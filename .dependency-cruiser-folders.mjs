/**
 * No import cycle between folders of src/ (src/upstream/ and src/upstream/balancers/ count as two).
 * A second pass of `npm run lint`, without tests: a test importing a helper in test/ that imports
 * its own folder is no cycle of the architecture. File cycles, tests included, and the layer rules
 * are in .dependency-cruiser.mjs.
 */
import { options } from './.dependency-cruiser.mjs';

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular-folders',
      comment: 'No import cycle between folders of src/.',
      severity: 'error',
      scope: 'folder',
      from: {},
      to: { circular: true },
    },
  ],
  options: { ...options, exclude: { path: '[.]test[.]ts$' } },
};
