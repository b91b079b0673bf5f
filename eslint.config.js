import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'web/dist/', 'data/', '.tools/', 'bench/.cache/', 'bench/results/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        fetch: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node built-ins, no I/O.
    files: ['workflows/**/*.ts'],
    ignores: ['workflows/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          // `**/` so a deeper file's '../../api/x' is caught as well as '../api/x'.
          patterns: [
            'node:*',
            'fs',
            'path',
            'crypto',
            'ioredis',
            '**/api/*',
            '**/storage/*',
            '**/test/*',
            '@temporalio/worker',
            '@temporalio/client',
          ],
        },
      ],
    },
  },
  {
    // Data flows one way: producers never import the consumer side.
    files: ['activities/**/*.ts', 'worker/**/*.ts'],
    ignores: ['**/*.test.ts'],
    // `**/` so '../../api/x' from activities/stages/ is caught too; production code never imports tests.
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/api/*', '**/web/*', '**/test/*'] }] },
  },
);
