export type { ParseImageOptions } from './open.ts';
export {
  copy,
  formatImageReference,
  IMAGE_FORMS,
  openArtifact,
  parseImageArgument,
  parseRegistryArgument,
} from './open.ts';
