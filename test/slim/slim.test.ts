import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Tree } from '../../src/fstree/index.ts';
import { readLocal } from '../../src/layout/index.ts';
import { type Image, imageToTree } from '../../src/oci/index.ts';
import { readDpkgDatabase } from '../../src/sbom/index.ts';
import { pareAsync, pareSpawn } from '../helpers/cli.ts';
import { debianImage } from '../helpers/mmdebstrap.ts';
import { peersOrSkip } from '../helpers/peers.ts';
import { freePort } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * `pare slim` on an image pare did not build: mmdebstrap (`--variant=apt`: shell, apt and dpkg inside, plus python3
 * and curl) packed by umoci; more tags of it made with umoci (curl as the entrypoint; a static program added). The slimmed image must pass its probe under `pare run`, be at most 30% of the input's compressed
 * size, hold no shell, apt or dpkg, and carry a dpkg database a scanner can trust; and a slimmed image that would fail
 * a probe is refused with the missing path and the `--keep` that brings it back.
 */

const peers = peersOrSkip('mmdebstrap', 'umoci', 'bwrap', 'strace', 'gcc');
const PROBE = 'python3 -c "import json, ssl; print(json.dumps([ssl.OPENSSL_VERSION[:7]]))"';
/** `--http-probe` publishes the port with pasta, which pare does as root here (see src/run/network.ts). */
const http = peersOrSkip('pasta');
const httpSkip = http.skip ? http.reason : process.getuid?.() === 0 ? '' : 'publishing ports needs root here';
const SHELL_PROBE = `python3 -c "import subprocess; subprocess.run(['sh', '-c', 'exit 0'], check=True)"`;

async function imageAt(layout: string, tag: string): Promise<Image> {
  const a = await readLocal({ transport: 'oci', path: layout, tag });
  if (a.kind !== 'image') throw new Error(`${layout}:${tag} is not an image`);
  return a.image;
}

function exists(tree: Tree, path: string): boolean {
  try {
    return tree.resolve(path).entry !== undefined;
  } catch {
    return false;
  }
}

