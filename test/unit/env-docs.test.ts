import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { envSchema } from '../../src/config';
import { parseEnvExample, renderReadme, renderTable } from '../../src/cli/env-docs';

const ROOT = path.resolve(__dirname, '../..');

describe('configuration docs', () => {
  const docs = parseEnvExample(fs.readFileSync(path.join(ROOT, '.env.example'), 'utf8'));

  it('.env.example documents every variable the config module reads, with a meaning', () => {
    const documented = new Set(docs.map((d) => d.name));
    for (const name of Object.keys(envSchema.shape)) expect(documented, name).toContain(name);
    for (const d of docs) expect(d.meaning.length, d.name).toBeGreaterThan(0);
  });

  it('the README table is generated from .env.example and up to date', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(renderReadme(readme, renderTable(docs))).toBe(readme);
  });
});
