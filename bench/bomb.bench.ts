// Bombs and big files (issue 14 item 4): a made-up 4 GiB gzip bomb and a made-up image holding a 3 GiB file, each
// read by pare under GNU time for its peak RSS. Goal: ≤ 300 MiB for both; the bomb refused (exit 2) by the default
// limits, the big file unpacked and hashed correctly. umoci unpacks the big image in the same run, for a ratio.
//
// Both images are written by this file, in a temp dir removed at the end, without holding them in memory:
// - bomb: one gzip layer, a tar of one 4 GiB file of zeros: gzip members (tar header, 64 × 64 MiB of zeros, the end)
//   concatenated, 4 MiB on disk; its diff_id hashed as the tar streams by.
// - big: one plain tar layer holding a 3 GiB file of zeros, written sparse (header, a hole, the end blocks).
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import zlib from 'node:zlib';
import { Hasher, sha256 } from '../src/digest/index.ts';
import { encodeHeader } from '../src/tar/index.ts';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const work = mkdtempSync(join(tmpdir(), 'pare-bomb-bench-'));
const NODE = resolve('node_modules/.bin/node');
const PARE = resolve('bin/pare.js');

function header(name: string, size: number): Uint8Array {
  return encodeHeader({
    path: name,
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size,
    mtime: 0,
    linkname: '',
    devmajor: 0,
    devminor: 0,
    xattrs: {},
  });
}

/** Writes an OCI layout with one layer (stored bytes already in `blobPath`) and returns its directory. */
function layout(name: string, layer: { digest: string; size: number; diffId: string; mediaType: string }) {
  const dir = join(work, name);
  const blobs = join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (s: string) => {
    const d = sha256(s);
    writeFileSync(join(blobs, d.slice(7)), s);
    return { digest: d, size: Buffer.byteLength(s) };
  };
  const config = put(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/nothing-to-run'] },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    }),
  );
  const manifest = put(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
    }),
  );
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': 'v1' },
        },
      ],
    }),
  );
  return { dir, blobs };
}

function makeBomb(): string {
  const size = 4 * GiB;
  const zeros = new Uint8Array(64 * MiB);
  const head = header('zero', size);
  const tail = new Uint8Array(1024); // size is a multiple of 512: no padding, just the two end blocks
  const diff = new Hasher();
  diff.update(head);
  for (let i = 0; i < size / zeros.length; i++) diff.update(zeros);
  diff.update(tail);
  const zHead = zlib.gzipSync(head);
  const zZeros = zlib.gzipSync(zeros, { level: 9 });
  const zTail = zlib.gzipSync(tail);
  const dig = new Hasher();
  const parts = [zHead, ...Array.from({ length: size / zeros.length }, () => zZeros), zTail];
  for (const p of parts) dig.update(p);
  const digest = dig.digest();
  const { dir, blobs } = layout('bomb', {
    digest,
    size: dig.size,
    diffId: diff.digest(),
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  });
  const fd = openSync(join(blobs, digest.slice(7)), 'w');
  for (const p of parts) writeSync(fd, p);
  closeSync(fd);
  return dir;
}

const BIG = 3 * GiB;
function makeBig(): string {
  const head = header('big', BIG);
  const zeros = new Uint8Array(64 * MiB);
  const h = new Hasher();
  h.update(head);
  for (let i = 0; i < BIG / zeros.length; i++) h.update(zeros);
  h.update(new Uint8Array(1024));
  const digest = h.digest();
  const { dir, blobs } = layout('big', {
    digest,
    size: 512 + BIG + 1024,
    diffId: digest,
    mediaType: 'application/vnd.oci.image.layer.v1.tar',
  });
  const fd = openSync(join(blobs, digest.slice(7)), 'w');
  writeSync(fd, head);
  ftruncateSync(fd, 512 + BIG + 1024); // the file body and the end blocks are a hole: zeros
  closeSync(fd);
  return dir;
}