describe.skipIf(peers.skip)('pare slim on an mmdebstrap + umoci python3 image', () => {
  const work = peers.skip ? '' : tempDir('pare-slim-');
  let src = '';
  let layout = '';
  beforeAll(() => {
    ({ ref: src, layout } = debianImage(
      { mmdebstrap: peers.paths.mmdebstrap!, umoci: peers.paths.umoci! },
      {
        include: ['python3', 'curl'],
        config: [
          '--config.cmd=python3',
          '--config.workingdir=/tmp',
          '--config.label=org.example.purpose=slim-test',
          '--config.stopsignal=SIGINT',
          '--config.env=LANG=C.UTF-8',
        ],
      },
    ));
  }, 600_000);

  it('keeps what the probe needs, passes it under pare run, ≤ 30% of the input, scanner-true, deterministic', async () => {
    const out = join(work, 'out');
    const args = ['slim', src, `oci:${out}:a`, '--probe', PROBE, '--json'];
    const first = await pareAsync(args);
    expect(first.stderr).not.toMatch(/^pare: error/m);
    expect(first.code).toBe(0);
    const report = JSON.parse(first.stdout);
    expect(report.schema).toBe('pare.slim/v1');
    expect(report.compressed / report.source.compressed).toBeLessThanOrEqual(0.3);
    expect(report.packages.find((p: { name: string }) => p.name === 'dpkg').kept).toBe(false);

    // Deterministic: the same source and options give the same digest.
    const again = await pareAsync(['slim', src, `oci:${out}:b`, '--probe', PROBE, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).digest).toBe(report.digest);

    const run = await pareAsync([
      'run',
      '--cache-dir',
      join(work, 'rootfs'),
      `oci:${out}:a`,
      '--',
      ...['python3', '-c', 'import json, ssl; print(json.dumps([ssl.OPENSSL_VERSION[:7]]))'],
    ]);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('["OpenSSL"]\n');

    const source = await imageAt(src.replace(/^oci:/, '').replace(/:base$/, ''), 'base');
    const slim = await imageAt(out, 'a');
    expect(await slim.digest()).toBe(report.digest);
    const [sc, oc, m] = await Promise.all([source.config(), slim.config(), slim.manifest()]);
    expect(oc.config).toEqual(sc.config);
    expect(oc.config?.Labels?.['org.example.purpose']).toBe('slim-test');
    expect(oc.config?.StopSignal).toBe('SIGINT');
    expect(m.annotations?.['org.opencontainers.image.base.digest']).toBe(await source.digest());
    expect(JSON.parse(m.annotations?.['dev.pare.slim.probes'] ?? '')).toEqual([
      ['python3', '-c', 'import json, ssl; print(json.dumps([ssl.OPENSSL_VERSION[:7]]))'],
    ]);
    expect(oc.history?.at(-1)?.created_by).toMatch(/^pare slim --probe /);

    const tree = await imageToTree(slim);
    for (const gone of [
      '/bin/sh',
      '/usr/bin/dash',
      '/usr/bin/bash',
      '/usr/bin/apt',
      '/usr/bin/apt-get',
      '/usr/bin/dpkg',
      '/usr/bin/perl',
    ])
      expect(exists(tree, gone), gone).toBe(false);
    expect(exists(tree, '/etc/os-release')).toBe(true);
    // A scanner's view (src/sbom reads /var/lib/dpkg like syft and trivy): only packages that are there, and every
    // file each lists exists.
    const db = await readDpkgDatabase(tree);
    const names = db.map((p) => p.name);
    expect(names).toContain('python3.11-minimal');
    expect(names).toContain('libc6');
    for (const n of ['apt', 'dpkg', 'dash', 'bash', 'perl-base', 'coreutils']) expect(names).not.toContain(n);
    for (const p of db) {
      expect(
        p.files.some((f) => tree.get(f)?.kind !== 'dir'),
        `${p.name} has a file`,
      ).toBe(true);
      for (const f of p.files) expect(exists(tree, f), `${p.name}: ${f}`).toBe(true);
    }
    expect(db.find((p) => p.name === 'libc6')?.sliced).toBe(true);
  }, 600_000);

  it('refuses a slimmed image that fails a probe, naming the missing path and the --keep that fixes it', async () => {
    const out = join(work, 'broken');
    const failed = await pareAsync(['slim', src, `oci:${out}:a`, '--probe', SHELL_PROBE]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/the slimmed image fails probe/);
    expect(failed.stderr).toContain('/usr/bin/sh: add --keep /usr/bin/sh');
    expect(failed.stderr).toMatch(/nothing was written/);
    expect(failed.stdout).toBe('');
    expect(
      exists(
        await imageToTree(await imageAt(src.replace(/^oci:/, '').replace(/:base$/, ''), 'base')),
        '/bin/sh',
      ),
    ).toBe(true);
    await expect(readLocal({ transport: 'oci', path: out, tag: 'a' })).rejects.toThrow();

    // The --keep it names is the fix.
    const fixed = await pareAsync([
      'slim',
      src,
      `oci:${out}:a`,
      '--probe',
      SHELL_PROBE,
      '--keep',
      '/usr/bin/sh',
    ]);
    expect(fixed.stderr).not.toMatch(/^pare: error/m);
    expect(fixed.code).toBe(0);
  }, 600_000);

  describe.skipIf(httpSkip !== '')('--http-probe: python3 -m http.server', () => {
    const site = '<!doctype html><title>slim</title><p>served by the slimmed image</p>\n';
    let tag = '';
    beforeAll(() => {
      // The served files are data nothing in the image names: only the HTTP probe finds the one it GETs.
      const dir = join(work, 'site');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'index.html'), site);
      writeFileSync(join(dir, 'unused.txt'), 'never requested\n');
      const umoci = peers.paths.umoci!;
      execFileSync(umoci, ['insert', '--image', `${layout}:base`, '--tag', 'http', dir, '/srv/site']);
      execFileSync(umoci, [
        'config',
        '--image',
        `${layout}:http`,
        '--config.entrypoint=python3',
        ...['--clear=config.cmd', '--config.cmd=-u', '--config.cmd=-m', '--config.cmd=http.server'],
        '--config.cmd=8000',
        '--config.workingdir=/srv/site',
        '--config.exposedports=8000/tcp',
      ]);
      tag = `oci:${layout}:http`;
    });

    it('keeps what the server touched, and the slimmed image serves the page under pare run -p', async () => {
      const out = join(work, 'http');
      const r = await pareAsync(['slim', tag, `oci:${out}:a`, '--http-probe', '8000/index.html', '--json']);
      expect(r.stderr).not.toMatch(/^pare: error/m);
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout);
      expect(report.compressed / report.source.compressed).toBeLessThanOrEqual(0.3);
      expect(report.probes).toEqual(['--http-probe 8000/index.html']);
      const slim = await imageAt(out, 'a');
      const m = await slim.manifest();
      expect(JSON.parse(m.annotations?.['dev.pare.slim.http-probes'] ?? '')).toEqual(['8000/index.html']);
      expect((await slim.config()).history?.at(-1)?.created_by).toMatch(
        /--http-probe 8000\/index.html \(from /,
      );
      const tree = await imageToTree(slim);
      expect(exists(tree, '/srv/site/index.html')).toBe(true);
      expect(exists(tree, '/srv/site/unused.txt')).toBe(false);
      for (const gone of ['/bin/sh', '/usr/bin/apt', '/usr/bin/dpkg', '/usr/bin/curl'])
        expect(exists(tree, gone), gone).toBe(false);
      for (const p of await readDpkgDatabase(tree))
        for (const f of p.files) expect(exists(tree, f), `${p.name}: ${f}`).toBe(true);
      // why-kept on the result runs its HTTP probe again and names it.
      const why = await pareAsync(['why-kept', '/srv/site/index.html', `oci:${out}:a`]);
      expect(why.stdout).toContain('touched by probe (--http-probe 8000/index.html)');

      // The slimmed image serves the same page through a published port.
      const port = await freePort();
      const child = pareSpawn([
        'run',
        '--cache-dir',
        join(work, 'rootfs'),
        '-p',
        `127.0.0.1:${port}:8000`,
        `oci:${out}:a`,
      ]);
      let err = '';
      child.stderr.on('data', (c: Buffer) => {
        err += c.toString();
      });
      const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
      try {
        await new Promise<void>((resolve, reject) => {
          child.stdout.on('data', (c: Buffer) => c.toString().includes('Serving HTTP') && resolve());
          closed.then((code) => reject(new Error(`pare run exited ${code}: ${err}`)));
        });
        const page = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          get(`http://127.0.0.1:${port}/index.html`, (res) => {
            let body = '';
            res.on('data', (c: Buffer) => {
              body += c.toString();
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          }).on('error', reject);
        });
        expect(page).toEqual({ status: 200, body: site });
      } finally {
        child.kill('SIGTERM');
        await closed;
      }
    }, 600_000);

    it('a slimmed server that answers another status is refused, naming the path and what removed it', async () => {
      const out = join(work, 'http-broken');
      const r = await pareAsync([
        'slim',
        tag,
        `oci:${out}:a`,
        '--http-probe',
        '8000/index.html',
        '--drop',
        '/srv/site/index.html',
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/GET \/index.html on port 8000 answered 404 where the source answered 200/);
      expect(r.stderr).toContain('/srv/site/index.html: removed by --drop /srv/site/index.html');
      expect(r.stderr).toMatch(/nothing was written/);
      await expect(readLocal({ transport: 'oci', path: out, tag: 'a' })).rejects.toThrow();
    }, 600_000);
  });

  it('a curl image: the file:// probe passes under pare run, ≤ 30% of the input', async () => {
    const umoci = peers.paths.umoci!;
    execFileSync(umoci, [
      'config',
      '--image',
      `${layout}:base`,
      '--tag',
      'curl',
      '--config.entrypoint=curl',
      '--clear=config.cmd',
    ]);
    const out = join(work, 'curl');
    const r = await pareAsync([
      'slim',
      `oci:${layout}:curl`,
      `oci:${out}:a`,
      '--probe',
      'curl -sI file:///etc/os-release',
      '--json',
    ]);
    expect(r.stderr).not.toMatch(/^pare: error/m);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.compressed / report.source.compressed).toBeLessThanOrEqual(0.3);
    const run = await pareAsync([
      'run',
      '--cache-dir',
      join(work, 'rootfs'),
      `oci:${out}:a`,
      '--',
      '-sI',
      'file:///etc/os-release',
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Content-Length: \d+/m);
    const tree = await imageToTree(await imageAt(out, 'a'));
    for (const gone of ['/bin/sh', '/usr/bin/python3', '/usr/bin/apt', '/usr/bin/dpkg'])
      expect(exists(tree, gone), gone).toBe(false);
    const names = (await readDpkgDatabase(tree)).map((p) => p.name);
    expect(names).toContain('curl');
    expect(names).not.toContain('python3.11-minimal');
  }, 600_000);

  it('a static program on a full Debian base: the result holds the program and little else (≤ 2 MiB)', async () => {
    const umoci = peers.paths.umoci!;
    const c = join(work, 'hello.c');
    writeFileSync(c, '#include <stdio.h>\nint main(void) { puts("static hello"); return 0; }\n');
    execFileSync(peers.paths.gcc!, ['-static', '-O2', '-o', join(work, 'hello'), c]);
    execFileSync(umoci, [
      'insert',
      '--image',
      `${layout}:base`,
      '--tag',
      'static',
      join(work, 'hello'),
      '/usr/local/bin/hello',
    ]);
    execFileSync(umoci, [
      'config',
      '--image',
      `${layout}:static`,
      '--config.entrypoint=/usr/local/bin/hello',
      '--clear=config.cmd',
    ]);
    const out = join(work, 'static');
    const r = await pareAsync([
      'slim',
      `oci:${layout}:static`,
      `oci:${out}:a`,
      '--probe',
      '/usr/local/bin/hello',
      '--json',
    ]);
    expect(r.stderr).not.toMatch(/^pare: error/m);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.compressed).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(report.bytes.after).toBeLessThanOrEqual(2 * 1024 * 1024);
    const run = await pareAsync(['run', '--cache-dir', join(work, 'rootfs'), `oci:${out}:a`]);
    expect(run.stdout).toBe('static hello\n');
    const tree = await imageToTree(await imageAt(out, 'a'));
    expect(exists(tree, '/usr/local/bin/hello')).toBe(true);
    for (const gone of ['/usr/bin/python3', '/usr/lib/x86_64-linux-gnu/libc.so.6', '/bin/sh'])
      expect(exists(tree, gone), gone).toBe(false);
  }, 600_000);
});

