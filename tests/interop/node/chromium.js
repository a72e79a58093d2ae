// Headless Chromium for the browser tests: Debian's chromium (or
// PAG_CHROMIUM), driven by playwright-core, with nothing that reaches out.
'use strict';

const { chromium } = require('playwright-core');

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function launch() {
  return chromium.launch({
    executablePath: process.env.PAG_CHROMIUM || '/usr/bin/chromium',
    args: FLAGS,
  });
}

module.exports = { launch };
