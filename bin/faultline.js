#!/usr/bin/env node
// Sources are TypeScript run directly by Node >= 24 (type stripping); this shim
// exists so package.json `bin` points at a plain JS entry.
import '../cli/main.ts';
