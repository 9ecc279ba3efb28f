import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.data/'] },
  {
    files: ['**/*.mjs'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly' } },
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-control-regex': 'off',
      eqeqeq: ['error', 'always'],
    },
  },
  {
    // every property is replayable from FC_SEED / FC_PATH (test/support/property.ts)
    files: ['test/**/*.ts'],
    ignores: ['test/support/property.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          object: 'fc',
          property: 'assert',
          message: 'use assertProperty / assertAsyncProperty (test/support/property.ts): they replay FC_SEED and FC_PATH',
        },
      ],
    },
  },
  {
    // runs in browsers as well as Node: nothing of Node, nor the server's libraries (types excepted)
    files: ['src/client/**/*.ts', 'src/web/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'ioredis', 'knex', 'koa', '@koa/*', 'pg', 'bullmq', 'jose', 'zod'],
              message: 'src/client and src/web run in browsers: no Node or server modules (types: import type)',
              allowTypeImports: true,
            },
          ],
        },
      ],
      'no-restricted-globals': ['error', 'Buffer', 'process', '__dirname', 'require'],
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: {
      globals: { module: 'writable', require: 'readonly', process: 'readonly', __dirname: 'readonly', console: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
