export type { LoadedConfig } from './load.ts';
export { findConfig, loadConfig, parseConfigText, parseYamlFile } from './load.ts';
export type { AccountsSpec, Config, FileSpec } from './schema.ts';
export { BASE_PRESETS, configSchema, EPOCH_MAX } from './schema.ts';
