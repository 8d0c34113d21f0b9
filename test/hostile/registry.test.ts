import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/digest/index.ts';
import { formatPlatform, hostPlatform } from '../../src/oci/index.ts';
import { pareAsync } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { BOMB_ENV, type LayerCompression, type Lie, parts } from './generate.ts';

/**
 * A hostile registry: a distribution-spec server on 127.0.0.1, started here, that serves the lying images of
 * generate.ts and lies of its own about manifests and blobs. Every command that reads a `docker://` image must refuse
 * each lie with exit 2, a message naming the registry, no stack trace, nothing on stdout, nothing written to the
 * destination, and nothing left in the caches or the temp dir. The registry is the only source of these bytes, so
 * every check here is one pare makes on what a registry sent (digest, size, diff_id, limits) before it is stored,
 * shown or parsed.
 *
 * The registry's own lies:
 *   config-body      the config blob is served with one byte changed (same size)
 *   manifest-digest  asked for by digest, the registry answers with another (valid) manifest
 *   manifest-header  fetched by tag, `Docker-Content-Digest` names other content
 *   index-size       the tag is an index whose descriptor of the (honest) image manifest says one byte more
 */

type RegistryLie =
  | Exclude<Lie, 'good' | 'layout-version'>
  | 'config-body'
  | 'manifest-digest'
  | 'manifest-header'
  | 'index-size';

interface Doc {
  readonly bytes: Uint8Array;
  readonly mediaType: string;
  /** The `Docker-Content-Digest` header (default: the bytes' digest). */
  readonly header?: string;
}
interface Repo {
  readonly manifests: Map<string, Doc>;
  readonly blobs: Map<string, Uint8Array>;
}

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const flip = (b: Uint8Array, at: number) => {
  const c = Uint8Array.from(b);
  c[at] = c[at] === 0x31 ? 0x32 : 0x31;
  return c;
};

/** The repository `hostile/<name>` serving `lie` (layer compressed with `c`), and the reference to ask for. */
async function hostileRepo(lie: RegistryLie, c: LayerCompression): Promise<{ repo: Repo; ref: string }> {
  const own = ['config-body', 'manifest-digest', 'manifest-header', 'index-size'].includes(lie);
  const p = await parts(c, own ? 'good' : (lie as Lie));
  const manifests = new Map<string, Doc>();
  const blobs = new Map<string, Uint8Array>([
    [p.config.digest, p.config.bytes],
    [p.layer.digest, p.layer.bytes],
  ]);
  const image: Doc = { bytes: p.manifest.bytes, mediaType: MANIFEST };
  manifests.set(p.manifest.digest, image);
  manifests.set('v1', image);
  let ref = 'v1';
  if (lie === 'config-body') {
    // A byte inside a JSON string ("os" value or the like) so the body is still JSON of the same size.
    const text = new TextDecoder().decode(p.config.bytes);
    blobs.set(p.config.digest, flip(p.config.bytes, text.indexOf('hello.txt')));
  } else if (lie === 'manifest-digest') {
    const other = await parts(c, 'diff-id');
    manifests.set(p.manifest.digest, { bytes: other.manifest.bytes, mediaType: MANIFEST });
    ref = p.manifest.digest;
  } else if (lie === 'manifest-header') {
    manifests.set('v1', { ...image, header: sha256('other manifest') });
  } else if (lie === 'index-size') {
    const index = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: INDEX,
        manifests: [
          {
            mediaType: MANIFEST,
            digest: p.manifest.digest,
            size: p.manifest.bytes.length + 1,
            platform: hostPlatform(),
          },
        ],
      }),
    );
    manifests.set('v1', { bytes: index, mediaType: INDEX });
  }
  return { repo: { manifests, blobs }, ref };
}

