/**
 * Keep the README's variable table in step with .env.example (the documented source):
 *   tsx src/cli/env-docs.ts          rewrite the table between the env-table markers in README.md
 *   tsx src/cli/env-docs.ts --check  exit 1 if the README table is stale
 */
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

export interface EnvDoc {
  name: string;
  default: string;
  meaning: string;
  group: string;
}

/** Variables of .env.example with the comment lines just above each (its meaning) and its section. */
export function parseEnvExample(text: string): EnvDoc[] {
  const out: EnvDoc[] = [];
  let comments: string[] = [];
  let group = '';
  let previous: EnvDoc | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const section = /^#\s*──\s*(.+?)\s*─/.exec(line);
    if (section) {
      group = section[1]!;
      comments = [];
      previous = undefined;
    } else if (line.startsWith('#')) {
      comments.push(line.replace(/^#\s?/, ''));
      previous = undefined;
    } else if (/^[A-Z][A-Z0-9_]*=/.test(line)) {
      const [name, ...rest] = line.split('=');
      // Consecutive variables under one comment share its meaning (RABBITMQ_HOST / RABBITMQ_PORT).
      const meaning = comments.length ? comments.join(' ') : (previous?.meaning ?? '');
      previous = { name: name!, default: rest.join('='), meaning, group };
      out.push(previous);
      comments = [];
    } else {
      comments = [];
      previous = undefined;
    }
  }
  return out;
}

export function renderTable(docs: EnvDoc[]): string {
  const rows = docs.map(
    (d) =>
      `| \`${d.name}\` | ${d.default ? `\`${d.default}\`` : '(unset)'} | ${d.group} | ${d.meaning.replace(/\|/g, '\\|')} |`,
  );
  return ['| variable | default | group | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

export function renderReadme(readme: string, table: string): string {
  const start = '<!-- env-table:start -->';
  const end = '<!-- env-table:end -->';
  const i = readme.indexOf(start);
  const j = readme.indexOf(end);
  if (i < 0 || j < 0) throw new Error('README.md has no env-table markers');
  return `${readme.slice(0, i + start.length)}\n${table}\n${readme.slice(j)}`;
}

if (require.main === module) {
  const docs = parseEnvExample(fs.readFileSync(path.join(ROOT, '.env.example'), 'utf8'));
  const readmePath = path.join(ROOT, 'README.md');
  const readme = fs.readFileSync(readmePath, 'utf8');
  const next = renderReadme(readme, renderTable(docs));
  if (process.argv.includes('--check')) {
    if (next !== readme) {
      process.stderr.write('README.md variable table is stale: run `tsx src/cli/env-docs.ts`\n');
      process.exit(1);
    }
  } else {
    fs.writeFileSync(readmePath, next);
    process.stdout.write(`README.md: ${docs.length} variables\n`);
  }
}
