import { randomBytes } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  symlinkSync,
  utimesSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { craftElf } from '../../src/elf/index.ts';
import { OciLayout } from '../../src/layout/index.ts';
import { imageToTree, selectImage } from '../../src/oci/index.ts';
import { pare, pareSpawn } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * `pare build` through the real CLI, as the README runs it. The golden digest pins the whole chain (tar bytes, gzip
 * settings, JSON field order); when it changes on purpose, update it here and say why in the commit.
 */
const HELLO = resolve('test/fixtures/build/files-only');
const GOLDEN_HELLO = 'sha256:9a9668faa4622d733b227b714eaf4c2ec0ffc37801299fcb75ae1795ad6cd227';

function copyProject(to: string, order: 'forward' | 'reverse'): string {
  // Recreate the files in a different order with different timestamps: none of that may reach the image.
  mkdirSync(join(to, 'app'), { recursive: true });
  const files = ['app/hello.sh', 'app/README.txt', 'pare.yaml'];
  for (const f of order === 'forward' ? files : [...files].reverse()) {
    cpSync(join(HELLO, f), join(to, f));
    const t = order === 'forward' ? 1_000_000_000 : 1_900_000_000;
    utimesSync(join(to, f), t, t);
  }
  return to;
}

describe('pare build', () => {
  const dir = tempDir();

  it('gives the same digest in two directories, under another TZ, umask and locale, with files created in another order', () => {
    const a = copyProject(join(dir, 'one'), 'forward');
    const b = copyProject(join(dir, 'two', 'nested'), 'reverse');
    const r1 = pare(['build', a, '-o', join(dir, 'out1')], {
      env: { TZ: 'Pacific/Kiritimati', LC_ALL: 'C' },
      umask: '077',
    });
    const r2 = pare(['build', b, '-o', join(dir, 'out2')], {
      env: { TZ: 'UTC', LC_ALL: 'C.UTF-8' },
      umask: '022',
    });
    expect(r1.stderr).toContain('built');
    expect(r1.code).toBe(0);
    expect(r2.code).toBe(0);
    expect(r1.stdout.trim()).toBe(r2.stdout.trim());
    expect(r1.stdout.trim()).toBe(GOLDEN_HELLO);
    // and a second build in the same place gives it again
    expect(pare(['build', a, '-o', join(dir, 'out1')]).stdout.trim()).toBe(GOLDEN_HELLO);
  });

  it('changes the digest when SOURCE_DATE_EPOCH changes (the epoch is really used)', () => {
    const r = pare(['build', HELLO, '--dry-run'], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).not.toBe(GOLDEN_HELLO);
    expect(pare(['build', HELLO, '--dry-run'], { env: { SOURCE_DATE_EPOCH: '1700000000' } }).stdout).toBe(
      r.stdout,
    );
  });

  it('writes a layout that verify-store accepts and inspect describes', () => {
    const out = join(dir, 'inspect');
    expect(pare(['build', HELLO, '-o', out, '--tar', join(dir, 'hello.tar')]).code).toBe(0);
    expect(pare(['verify-store', out]).code).toBe(0);
    const j = JSON.parse(pare(['inspect', '--json', `oci:${out}:hello`]).stdout) as {
      digest: string;
      index: { manifests: unknown[] };
    };
    expect(j.digest).toBe(GOLDEN_HELLO);
    expect(j.index.manifests).toHaveLength(2);
    const t = JSON.parse(
      pare(['inspect', '--json', `oci-archive:${join(dir, 'hello.tar')}:hello`]).stdout,
    ) as { digest: string };
    expect(t.digest).toBe(GOLDEN_HELLO);
  });

  describe('when the input is bad', () => {
    const cases: [string, string, Record<string, string>, RegExp][] = [
      [
        'a missing source file',
        'files:\n  - src: nope.txt\n    dest: /x\n',
        {},
        /pare\.yaml:2:10: cannot read source "nope.txt".*no such file/,
      ],
      [
        'a dest path with ..',
        'files:\n  - content: x\n    dest: /app/../../etc/passwd\n',
        {},
        /pare\.yaml:3:11: cannot use dest .*"\.\." is not allowed/,
      ],
      [
        'two entries for one path',
        'files:\n  - content: a\n    dest: /a\n  - content: b\n    dest: //a/\n',
        {},
        /pare\.yaml:5:11: two entries for "\/a" \(the other is at .*pare\.yaml:3:11\)/,
      ],
      ['an unknown key', 'name: x\nfilez: []\n', {}, /pare\.yaml:2:1: unknown key "filez"/],
      [
        // note: this built a world-writable sticky file (0o1363) before modes had to be octal strings
        'a mode given as a YAML integer',
        'files:\n  - content: x\n    dest: /x\n    mode: 755\n',
        {},
        /pare\.yaml:4:11: files\.0\.mode: .*write it quoted: "0755"/,
      ],
      [
        'an owner written so YAML reads another number',
        'files:\n  - content: x\n    dest: /x\n    owner: 0755\n',
        {},
        /pare\.yaml:4:12: files\.0\.owner: 0755 is read as the number 755/,
      ],
      [
        'an unknown user',
        'image:\n  user: alice\n',
        {},
        /pare\.yaml:2:9: unknown user "alice"; use a number or one of: nobody, nonroot, root/,
      ],
      [
        'a symlink loop',
        'files:\n  - symlink: /b\n    dest: /a\n  - symlink: a\n    dest: /b\n',
        {},
        /symlink "\/a" → "\/b" is part of a loop/,
      ],
      [
        // note: this replaced the merged-/usr link /bin → usr/bin with a directory holding only the file
        'a dest under the /bin link',
        'files:\n  - content: x\n    dest: /bin/tool\n',
        {},
        /pare\.yaml:3:11: dest \/bin\/tool would replace the symlink \/bin → usr\/bin of the linux\/amd64 image with a directory .*write dest: \/usr\/bin\/tool/,
      ],
      [
        'a directory copied over the /lib64 link',
        'files:\n  - dest: /lib64\n    dir: true\n',
        {},
        /pare\.yaml:2:11: dest \/lib64 would replace the symlink \/lib64 → usr\/lib64 .*write dest: \/usr\/lib64/,
      ],
      [
        'a bad SOURCE_DATE_EPOCH',
        'name: x\n',
        { SOURCE_DATE_EPOCH: 'yesterday' },
        /SOURCE_DATE_EPOCH="yesterday"/,
      ],
    ];
    it.each(cases)(
      'refuses %s with exit 2, a clear message, and writes nothing',
      (_what, yaml, env, message) => {
        const p = join(dir, `bad-${randomBytes(4).toString('hex')}`);
        mkdirSync(p);
        writeFileSync(join(p, 'pare.yaml'), yaml);
        const out = join(p, 'out');
        const r = pare(['build', p, '-o', out, '--tar', join(p, 'x.tar')], { env });
        expect(r.stderr).toMatch(message);
        expect(r.code).toBe(2);
        expect(existsSync(out)).toBe(false);
        expect(existsSync(join(p, 'x.tar'))).toBe(false);
      },
    );
  });

  describe('when a files: source leaves the directory of pare.yaml', () => {
    // The project is reached through a symlink itself: that alone must not count as leaving it.
    const outside = join(dir, 'outside');
    const real = join(dir, 'ctx-real');
    const p = join(dir, 'ctx');
    mkdirSync(join(outside, 'secrets'), { recursive: true });
    writeFileSync(join(outside, 'secrets', 'shadow'), 'root:$6$secret:19000::::::\n');
    mkdirSync(join(real, 'app'), { recursive: true });
    writeFileSync(join(real, 'app', 'ok.txt'), 'fine\n');
    symlinkSync(real, p);
    symlinkSync(join(outside, 'secrets'), join(real, 'escape'));
    symlinkSync(join(outside, 'secrets', 'shadow'), join(real, 'app', 'link-to-shadow'));

    it.each([
      [
        'by "..", refused before it is read',
        '../outside/secrets/shadow',
        /2:10: source "\.\.\/outside\/secrets\/shadow" is .*outside\/secrets\/shadow, outside the build context/,
      ],
      [
        'through a symlinked directory',
        'escape/shadow',
        /2:10: source "escape\/shadow" is .*outside\/secrets\/shadow, outside the build context .*ctx-real .*--allow-outside-context/,
      ],
      [
        'by an absolute path',
        join(outside, 'secrets', 'shadow'),
        /2:10: source ".*" is .*outside the build context/,
      ],
    ])('refuses a source leaving it %s with exit 2 and writes nothing', (_what, src, message) => {
      writeFileSync(
        join(real, 'pare.yaml'),
        `files:\n  - src: ${JSON.stringify(src)}\n    dest: /etc/shadow\n`,
      );
      const out = join(dir, `ctx-out-${randomBytes(4).toString('hex')}`);
      const r = pare(['build', p, '-o', out]);
      expect(r.stderr).toMatch(message);
      expect(r.code).toBe(2);
      expect(existsSync(out)).toBe(false);
      // The flag says so explicitly, and then the file is copied.
      const ok = pare(['build', p, '-o', out, '--allow-outside-context']);
      expect(ok.stderr).toContain('built');
      expect(ok.code).toBe(0);
    });

    it('copies a symlink inside the project as a link, without following it', async () => {
      writeFileSync(join(real, 'pare.yaml'), 'files:\n  - src: app\n    dest: /app\n');
      const out = join(dir, 'ctx-links');
      const r = pare(['build', p, '-o', out]);
      expect(r.code).toBe(0);
      const img = await selectImage(await (await OciLayout.open(out)).readArtifact('latest'), {
        os: 'linux',
        architecture: 'amd64',
      });
      const tree = await imageToTree(img);
      expect(tree.get('/app/link-to-shadow')).toMatchObject({ kind: 'symlink' });
      expect(new TextDecoder().decode(await tree.readFile('/app/ok.txt'))).toBe('fine\n');
    });
  });

  it('writes a file under /usr/bin beside the /bin link, lets a symlink: entry replace a link, and writes /bin/x on scratch', async () => {
    const p = join(dir, 'links');
    mkdirSync(p);
    writeFileSync(
      join(p, 'pare.yaml'),
      'files:\n  - { content: x, dest: /usr/bin/tool }\n  - { dest: /lib64, symlink: usr/lib }\n',
    );
    const r = pare(['build', p, '-o', join(p, 'out')]);
    expect(r.code, r.stderr).toBe(0);
    const tree = await imageToTree(
      await selectImage(await (await OciLayout.open(join(p, 'out'))).readArtifact('latest'), {
        os: 'linux',
        architecture: 'amd64',
      }),
    );
    expect(tree.get('/bin')).toMatchObject({ kind: 'symlink', target: 'usr/bin' });
    expect(tree.get('/lib64')).toMatchObject({ kind: 'symlink', target: 'usr/lib' });
    expect(tree.file('/bin/tool')).toBeDefined();
    writeFileSync(join(p, 'pare.yaml'), 'base: scratch\nfiles:\n  - { content: x, dest: /bin/tool }\n');
    expect(pare(['build', p, '-o', join(p, 'out2')]).code).toBe(0);
  });

  describe('when output.layout or output.tar in pare.yaml leaves its directory', () => {
    // Building someone else's project must not write where its pare.yaml points (like a files: src, symlinks resolved).
    const outside = join(dir, 'out-outside');
    const real = join(dir, 'out-ctx');
    mkdirSync(outside, { recursive: true });
    mkdirSync(real, { recursive: true });
    symlinkSync(outside, join(real, 'escape'));
    it.each([
      [
        'layout by ".."',
        'layout: ../out-outside/by-name',
        join(outside, 'by-name'),
        /3:11: output\.layout "\.\.\/out-outside\/by-name" is .*outside the build context.*-o\b.*--allow-outside-context/,
      ],
      [
        'layout through a symlinked directory',
        'layout: escape/linked',
        join(outside, 'linked'),
        /3:11: output\.layout "escape\/linked" is .*out-outside\/linked, outside the build context/,
      ],
      [
        'tar by an absolute path',
        `tar: ${join(outside, 'x.tar')}`,
        join(outside, 'x.tar'),
        /3:8: output\.tar ".*x\.tar" is .*outside the build context.*--tar/,
      ],
    ])('refuses the %s with exit 2 and writes nothing', (_what, line, target, message) => {
      writeFileSync(join(real, 'pare.yaml'), `files: [{ dest: /x, content: "x" }]\noutput:\n  ${line}\n`);
      const r = pare(['build', real], { cwd: real });
      expect(r.stderr).toMatch(message);
      expect(r.code).toBe(2);
      expect(existsSync(target)).toBe(false);
      expect(readdirSync(outside)).toEqual([]);
      // The flag lifts it: the project is then trusted to write there.
      const ok = pare(['build', real, '--allow-outside-context'], { cwd: real });
      expect(ok.stderr).toContain('built');
      expect(ok.code).toBe(0);
      expect(existsSync(target)).toBe(true);
      rmSync(target, { recursive: true });
    });
    it('writes a layout inside the project, and anywhere the command line says', () => {
      writeFileSync(
        join(real, 'pare.yaml'),
        'files: [{ dest: /x, content: "x" }]\noutput:\n  layout: ../out-outside/cli\n',
      );
      const cli = pare(['build', real, '-o', join(outside, 'given')], { cwd: real });
      expect(cli.code).toBe(0);
      expect(existsSync(join(outside, 'given', 'index.json'))).toBe(true);
      writeFileSync(
        join(real, 'pare.yaml'),
        'files: [{ dest: /x, content: "x" }]\noutput:\n  layout: sub/out\n',
      );
      const inside = pare(['build', real], { cwd: real });
      expect(inside.code).toBe(0);
      expect(existsSync(join(real, 'sub', 'out', 'index.json'))).toBe(true);
      rmSync(join(outside, 'given'), { recursive: true });
    });
  });

  describe('when the image could not run', () => {
    // Crafted ELF files (src/elf/craft.ts): a static x86-64 program, and a dynamic one needing ld.so and libc.
    const x86Static = craftElf({ machine: 62, type: 'EXEC' });
    const x86Dynamic = craftElf({
      machine: 62,
      type: 'DYN',
      interp: '/lib64/ld-linux-x86-64.so.2',
      needed: ['libcrypto.so.3', 'libc.so.6'],
    });
    const cases: [string, string, Record<string, Uint8Array | string>, string[]][] = [
      [
        'an x86-64 program in the arm64 image',
        'platforms: [linux/amd64, linux/arm64]\nfiles:\n  - src: fetch\n    dest: /usr/local/bin/fetch\nimage:\n  entrypoint: [/usr/local/bin/fetch]\n',
        { fetch: x86Static },
        [
          'the linux/arm64 image cannot run',
          '/usr/local/bin/fetch is a x86_64 ELF file (e_machine 62), not aarch64 as linux/arm64 needs',
        ],
      ],
      [
        'a dynamic program without its loader and libraries',
        'files:\n  - src: fetch\n    dest: /app/fetch\nimage:\n  entrypoint: [/app/fetch]\n',
        { fetch: x86Dynamic },
        [
          'the linux/amd64 image cannot run',
          '/app/fetch needs the dynamic loader /lib64/ld-linux-x86-64.so.2, which is not in the image',
          '/app/fetch needs the library libc.so.6, which ld.so does not find in the image',
          '/app/fetch needs the library libcrypto.so.3, which ld.so does not find in the image',
        ],
      ],
      [
        'a missing entrypoint',
        'files:\n  - content: x\n    dest: /app/x\nimage:\n  entrypoint: [/app/run]\n',
        {},
        ['entrypoint "/app/run" is not in the image'],
      ],
      [
        'an entrypoint without an exec bit',
        'files:\n  - src: fetch\n    dest: /app/fetch\n    mode: "0644"\nimage:\n  entrypoint: [/app/fetch]\n',
        { fetch: x86Static },
        ['entrypoint "/app/fetch": /app/fetch is not executable (mode 0644)'],
      ],
      [
        'a script whose #! interpreter is missing',
        'files:\n  - src: run.sh\n    dest: /app/run.sh\n    mode: "0755"\nimage:\n  entrypoint: [/app/run.sh]\n',
        { 'run.sh': '#!/bin/sh\necho hi\n' },
        [
          'entrypoint "/app/run.sh": /app/run.sh needs the interpreter /bin/sh, which is not in the linux/amd64 image',
        ],
      ],
      [
        'a bare command not on PATH',
        'files:\n  - src: fetch\n    dest: /opt/fetch\nimage:\n  cmd: [fetch]\n',
        { fetch: x86Static },
        [
          'entrypoint "fetch" is not found on PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        ],
      ],
    ];
    it.each(cases)(
      'refuses %s with exit 1, naming the file, and writes nothing',
      (_what, yaml, files, messages) => {
        const p = join(dir, `run-${randomBytes(4).toString('hex')}`);
        mkdirSync(p);
        writeFileSync(join(p, 'pare.yaml'), yaml);
        for (const [name, bytes] of Object.entries(files))
          writeFileSync(join(p, name), bytes, { mode: 0o755 });
        const out = join(p, 'out');
        const r = pare(['build', p, '-o', out]);
        for (const m of messages) expect(r.stderr).toContain(m);
        expect(r.code).toBe(1);
        expect(existsSync(out)).toBe(false);
      },
    );

    it('builds the same static program for amd64 alone, with the merged-/usr links in the files-only base', async () => {
      const p = join(dir, 'static-ok');
      mkdirSync(p);
      writeFileSync(
        join(p, 'pare.yaml'),
        'files:\n  - src: fetch\n    dest: /usr/local/bin/fetch\nimage:\n  entrypoint: [fetch]\n',
      );
      writeFileSync(join(p, 'fetch'), x86Static, { mode: 0o755 });
      const r = pare(['build', p, '-o', join(p, 'out')]);
      expect(r.stderr).toContain('built');
      expect(r.code).toBe(0);
      const a = await (await OciLayout.open(join(p, 'out'))).readArtifact('latest');
      const tree = await imageToTree(a.kind === 'image' ? a.image : (undefined as never));
      for (const d of ['bin', 'sbin', 'lib', 'lib64'])
        expect([d, tree.get(`/${d}`)?.kind, (tree.get(`/${d}`) as { target?: string })?.target]).toEqual([
          d,
          'symlink',
          `usr/${d}`,
        ]);
      expect(tree.get('/usr/bin')?.kind).toBe('dir');
    });
  });

  it('leaves the layout valid and the old tag intact when killed with SIGKILL mid-write', async () => {
    const p = join(dir, 'kill');
    mkdirSync(p);
    writeFileSync(join(p, 'pare.yaml'), 'files:\n  - src: big.bin\n    dest: /big.bin\n');
    writeFileSync(join(p, 'big.bin'), randomBytes(8 << 20));
    const out = join(p, 'out');
    const first = pare(['build', p, '-o', out, '-t', 'v1']);
    expect(first.code).toBe(0);
    const oldDigest = first.stdout.trim();
    // A second build with other content into the same tag, killed the moment it starts writing a blob.
    writeFileSync(join(p, 'big.bin'), randomBytes(40 << 20));
    const child = pareSpawn(['build', p, '-o', out, '-t', 'v1']);
    const blobs = join(out, 'blobs', 'sha256');
    let killedMidWrite = false;
    const w = watch(blobs, (_ev, name) => {
      if (String(name).startsWith('.tmp-') && !killedMidWrite) {
        killedMidWrite = true;
        child.kill('SIGKILL');
      }
    });
    const code = await new Promise<number | null>((r) =>
      child.on('exit', (c, sig) => r(sig === 'SIGKILL' ? null : c)),
    );
    w.close();
    expect(killedMidWrite).toBe(true);
    expect(code).toBeNull();
    expect(pare(['verify-store', out]).code).toBe(0);
    const layout = await OciLayout.open(out);
    expect((await layout.resolve('v1')).digest).toBe(oldDigest);
    // the interrupted write left at most a temp file, which a rebuild ignores
    expect(readdirSync(blobs).every((n) => n.startsWith('.tmp-') || /^[0-9a-f]{64}$/.test(n))).toBe(true);
    expect(pare(['build', p, '-o', out, '-t', 'v1']).code).toBe(0);
    expect(pare(['verify-store', out]).code).toBe(0);
  });
});