describe.skipIf(peers.skip)('pare slim on a Node.js app whose node_modules are found by tracing', () => {
  const work = peers.skip ? '' : tempDir('pare-slim-node-');
  let layout = '';
  beforeAll(() => {
    // An mmdebstrap + umoci nodejs image (its own input: the python one has no node) with an app added by umoci: main.js
    // requires greet (its package.json names lib/greet.js), which requires shout; node_modules/unused is never required.
    ({ layout } = debianImage(
      { mmdebstrap: peers.paths.mmdebstrap!, umoci: peers.paths.umoci! },
      { include: ['nodejs'] },
    ));
    const app = join(work, 'app');
    const put = (p: string, text: string) => {
      mkdirSync(join(app, p, '..'), { recursive: true });
      writeFileSync(join(app, p), text);
    };
    put(
      'main.js',
      "'use strict';\nconst greet = require('greet');\nprocess.stdout.write(greet(process.argv[2]) + '\\n');\n",
    );
    put('node_modules/greet/package.json', '{"name":"greet","version":"1.0.0","main":"lib/greet.js"}\n');
    put(
      'node_modules/greet/lib/greet.js',
      "'use strict';\nconst shout = require('shout');\nmodule.exports = (n) => shout('hello, ' + n);\n",
    );
    put('node_modules/shout/package.json', '{"name":"shout","version":"1.0.0"}\n');
    put('node_modules/shout/index.js', "'use strict';\nmodule.exports = (s) => s.toUpperCase() + '!';\n");
    put('node_modules/unused/package.json', '{"name":"unused","version":"1.0.0"}\n');
    put('node_modules/unused/index.js', 'module.exports = 1;\n');
    const umoci = peers.paths.umoci!;
    execFileSync(umoci, ['insert', '--image', `${layout}:base`, '--tag', 'app', app, '/app']);
    execFileSync(umoci, [
      'config',
      '--image',
      `${layout}:app`,
      '--config.entrypoint=node',
      '--config.entrypoint=/app/main.js',
      '--config.workingdir=/app',
    ]);
  }, 600_000);

  it('keeps the modules the probe required (and not the others); the slimmed app runs under pare run', async () => {
    const out = join(work, 'out');
    const reportFile = join(work, 'slice-report.json');
    const r = await pareAsync([
      'slim',
      `oci:${layout}:app`,
      `oci:${out}:a`,
      '--probe',
      'node /app/main.js probe',
      '--report',
      reportFile,
      '--json',
    ]);
    expect(r.stderr).not.toMatch(/^pare: error/m);
    expect(r.code).toBe(0);
    // Per source layer: the Debian root, then the app layer umoci added (7 files, 5 of them required).
    const { layers, files, bytes } = JSON.parse(r.stdout);
    expect(layers).toHaveLength(2);
    type Layer = { filesBefore: number; filesAfter: number; bytesBefore: number; bytesAfter: number };
    const sum = (k: keyof Layer) => layers.reduce((n: number, l: Layer) => n + l[k], 0);
    expect([sum('filesBefore'), sum('filesAfter'), sum('bytesBefore'), sum('bytesAfter')]).toEqual([
      files.before,
      files.after,
      bytes.before,
      bytes.after,
    ]);
    expect(layers[1]).toMatchObject({ filesBefore: 7, filesAfter: 5 });
    expect(layers[0].filesAfter).toBeLessThan(layers[0].filesBefore);
    // why-kept names the probe, from the report slim wrote and from the slimmed image (its probes run again).
    for (const from of [reportFile, `oci:${out}:a`]) {
      const why = await pareAsync(['why-kept', '/app/node_modules/shout/index.js', from]);
      expect(why.stdout, from).toContain('touched by probe (node /app/main.js probe)');
      expect(why.code).toBe(0);
    }
    const tree = await imageToTree(await imageAt(out, 'a'));
    for (const kept of [
      '/app/main.js',
      '/app/node_modules/greet/package.json',
      '/app/node_modules/greet/lib/greet.js',
      '/app/node_modules/shout/index.js',
    ])
      expect(exists(tree, kept), kept).toBe(true);
    expect(exists(tree, '/app/node_modules/unused')).toBe(false);
    for (const gone of ['/bin/sh', '/usr/bin/apt', '/usr/bin/dpkg', '/usr/bin/perl'])
      expect(exists(tree, gone), gone).toBe(false);
    const names = (await readDpkgDatabase(tree)).map((p) => p.name);
    expect(names).toContain('nodejs');
    expect(names).not.toContain('apt');
    const run = await pareAsync(['run', '--cache-dir', join(work, 'rootfs'), `oci:${out}:a`, 'World']);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('HELLO, WORLD!\n');
  }, 600_000);
});

describe('pare slim: bad options are exit 2 before any image is read', () => {
  it('a probe with shell syntax, a bad --probe-timeout', async () => {
    const pipe = await pareAsync([
      'slim',
      'oci:/nonexistent',
      'oci:/nonexistent-out',
      '--probe',
      'python3 -V | cat',
    ]);
    expect(pipe.code).toBe(2);
    expect(pipe.stderr).toMatch(
      /cannot use --probe "python3 -V \| cat": "\|" means something to a shell at column 12/,
    );
    const t = await pareAsync(['slim', 'oci:/nonexistent', 'oci:/nonexistent-out', '--probe-timeout', '0']);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/--probe-timeout "0": want whole seconds, at least 1/);
  });
});
