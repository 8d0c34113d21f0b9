import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Response } from 'undici';
import { describe, expect, it } from 'vitest';
import { type Digest, sha256 } from '../digest/index.ts';
import { MediaType } from '../oci/index.ts';
import { type FetchLike, RegistryClient } from './client.ts';
import { parseReference } from './reference.ts';
import { attachReferrer, listReferrers, referrersTag } from './referrers.ts';

// Recorded answers of an OCI 1.1 registry, written from the spec (see the fixture README).
const FIXTURES = join(import.meta.dirname, '../../test/fixtures/registry/referrers');
const fixture = (name: string) => readFileSync(join(FIXTURES, name));
const SUBJECT = 'sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270' as Digest;
const REF = parseReference('registry.test/app');
const INDEX_CT = { 'content-type': MediaType.OCI_INDEX };

function clientWith(
  route: (method: string, url: URL, init: { body?: unknown; headers: Record<string, string> }) => Response,
) {
  const seen: string[] = [];
  const fetch: FetchLike = async (url, init) => {
    const u = new URL(url);
    if (u.pathname === '/v2/') return new Response('');
    seen.push(`${init.method} ${u.pathname}${u.search}`);
    return route(init.method ?? 'GET', u, {
      body: init.body,
      headers: (init.headers ?? {}) as Record<string, string>,
    });
  };
  return { client: new RegistryClient({ fetch, credentials: async () => undefined, retries: 0 }), seen };
}

describe('listReferrers', () => {
  describe('when the registry has the referrers API', () => {
    it('returns every referrer from one answer', async () => {
      const { client, seen } = clientWith(() => new Response(fixture('all.json'), { headers: INDEX_CT }));
      const r = await listReferrers(client, REF, SUBJECT);
      expect(r.source).toBe('api');
      expect(r.manifests.map((d) => d.artifactType)).toEqual([
        'application/vnd.example.sbom.v1',
        'application/vnd.example.signature.v1',
        'application/spdx+json',
      ]);
      expect(seen).toEqual([`GET /v2/app/referrers/${SUBJECT}`]);
    });

    it('passes artifactType to the registry and trusts OCI-Filters-Applied', async () => {
      const { client, seen } = clientWith(
        () =>
          new Response(fixture('filtered.json'), {
            headers: { ...INDEX_CT, 'oci-filters-applied': 'artifactType' },
          }),
      );
      const r = await listReferrers(client, REF, SUBJECT, { artifactType: 'application/spdx+json' });
      expect(r.manifests.map((d) => d.digest)).toEqual([`sha256:${'a3'.repeat(32)}`]);
      expect(seen).toEqual([`GET /v2/app/referrers/${SUBJECT}?artifactType=application%2Fspdx%2Bjson`]);
    });

    it('filters itself when the registry ignored the filter', async () => {
      // note: no OCI-Filters-Applied header, and the unfiltered list comes back
      const { client } = clientWith(() => new Response(fixture('all.json'), { headers: INDEX_CT }));
      const r = await listReferrers(client, REF, SUBJECT, {
        artifactType: 'application/vnd.example.signature.v1',
      });
      expect(r.manifests.map((d) => d.digest)).toEqual([`sha256:${'a2'.repeat(32)}`]);
    });

    it('follows Link rel="next" pages', async () => {
      const { client, seen } = clientWith((_m, u) =>
        u.searchParams.get('last')
          ? new Response(fixture('page2.json'), { headers: INDEX_CT })
          : new Response(fixture('page1.json'), {
              headers: { ...INDEX_CT, link: `</v2/app/referrers/${SUBJECT}?n=1&last=x>; rel="next"` },
            }),
      );
      const r = await listReferrers(client, REF, SUBJECT);
      expect(r.manifests).toHaveLength(2);
      expect(seen).toHaveLength(2);
    });

    it('returns nothing for a subject without referrers', async () => {
      const { client } = clientWith(() => new Response(fixture('empty.json'), { headers: INDEX_CT }));
      expect(await listReferrers(client, REF, SUBJECT)).toEqual({ manifests: [], source: 'api' });
    });

    it('rejects an answer that is not an index', async () => {
      const { client } = clientWith(() => Response.json({ schemaVersion: 2, config: {}, layers: [] }));
      await expect(listReferrers(client, REF, SUBJECT)).rejects.toThrow(
        expect.objectContaining({ code: 'REGISTRY_PROTOCOL' }),
      );
    });
  });

  describe('when the registry has no referrers API', () => {
    it('reads the sha256-<hex> tag index', async () => {
      const tag = referrersTag(SUBJECT);
      expect(tag).toBe(`sha256-${SUBJECT.slice(7)}`);
      const { client, seen } = clientWith((_m, u) => {
        if (u.pathname.includes('/referrers/')) return new Response('404 page not found', { status: 404 });
        if (u.pathname === `/v2/app/manifests/${tag}`)
          return new Response(fixture('all.json'), { headers: INDEX_CT });
        return new Response('', { status: 404 });
      });
      const r = await listReferrers(client, REF, SUBJECT, { artifactType: 'application/spdx+json' });
      expect(r).toEqual({
        source: 'tag',
        manifests: [expect.objectContaining({ digest: `sha256:${'a3'.repeat(32)}` })],
      });
      expect(seen).toContain(`HEAD /v2/app/manifests/${tag}`);
    });
  });
});

