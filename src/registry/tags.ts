import { RegistryError } from '../errors.ts';
import { repositoryScope } from './auth.ts';
import { type RegistryClient, readLimited } from './client.ts';
import { nextLink } from './link.ts';
import type { ImageReference } from './reference.ts';

/**
 * Tag listing (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-tags):
 * `GET /v2/<name>/tags/list?n=` following `Link: <…>; rel="next"` pages.
 */

/** One page of tags is a small JSON document; bound it against a hostile registry. */
const MAX_TAGS_PAGE_BYTES = 16 * 1024 * 1024;
/** Stop following `Link` after this many pages (a loop would never end otherwise). */
const MAX_TAG_PAGES = 10_000;

/** Returns every tag of `ref`'s repository in the registry's order (lexical per the spec). Throws REGISTRY_*. */
export async function listTags(
  client: RegistryClient,
  ref: Pick<ImageReference, 'registry' | 'repository'>,
  options: { readonly pageSize?: number } = {},
): Promise<string[]> {
  const where = { host: ref.registry, repository: ref.repository };
  const { base } = await client.ping(ref.registry);
  let url: string | undefined =
    `${base}/v2/${ref.repository}/tags/list${options.pageSize ? `?n=${options.pageSize}` : ''}`;
  const tags: string[] = [];
  for (let page = 0; url; page++) {
    if (page >= MAX_TAG_PAGES)
      throw new RegistryError(
        'REGISTRY_PROTOCOL',
        `cannot list tags of "${ref.registry}/${ref.repository}": more than ${MAX_TAG_PAGES} pages`,
        where,
      );
    const res = await client.request({
      method: 'GET',
      ...where,
      url,
      scopes: [repositoryScope(ref.repository, 'pull')],
      expect: [200],
      what: 'list tags',
    });
    const raw = await readLimited(res, MAX_TAGS_PAGE_BYTES, 'tag list', where);
    let j: { tags?: unknown };
    try {
      j = JSON.parse(Buffer.from(raw).toString('utf8')) as typeof j;
    } catch (e) {
      throw new RegistryError(
        'REGISTRY_PROTOCOL',
        `cannot list tags of "${ref.registry}/${ref.repository}": answer is not JSON`,
        { ...where, cause: e },
      );
    }
    if (j.tags !== null && j.tags !== undefined) {
      if (!Array.isArray(j.tags) || !j.tags.every((t) => typeof t === 'string'))
        throw new RegistryError(
          'REGISTRY_PROTOCOL',
          `cannot list tags of "${ref.registry}/${ref.repository}": "tags" is not a list of strings`,
          where,
        );
      tags.push(...(j.tags as string[]));
    }
    url = nextLink(res.headers.get('link'), url);
  }
  return tags;
}