/** Serves `repos` (by repository name) as a registry on 127.0.0.1; every other request is a 404. */
async function startHostileRegistry(repos: Map<string, Repo>): Promise<{ host: string; server: Server }> {
  const server = createServer((req, res) => {
    req.resume();
    const url = req.url ?? '/';
    const notFound = () => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'not here' }] }));
    };
    if (url === '/v2/' || url === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
      return;
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/?]+)$/.exec(url);
    const repo = m && repos.get(m[1]!);
    if (!m || !repo) return notFound();
    const send = (bytes: Uint8Array, headers: Record<string, string>) => {
      res.writeHead(200, { 'content-length': String(bytes.length), ...headers });
      res.end(req.method === 'HEAD' ? undefined : bytes);
    };
    if (m[2] === 'manifests') {
      const d = repo.manifests.get(decodeURIComponent(m[3]!));
      if (!d) return notFound();
      return send(d.bytes, {
        'content-type': d.mediaType,
        'docker-content-digest': d.header ?? sha256(d.bytes),
      });
    }
    const b = repo.blobs.get(decodeURIComponent(m[3]!));
    if (!b) return notFound();
    return send(b, { 'content-type': 'application/octet-stream' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** Files (not directories) below `dir`, relative to it. */
function filesBelow(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

const work = tempDir('pare-hostile-registry-');
const COMPILE_CACHE = process.env.NODE_COMPILE_CACHE ?? join(tmpdir(), 'node-compile-cache');
let n = 0;
/** Runs pare with a private cache, temp dir and (empty) credential store. */
async function run(args: (out: string) => string[]) {
  const box = join(work, `run-${n++}`);
  const [cache, tmp, out, home] = [join(box, 'cache'), join(box, 'tmp'), join(box, 'out'), join(box, 'home')];
  mkdirSync(tmp, { recursive: true });
  mkdirSync(home, { recursive: true });
  const r = await pareAsync(args(out), {
    env: {
      ...BOMB_ENV,
      XDG_CACHE_HOME: cache,
      XDG_RUNTIME_DIR: home,
      HOME: home,
      DOCKER_CONFIG: home,
      REGISTRY_AUTH_FILE: join(home, 'auth.json'),
      TMPDIR: tmp,
      NODE_COMPILE_CACHE: COMPILE_CACHE,
    },
  });
  return { ...r, cache, tmp, out };
}

const platform = formatPlatform(hostPlatform());
const commands: Record<string, (ref: string) => (out: string) => string[]> = {
  inspect: (ref) => () => ['inspect', '--platform', platform, ref],
  digest: (ref) => () => ['digest', ref],
  copy: (ref) => (out) => ['copy', ref, `oci-archive:${out}`],
  pull: (ref) => (out) => ['pull', ref, out],
  audit: (ref) => () => ['audit', ref],
  sbom: (ref) => () => ['sbom', ref],
  run: (ref) => () => ['run', ref, '--', '/hello.txt'],
};
/**
 * The commands each lie goes through: the ones that read what the lie is about (inspect and digest read no layer).
 * copy writes an oci-archive (layers stream through `checkedStoredLayer`), pull a layout (layers are stored, then
 * read back before they get their name); audit, sbom and run read layers into a tree. Every compression goes through
 * the two writers; the tree readers share one layer stream, so one compression is enough there.
 */
const STORE = ['copy', 'pull'];
const LAYER_READERS = [...STORE, 'audit', 'sbom', 'run'];
const readers = (lie: RegistryLie, c: LayerCompression): string[] => {
  switch (lie) {
    case 'diff-id':
    case 'bomb':
      return c === 'gzip' ? LAYER_READERS : STORE;
    case 'digest':
    case 'size-smaller':
    case 'size-larger':
      return [...STORE, 'audit', 'run'];
    case 'count':
    case 'config-body':
      return ['inspect', 'copy', 'audit'];
    case 'manifest-digest':
    case 'manifest-header':
      return ['inspect', 'digest', 'pull'];
    case 'index-size':
      return ['inspect', 'pull', 'audit'];
  }
};
const why: Record<RegistryLie, RegExp> = {
  'diff-id': /diff_ids/,
  digest: /hashes to/,
  'size-smaller': /more than the \d+ bytes promised|bytes, want|descriptor says/,
  'size-larger': /got \d+ bytes, want|descriptor says/,
  bomb: /decompression bomb/,
  count: /2 diff_ids/,
  'config-body': /hashes to/,
  'manifest-digest': /hashes to/,
  'manifest-header': /hashes to/,
  'index-size': /bytes, the index says|descriptor says/,
};
const cases: (readonly [RegistryLie, LayerCompression])[] = [
  ...(['diff-id', 'bomb'] as const).flatMap((l) =>
    (['none', 'gzip', 'zstd'] as const).map((c) => [l, c] as const),
  ),
  ...(
    [
      'digest',
      'size-smaller',
      'size-larger',
      'count',
      'config-body',
      'manifest-digest',
      'manifest-header',
      'index-size',
    ] as const
  ).map((l) => [l, 'gzip'] as const),
];

describe('a hostile registry', () => {
  let host: string;
  let server: Server;
  const refs = new Map<string, string>();
  beforeAll(async () => {
    const repos = new Map<string, Repo>();
    const add = async (name: string, lie: RegistryLie | 'good', c: LayerCompression) => {
      if (lie === 'good') {
        const p = await parts(c, 'good');
        const doc: Doc = { bytes: p.manifest.bytes, mediaType: MANIFEST };
        repos.set(`hostile/${name}`, {
          manifests: new Map([
            ['v1', doc],
            [p.manifest.digest, doc],
          ]),
          blobs: new Map([
            [p.config.digest, p.config.bytes],
            [p.layer.digest, p.layer.bytes],
          ]),
        });
        refs.set(name, 'v1');
        return;
      }
      const { repo, ref } = await hostileRepo(lie, c);
      repos.set(`hostile/${name}`, repo);
      refs.set(name, ref);
    };
    await add('good', 'good', 'gzip');
    for (const [lie, c] of cases) await add(`${lie}-${c}`, lie, c);
    ({ host, server } = await startHostileRegistry(repos));
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
  });
  const refOf = (name: string) => {
    const r = refs.get(name)!;
    return `docker://${host}/hostile/${name}${r.startsWith('sha256:') ? `@${r}` : `:${r}`}`;
  };

  it.concurrent.each(['inspect', 'copy', 'pull', 'audit'])(
    'serves a good image that pare %s reads (so every refusal below is the lie)',
    async (cmd) => {
      const r = await run(commands[cmd]!(refOf('good')));
      expect(r.code, r.stderr).toBe(0);
    },
  );

  describe.each(cases)('%s (%s layer)', (lie, c) => {
    it.concurrent.each(readers(lie, c))('is refused by pare %s', async (cmd) => {
      const name = `${lie}-${c}`;
      const r = await run(commands[cmd]!(refOf(name)));
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^pare: error: cannot /m);
      expect(r.stderr).toContain(`${host}/hostile/${name}`);
      expect(r.stderr).toMatch(why[lie]);
      expect(r.stderr).not.toMatch(/internal error|^\s+at /m);
      expect(r.stdout).toBe('');
      expect(existsSync(r.out)).toBe(false);
      expect(filesBelow(r.cache)).toEqual([]);
      expect(filesBelow(r.tmp)).toEqual([]);
    });
  });
});