interface Run {
  readonly name: string;
  readonly code: number | null;
  readonly seconds: number;
  readonly rssMiB: number;
  readonly stdout: string;
  readonly stderr: string;
}
function timed(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 1 << 28,
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const lines = r.stderr.trim().split('\n');
  const rssMiB = Number(lines.pop()) / 1024;
  return { name, code: r.status, seconds, rssMiB, stdout: r.stdout, stderr: lines.join('\n') };
}
const row = (r: Run, note: string) =>
  process.stdout.write(
    `${r.name.padEnd(44)} exit ${String(r.code).padEnd(3)} ${r.seconds.toFixed(1).padStart(6)} s ${r.rssMiB.toFixed(0).padStart(5)} MiB  ${note}\n`,
  );

try {
  process.stdout.write('\n## 4 GiB gzip bomb (4 MiB on disk) and a 3 GiB file, peak RSS (GNU time)\n');
  const bomb = makeBomb();
  const big = makeBig();
  const cache = join(work, 'cache');
  const env = { XDG_CACHE_HOME: cache, TMPDIR: work };
  const runs: Run[] = [];
  const check = (r: Run, ok: boolean, note: string) => {
    runs.push(r);
    row(r, `${ok ? 'ok' : 'UNEXPECTED'}: ${note}`);
  };
  for (const cmd of ['audit', 'sbom', 'run'] as const) {
    const r = timed(`pare ${cmd} (bomb, default limits)`, NODE, [PARE, cmd, `oci:${bomb}:v1`], env);
    check(r, r.code === 2 && /decompression bomb/.test(r.stderr), r.stderr.split('\n')[0]!.slice(0, 90));
  }
  const all = timed('pare inspect (bomb, ratio limit raised)', NODE, [PARE, 'inspect', `oci:${bomb}:v1`], {
    ...env,
    PARE_MAX_RATIO: '100000',
  });
  check(all, all.code === 0, 'all 4 GiB decompressed and hashed against the diff_id');

  const want = sha256Zeros(BIG);
  const sbom = timed('pare sbom (3 GiB file)', NODE, [PARE, 'sbom', `oci:${big}:v1`], env);
  check(
    sbom,
    sbom.code === 0 && sbom.stdout.includes(want.slice(7)),
    `SBOM lists /big with sha256 ${want.slice(7, 19)}…`,
  );
  const run = timed(
    'pare run (3 GiB file: unpack, then no command)',
    NODE,
    [PARE, 'run', `oci:${big}:v1`],
    env,
  );
  const unpacked = spawnSync('sh', ['-c', `sha256sum ${cache}/pare/rootfs/*/big`], {
    encoding: 'utf8',
  }).stdout;
  check(run, unpacked.startsWith(want.slice(7)), `unpacked /big hashes to ${want.slice(7, 19)}… (sha256sum)`);
  rmSync(cache, { recursive: true, force: true });
  const umociOk = spawnSync('umoci', ['--version']).status === 0;
  if (umociOk) {
    const u = timed('umoci unpack --rootless (3 GiB file)', 'umoci', [
      'unpack',
      '--rootless',
      '--image',
      `${big}:v1`,
      join(work, 'bundle'),
    ]);
    row(
      u,
      `peer; pare run / umoci: ${(run.seconds / u.seconds).toFixed(2)}× time, ${(run.rssMiB / u.rssMiB).toFixed(2)}× RSS`,
    );
  } else process.stdout.write('umoci not found: no peer ratio\n');
  const worst = Math.max(...runs.map((r) => r.rssMiB));
  process.stdout.write(`goal: peak RSS ≤ 300 MiB for both (worst here ${worst.toFixed(0)} MiB)\n`);
  if (runs.some((r) => r.code === null)) process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}

/** The sha256 of `n` zero bytes (the big file's own content). */
function sha256Zeros(n: number): string {
  const zeros = new Uint8Array(64 * MiB);
  const f = new Hasher();
  for (let i = 0; i < n / zeros.length; i++) f.update(zeros);
  return f.digest();
}
