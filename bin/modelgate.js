#!/usr/bin/env node
// Thin launcher: the CLI is compiled from src/ to dist/ by `npm install` (the prepare script).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { console.error(`modelgate: ${err?.message ?? err}`); process.exitCode = 1; },
);
