/**
 * `npm run check`: the typecheck (`tsc --noEmit`) and the lint (`eslint .`) in one process, over one TypeScript
 * program. `npm test` runs it beside the tests.
 *
 * Why one program: the lint's type-aware rules (no-floating-promises, no-misused-promises: a forgotten await on an
 * activity, a publish or a ledger write) need the type checker, and with `projectService` ESLint builds and checks
 * the whole program again: measured here, `tsc --noEmit` 17.5 s of CPU and `eslint .` 33 s, 20 s of it in those two
 * rules. Handing ESLint the program this process has just type-checked (typescript-eslint's `parserOptions.programs`)
 * lets the rules read the checker's cached types instead. Beside the tests, on two cores, every CPU second counts.
 *
 * Prints tsc's diagnostics, then ESLint's stylish report (what `npm run typecheck` and `npm run lint` print), then a
 * summary line. Exit code: 1 when either found an error (or a lint warning: `eslint .` fails on none, and neither
 * does this), else 0.
 */
import path from 'node:path';
import { ESLint } from 'eslint';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '..');

function typeCheckedProgram(): { program: ts.Program; errors: number; report: string } {
  const configFile = path.join(ROOT, 'tsconfig.json');
  const parsed = ts.getParsedCommandLineOfConfigFile(
    configFile,
    { noEmit: true },
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  if (!parsed) throw new Error(`cannot read ${configFile}`);
  const program = ts.createProgram({
    rootNames: parsed.fileNames,
    options: parsed.options,
    configFileParsingDiagnostics: parsed.errors,
    ...(parsed.projectReferences ? { projectReferences: parsed.projectReferences } : {}),
  });
  const diagnostics = [...parsed.errors, ...ts.getPreEmitDiagnostics(program)];
  const host: ts.FormatDiagnosticsHost = {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => ROOT,
    getNewLine: () => '\n',
  };
  return {
    program,
    errors: diagnostics.filter((d) => d.category === ts.DiagnosticCategory.Error).length,
    report: ts.formatDiagnostics(diagnostics, host),
  };
}

async function main(): Promise<number> {
  const t0 = performance.now();
  const typecheck = typeCheckedProgram();
  process.stdout.write(typecheck.report);
  const t1 = performance.now();
  console.log(
    `typecheck: ${typecheck.errors} error(s), ${typecheck.program.getRootFileNames().length} files, ` +
      `${((t1 - t0) / 1000).toFixed(1)} s`,
  );

  const eslint = new ESLint({
    cwd: ROOT,
    // The same config as `eslint .`, with the type-aware rules reading the program above instead of the project
    // service's own (every linted .ts file is in tsconfig.json's include, so it is in this program).
    overrideConfig: {
      files: ['**/*.ts'],
      languageOptions: { parserOptions: { projectService: false, programs: [typecheck.program] } },
    },
  });
  const results = await eslint.lintFiles(['.']);
  const formatter = await eslint.loadFormatter('stylish');
  process.stdout.write(await formatter.format(results));
  const lintErrors = results.reduce((n, r) => n + r.errorCount + r.fatalErrorCount, 0);
  const lintWarnings = results.reduce((n, r) => n + r.warningCount, 0);
  console.log(
    `lint: ${lintErrors} error(s), ${lintWarnings} warning(s), ${results.length} files, ` +
      `${((performance.now() - t1) / 1000).toFixed(1)} s`,
  );
  return typecheck.errors > 0 || lintErrors > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
