// Lint rules that make Temporal's sandbox and money-safety rules mechanical.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = builtinModules.flatMap((m) => [m, `node:${m}`]);

export default tseslint.config(
  { ignores: ['node_modules/**', '.tools/**', '.data/**', 'dist/**', 'eslint.config.mjs', 'migrations/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // Tool configs in CommonJS (.dependency-cruiser.cjs), and the services' Node preload (src/lib/parent-lifeline.cjs).
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { module: 'writable', require: 'readonly', process: 'readonly', setTimeout: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A forgotten await on an activity, a publish or a DB write silently loses work.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node built-ins, no I/O clients.
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [...nodeBuiltins, 'pg', 'amqplib', 'pino', 'ws', 'dotenv'],
          patterns: [
            {
              group: [
                '**/adapters/**',
                '**/activities',
                '**/activities/**',
                '**/config',
                '**/logging',
                '**/contracts/ids',
              ],
              allowTypeImports: true,
              message: 'Workflows import activity types only (import type), and nothing that does I/O.',
            },
          ],
        },
      ],
    },
  },
  {
    // src/config is the one reader of the environment (one file per section, each the owner of its variables);
    // every other module receives its typed section, so a variable's meaning is decided in one place.
    files: ['src/**/*.ts'],
    ignores: ['src/config/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message:
            'Read settings from a typed config section (src/config); childEnv()/inheritedEnv() for child processes.',
        },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector:
            "MemberExpression[object.type='MemberExpression'][object.property.name='env'][property.name=/^[A-Z][A-Z0-9_]*$/]",
          message:
            'Environment variable names belong to src/config: take the typed section instead of config.env.NAME.',
        },
      ],
    },
  },
);
