/**
 * `pare audit --format html`: one self-contained file (no fetch, no script), deterministic bytes, every string from
 * the image escaped. Rendered in real headless Chromium: the DOM after load has no element the image's file names
 * could have injected, the treemaps are drawn with the numbers of the JSON report, and a screenshot is taken.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { escapeHtml, squarify } from '../../src/audit/index.ts';
import { craftElf } from '../../src/elf/index.ts';
import { bufferContent, fileEntry, TreeBuilder } from '../../src/fstree/index.ts';
import { OciLayout } from '../../src/layout/index.ts';
import { buildImage, layerFromTree } from '../../src/oci/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import { peersOrSkip } from '../helpers/peers.ts';
import { tempDir } from '../helpers/tmp.ts';

/** File names that would run script or change the page if they reached the HTML unescaped. */
const HOSTILE = [
  '/srv/<script>',
  '/srv/<img src=x onerror="document.title=1">',
  '/srv/"><b id=injected>&amp;',
];

async function hostileImage(dir: string): Promise<string> {
  const exe = (mode: number) => fileEntry(bufferContent(craftElf({ machine: 62, type: 'EXEC' })), { mode });
  const data = (n: number) => fileEntry(bufferContent(new Uint8Array(n).fill(7)), { mode: 0o644 });
  const b = new TreeBuilder()
    .put('/app/server', exe(0o755))
    .put('/usr/bin/su', exe(0o4755))
    .put('/usr/share/big/data', data(50_000))
    .put('/usr/lib/x/libz.so.1', data(20_000))
    .put(
      '/var/lib/dpkg/status',
      fileEntry(
        bufferContent(
          'Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n\n' +
            'Package: zlib\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2:1.3\n',
        ),
        { mode: 0o644 },
      ),
    )
    .put('/var/lib/dpkg/info/hello.list', fileEntry(bufferContent('/.\n/app/server\n/usr/share/big/data\n')))
    .put('/var/lib/dpkg/info/zlib.list', fileEntry(bufferContent('/usr/lib/x/libz.so.1\n')));
  // World-writable, so lint names each of them; the ELF file is in the hardening table.
  for (const h of HOSTILE) b.put(h, fileEntry(bufferContent(new Uint8Array(100)), { mode: 0o666 }));
  b.put('/usr/bin/<script>', exe(0o755));
  const image = buildImage({
    layers: [layerFromTree(b.build())],
    platform: { os: 'linux', architecture: 'amd64' },
    created: '2024-01-01T00:00:00Z',
    config: { Entrypoint: ['/app/server'], Labels: { '<script>x</script>': 'y' } },
  });
  const layout = join(dir, 'img');
  await (await OciLayout.create(layout)).writeArtifact({ kind: 'image', image }, { tag: 't' });
  return `oci:${layout}:t`;
}

describe('escapeHtml', () => {
  it('escapes markup and quotes, and shows control characters', () => {
    expect(escapeHtml(`<a href="x">'&'</a>\u0001\u007f`)).toBe(
      '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;\\x01\\x7f',
    );
  });
});

describe('squarify', () => {
  it('tiles the rectangle with areas proportional to the values', () => {
    const values = [60, 30, 20, 10, 5, 1];
    const rects = squarify(values, 0, 0, 600, 200);
    expect(rects).toHaveLength(values.length);
    const total = values.reduce((a, b) => a + b, 0);
    rects.forEach(([x, y, w, h], i) => {
      expect(w * h).toBeCloseTo((values[i]! / total) * 600 * 200, 6);
      expect(x).toBeGreaterThanOrEqual(-1e-9);
      expect(y).toBeGreaterThanOrEqual(-1e-9);
      expect(x + w).toBeLessThanOrEqual(600 + 1e-9);
      expect(y + h).toBeLessThanOrEqual(200 + 1e-9);
    });
  });
});

