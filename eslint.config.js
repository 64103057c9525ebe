// Type-aware lint. Rules that keep the architecture visible:
// - no deep imports into another context: import `../<context>/index.js`, never its internals.
// - no import cycles at any depth (value imports; `import type` is erased): eslint/architecture.js.
// - no floating promises; no console outside the CLI, the benchmarks and the simulator.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import architecture from './eslint/architecture.js';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'data/**',
      'coverage/**',
      '**/*.js',
      '**/*.cjs',
      'console/vite.config.ts',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
      'no-console': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { architecture },
    rules: { 'architecture/no-import-cycles': 'error' },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              // At any depth: `../x/y.js` and `../../x/y.js` (from a subfolder) alike.
              regex: '^(\\.\\./)+(?!test/)[a-z-]+/(?!index\\.js$).+',
              message: 'Import another context only through its index.ts (CONVENTIONS.md #1).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/cli/**', 'bench/**', 'test/**', 'src/sim/**', 'src/**/*.test.ts'],
    rules: { 'no-console': 'off' },
  },
);