describe('attachReferrer', () => {
  const config = new TextEncoder().encode('{}');
  const manifest = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OCI_MANIFEST,
      artifactType: 'application/vnd.example.sbom.v1',
      config: { mediaType: MediaType.OCI_EMPTY, digest: sha256(config), size: 2 },
      layers: [{ mediaType: MediaType.OCI_EMPTY, digest: sha256(config), size: 2 }],
      subject: { mediaType: MediaType.OCI_MANIFEST, digest: SUBJECT, size: 7 },
    }),
  );
  const blobs = [
    { descriptor: { mediaType: MediaType.OCI_EMPTY, digest: sha256(config), size: 2 }, data: config },
  ];

  it('stops after the manifest when the registry answers OCI-Subject', async () => {
    const { client, seen } = clientWith((m, u) => {
      if (m === 'HEAD' && u.pathname.includes('/blobs/')) return new Response(null, { status: 200 });
      if (m === 'PUT') return new Response(null, { status: 201, headers: { 'oci-subject': SUBJECT } });
      return new Response('', { status: 500 });
    });
    const r = await attachReferrer(client, REF, { manifest, blobs });
    expect(r.mode).toBe('api');
    expect(r.descriptor).toEqual({
      mediaType: MediaType.OCI_MANIFEST,
      digest: sha256(manifest),
      size: manifest.length,
      artifactType: 'application/vnd.example.sbom.v1',
    });
    expect(seen.filter((s) => s.startsWith('PUT'))).toEqual([`PUT /v2/app/manifests/${sha256(manifest)}`]);
  });

  it('adds the referrer to the tag index when the registry ignores subject', async () => {
    const existing = fixture('page1.json');
    const puts: { path: string; body: string; type: string }[] = [];
    const { client } = clientWith((m, u, init) => {
      if (m === 'HEAD' && u.pathname.includes('/blobs/')) return new Response(null, { status: 200 });
      if (u.pathname.endsWith(referrersTag(SUBJECT)) && (m === 'GET' || m === 'HEAD'))
        return new Response(m === 'HEAD' ? null : existing, { headers: INDEX_CT });
      if (m === 'PUT') {
        puts.push({
          path: u.pathname,
          body: Buffer.from(init.body as Uint8Array).toString(),
          type: init.headers['content-type']!,
        });
        return new Response(null, { status: 201 });
      }
      return new Response('', { status: 404 });
    });
    expect((await attachReferrer(client, REF, { manifest, blobs })).mode).toBe('tag');
    expect(puts.map((p) => p.path)).toEqual([
      `/v2/app/manifests/${sha256(manifest)}`,
      `/v2/app/manifests/${referrersTag(SUBJECT)}`,
    ]);
    const index = JSON.parse(puts[1]!.body) as { manifests: { digest: string; artifactType?: string }[] };
    expect(puts[1]!.type).toBe(MediaType.OCI_INDEX);
    expect(index.manifests.map((d) => d.digest)).toEqual([`sha256:${'a1'.repeat(32)}`, sha256(manifest)]);
    expect(index.manifests[1]!.artifactType).toBe('application/vnd.example.sbom.v1');
  });

  it('refuses a manifest without subject', async () => {
    const { client } = clientWith(() => new Response(''));
    const plain = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OCI_MANIFEST,
        config: blobs[0]!.descriptor,
        layers: [],
      }),
    );
    await expect(attachReferrer(client, REF, { manifest: plain, blobs })).rejects.toThrow(
      expect.objectContaining({ code: 'REGISTRY_PROTOCOL', message: expect.stringContaining('subject') }),
    );
  });
});
