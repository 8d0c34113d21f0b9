import { isDigest } from '../digest/index.ts';
import { OciError } from '../errors.ts';
import type { ImageConfig, IndexManifest, Manifest } from './model.ts';

/**
 * Parsing of manifests, indexes and configs from raw bytes (registries, layouts, archives: all hostile). Unknown
 * fields are kept (forward compatibility, as the spec asks); the fields pare relies on are checked. Results are
 * deep-frozen.
 *
 * Hand-written rather than zod (which pare.yaml and pare.lock use): these parsers sit on the start-up path of every
 * command that reads an image (`pare pull`, `push`, `inspect`, `run`), and loading zod cost 75 ms of a 0.25 s
 * `pare pull` (95 modules). The schemas are small and fixed by the image spec, so a few checkers below say the same
 * thing: each names the first bad field by its path.
 */

/** A failed check: the path of the field and what is wrong with it. */
class Issue {
  readonly path: readonly (string | number)[];
  readonly message: string;
  constructor(path: readonly (string | number)[], message: string) {
    this.path = path;
    this.message = message;
  }
}

type Path = readonly (string | number)[];
/** Checks `v` at `path`; throws an Issue. `undefined` reaches the checker (optional fields are wrapped). */
type Checker = (v: unknown, path: Path) => void;

function kind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}
const fail = (path: Path, want: string, v: unknown): never => {
  throw new Issue(path, `expected ${want}, received ${kind(v)}`);
};
const str: Checker = (v, p) => {
  if (typeof v !== 'string') fail(p, 'string', v);
};
const digest: Checker = (v, p) => {
  str(v, p);
  if (!isDigest(v as string)) throw new Issue(p, 'not a canonical sha256/sha512 digest');
};
const size: Checker = (v, p) => {
  if (typeof v !== 'number') fail(p, 'number', v);
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new Issue(p, 'expected a non-negative integer');
};
const literal =
  (want: string | number): Checker =>
  (v, p) => {
    if (v !== want) throw new Issue(p, `expected ${JSON.stringify(want)}`);
  };
const optional =
  (c: Checker): Checker =>
  (v, p) => {
    if (v !== undefined) c(v, p);
  };
const nullish =
  (c: Checker): Checker =>
  (v, p) => {
    if (v !== undefined && v !== null) c(v, p);
  };
const array =
  (c: Checker): Checker =>
  (v, p) => {
    if (!Array.isArray(v)) fail(p, 'array', v);
    for (const [i, x] of (v as unknown[]).entries()) c(x, [...p, i]);
  };
const record =
  (c: Checker): Checker =>
  (v, p) => {
    if (kind(v) !== 'object') fail(p, 'object', v);
    for (const [k, x] of Object.entries(v as object)) c(x, [...p, k]);
  };
/** An object with these fields checked and any others kept. */
const object =
  (fields: Readonly<Record<string, Checker>>): Checker =>
  (v, p) => {
    if (kind(v) !== 'object') fail(p, 'object', v);
    for (const [k, c] of Object.entries(fields)) c((v as Record<string, unknown>)[k], [...p, k]);
  };

const platform = object({
  architecture: str,
  os: str,
  variant: optional(str),
  'os.version': optional(str),
  'os.features': optional(array(str)),
});
const annotations = optional(record(str));
const descriptor = object({
  mediaType: str,
  digest,
  size,
  urls: optional(array(str)),
  annotations,
  platform: optional(platform),
  artifactType: optional(str),
  data: optional(str),
});
const manifest = object({
  schemaVersion: literal(2),
  mediaType: optional(str),
  artifactType: optional(str),
  config: descriptor,
  layers: array(descriptor),
  subject: optional(descriptor),
  annotations,
});
const index = object({
  schemaVersion: literal(2),
  mediaType: optional(str),
  artifactType: optional(str),
  manifests: array(descriptor),
  subject: optional(descriptor),
  annotations,
});
const strList = nullish(array(str));
const config = object({
  created: optional(str),
  author: optional(str),
  architecture: str,
  os: str,
  variant: optional(str),
  config: nullish(
    object({
      User: optional(str),
      Env: strList,
      Entrypoint: strList,
      Cmd: strList,
      WorkingDir: optional(str),
      Labels: nullish(record(str)),
      StopSignal: optional(str),
    }),
  ),
  rootfs: object({ type: literal('layers'), diff_ids: array(digest) }),
  history: optional(array(object({}))),
});

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

function parseJson(
  bytes: Uint8Array,
  what: string,
  code: 'OCI_MANIFEST_INVALID' | 'OCI_CONFIG_INVALID' | 'OCI_INDEX_INVALID',
  where?: string,
): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new OciError(code, `cannot parse ${what}${where ? ` ${where}` : ''}: not valid UTF-8 JSON`, {
      cause: e,
      digest: where,
    });
  }
}

function check<T>(
  checker: Checker,
  v: unknown,
  what: string,
  code: 'OCI_MANIFEST_INVALID' | 'OCI_CONFIG_INVALID' | 'OCI_INDEX_INVALID',
  where?: string,
): T {
  try {
    checker(v, []);
  } catch (e) {
    if (!(e instanceof Issue)) throw e;
    const field = e.path.join('.') || '(root)';
    throw new OciError(
      code,
      `cannot parse ${what}${where ? ` ${where}` : ''}: field ${JSON.stringify(field)}: ${e.message}`,
      { digest: where },
    );
  }
  return deepFreeze(v as T);
}

/** Parses an image manifest (OCI or Docker schema 2); throws OCI_MANIFEST_INVALID naming the field. */
export function parseManifest(bytes: Uint8Array, where?: string): Manifest {
  return check(
    manifest,
    parseJson(bytes, 'manifest', 'OCI_MANIFEST_INVALID', where),
    'manifest',
    'OCI_MANIFEST_INVALID',
    where,
  ) as Manifest;
}

/** Parses an image index / manifest list; throws OCI_INDEX_INVALID. */
export function parseIndex(bytes: Uint8Array, where?: string): IndexManifest {
  return check(
    index,
    parseJson(bytes, 'index', 'OCI_INDEX_INVALID', where),
    'index',
    'OCI_INDEX_INVALID',
    where,
  ) as IndexManifest;
}

/** Parses an image config; throws OCI_CONFIG_INVALID. */
export function parseConfig(bytes: Uint8Array, where?: string): ImageConfig {
  return check(
    config,
    parseJson(bytes, 'image config', 'OCI_CONFIG_INVALID', where),
    'image config',
    'OCI_CONFIG_INVALID',
    where,
  ) as ImageConfig;
}

/** Returns the media type a manifest document declares, or guesses it from its shape (old Docker lists omit nothing, some OCI docs omit it). */
export function sniffMediaType(bytes: Uint8Array): string | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    if (typeof v.mediaType === 'string') return v.mediaType;
    if (Array.isArray(v.manifests)) return 'application/vnd.oci.image.index.v1+json';
    if (v.config && Array.isArray(v.layers)) return 'application/vnd.oci.image.manifest.v1+json';
  } catch {
    /* not JSON */
  }
  return undefined;
}
