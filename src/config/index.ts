export type { LoadedConfig } from './load.ts';
export { findConfig, loadConfig, parseConfigText, parseYamlFile } from './load.ts';
export type { AccountsSpec, Config, FileSpec } from './schema.ts';
export { configSchema, EPOCH_MAX, IMAGE_BASE } from './schema.ts';
