import nx from '@nx/eslint-plugin';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

const depConstraints = [
  { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:contracts', 'type:util', 'type:domain', 'type:data-access'] },
  { sourceTag: 'type:data-access', onlyDependOnLibsWithTags: ['type:contracts', 'type:util', 'type:domain', 'type:data-access'] },
  // Pure logic, streams in and streams out: no framework, no I/O of its own.
  { sourceTag: 'type:domain', onlyDependOnLibsWithTags: ['type:contracts', 'type:util', 'type:domain'] },
  { sourceTag: 'type:e2e', onlyDependOnLibsWithTags: ['type:testing', 'type:contracts', 'type:util'] },
  { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['type:contracts', 'type:util', 'type:domain', 'type:data-access'] },
  { sourceTag: 'type:util', onlyDependOnLibsWithTags: ['type:util', 'type:contracts'] },
  { sourceTag: 'type:contracts', onlyDependOnLibsWithTags: ['type:contracts'] },
  { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
  { sourceTag: 'scope:storefront', onlyDependOnLibsWithTags: ['scope:shared', 'scope:storefront'] },
  { sourceTag: 'scope:catalog', onlyDependOnLibsWithTags: ['scope:shared', 'scope:catalog'] },
  { sourceTag: 'scope:billing', onlyDependOnLibsWithTags: ['scope:shared', 'scope:billing'] },
  { sourceTag: 'scope:permission', onlyDependOnLibsWithTags: ['scope:shared', 'scope:permission'] },
  { sourceTag: 'scope:bundling', onlyDependOnLibsWithTags: ['scope:shared', 'scope:bundling'] },
  // The seller's command line runs on the seller's machine: shared libraries only (the bundle format, contracts).
  { sourceTag: 'scope:seller-cli', onlyDependOnLibsWithTags: ['scope:shared'] },
];

// Tests may use the testing library (isolated databases and Redis prefixes); production code may not.
const specDepConstraints = depConstraints.map((c) =>
  c.sourceTag === 'type:data-access' || c.sourceTag === 'type:app' || c.sourceTag === 'type:domain' ? { ...c, onlyDependOnLibsWithTags: [...c.onlyDependOnLibsWithTags, 'type:testing'] } : c,
);

const boundaries = (constraints) => [
  'error',
  { enforceBuildableLibDependency: false, allow: [], banTransitiveDependencies: false, depConstraints: constraints },
];

export default tseslint.config(
  {
    ignores: ['**/dist', '**/node_modules', '**/.nx', 'libs/database/src/generated/**', 'coverage', '.data'],
  },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
  },
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Nest's decorators and injected classes are used at run time through metadata.
      '@typescript-eslint/no-extraneous-class': 'off',
      '@nx/enforce-module-boundaries': boundaries(depConstraints),
    },
  },
  {
    // Tests and their support files (fixtures, testing/ folders: never built into dist) use the
    // testing library and may poke at loosely typed values.
    files: [
      '**/*.spec.ts',
      '**/*.integration-spec.ts',
      '**/*.e2e-spec.ts',
      '**/*.fixture.ts',
      'apps/**/testing/**/*.ts',
      'e2e/**/*.ts',
      'bench/**/*.ts',
      'tools/**/*.ts',
    ],
    rules: {
      '@nx/enforce-module-boundaries': boundaries(specDepConstraints),
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '*.config.ts'],
    ...tseslint.configs.disableTypeChecked,
  },
  prettier,
);