describe('pare audit --format html', () => {
  const dir = tempDir('pare-html-');

  it('is self-contained, deterministic and escapes the image strings; Chromium renders it as intended', async () => {
    const ref = await hostileImage(dir);
    const out = join(dir, 'report.html');
    const r = await pare(['audit', ref, '--format', 'html', '-o', out, '--require', 'relro=full']);
    // The --require gate fails (crafted ELF files have no RELRO); the report is written anyway.
    expect(r.code, r.stderr).toBe(1);
    const html = readFileSync(out, 'utf8');
    // Same bytes on stdout, and on a second run.
    const again = await pare(['audit', ref, '--format', 'html', '--require', 'relro=full']);
    expect(again.stdout).toBe(html);

    // Nothing to fetch, nothing to run: no script, no src/href, and a policy that forbids both.
    expect(html).not.toMatch(/<(script|img|link|iframe|object|embed)\b/i);
    expect(html).not.toMatch(/<[^>]*\s(src|href)\s*=|url\(/i);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`);
    for (const h of [...HOSTILE, '/usr/bin/<script>']) expect(html).toContain(escapeHtml(h));

    const json = JSON.parse((await pare(['audit', ref, '--json', '--require', 'relro=full'])).stdout);
    expect(json.schema).toBe('pare.audit/v2');
    // /app/server (an 840-byte crafted ELF) and the data file are hello's; the rest is no package's.
    expect(json.image.packages.slice(0, 2)).toEqual([
      { name: 'hello', version: '1.0-1', files: 2, bytes: 50_840 },
      { name: 'zlib', version: '2:1.3', files: 1, bytes: 20_000 },
    ]);
    expect(json.image.packages[2].name).toBe('(no package)');

    const peers = peersOrSkip('chromium');
    if (peers.skip) return;
    const chromium = (...args: string[]) =>
      execFileSync(
        peers.paths.chromium!,
        [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--no-first-run',
          `--user-data-dir=${join(dir, 'profile')}`,
          ...args,
          `file://${out}`,
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 },
      );
    const dom = chromium('--dump-dom');
    // Parsed as intended: the title is ours, and no element came from a file name.
    expect(dom).toContain('<title>pare audit: ');
    expect(dom).not.toContain('pwned</title>');
    expect(dom).not.toMatch(/<script|<img|id="injected"/);
    expect(dom).toContain('<td class="path">/usr/bin/&lt;script&gt;</td>');
    // The treemaps are drawn with the JSON report's numbers.
    const boxes = (id: string) => {
      const svg = new RegExp(`<svg id="${id}"[^]*?</svg>`).exec(dom)![0];
      return [
        ...svg.matchAll(
          /<g class="box" data-name="([^"]*)" data-bytes="(\d+)" data-files="(\d+)"><rect [^>]*width="([\d.]+)" height="([\d.]+)"/g,
        ),
      ].map((m) => ({
        name: m[1]!.replaceAll('&amp;', '&'),
        bytes: Number(m[2]),
        files: Number(m[3]),
        area: Number(m[4]) * Number(m[5]),
      }));
    };
    for (const [id, groups] of [
      ['treemap-packages', json.image.packages],
      ['treemap-directories', json.image.directories],
    ] as const) {
      const drawn = boxes(id);
      expect(drawn.map(({ name, bytes, files }) => ({ name, bytes, files }))).toEqual(
        groups.map((g: { name: string; bytes: number; files: number }) => ({
          name: g.name,
          bytes: g.bytes,
          files: g.files,
        })),
      );
      // Areas follow bytes (the largest box is the largest package).
      const areas = drawn.map((b) => b.area);
      expect(areas).toEqual([...areas].sort((a, b) => b - a));
      expect(drawn.every((b) => b.area > 0)).toBe(true);
    }
    expect(Number(/<span id="total-bytes">(\d+)<\/span>/.exec(dom)![1])).toBe(json.image.bytes);
    expect(Number(/<dd id="elf-files">(\d+)<\/dd>/.exec(dom)![1])).toBe(json.summary.files);
    // Every hardening row and lint finding of the JSON report is in the page.
    expect(dom.match(/<tr class="(weak|strong)/g)).toHaveLength(json.files.length);
    expect(dom.match(/<tr class="(fatal|warn|info|accepted)"><td>/g)?.length).toBe(json.lint.findings.length);

    const png = join(dir, 'report.png');
    chromium(`--screenshot=${png}`, '--window-size=1280,1600');
    const shot = readFileSync(png);
    expect(shot.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(shot.length).toBeGreaterThan(10_000);
  }, 120_000);
});
