'use strict';
// index.d.ts declares every export of index.js (TypeScript users get them
// all), and nothing that is not there.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');

test('type declarations cover the exports', () => {
	const declared = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');
	const names = new Set(
		[...declared.matchAll(/^export (?:function|class) (\w+)|^export \{ (\w+) \}/gm)].map(m => m[1] || m[2]),
	);
	const exported = Object.keys(require('..'));
	assert.deepStrictEqual([...names].sort(), exported.sort());
	assert.strictEqual(require('../package.json').types, 'index.d.ts');
});
