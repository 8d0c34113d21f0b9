/**
 * Parsing of `WWW-Authenticate` challenges (RFC 7235 §4.1) and the scopes of the distribution token flow
 * (https://distribution.github.io/distribution/spec/auth/token/, https://distribution.github.io/distribution/spec/auth/scope/).
 * Hand-written because the header grammar is small and no maintained library parses auth-params with quoted
 * strings the way registries send them.
 */

/** How a registry wants requests authenticated, as learned from a 401. */
export type Challenge =
  | { readonly scheme: 'none' }
  | { readonly scheme: 'basic'; readonly realm?: string }
  | {
      readonly scheme: 'bearer';
      readonly realm: string;
      readonly service?: string;
      readonly scope?: string;
      readonly error?: string;
    };

/** Returns the auth-params of the first challenge in a `WWW-Authenticate` value, with a lowercase scheme. */
export function parseAuthHeader(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)\s*/.exec(header);
  if (!m) return { scheme: '', params: {} };
  const scheme = m[1]!.toLowerCase();
  const params: Record<string, string> = {};
  let i = m[0].length;
  const s = header;
  while (i < s.length) {
    while (i < s.length && (s[i] === ',' || s[i] === ' ' || s[i] === '\t')) i++;
    const key = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*/.exec(s.slice(i));
    if (!key) break;
    i += key[0].length;
    let value = '';
    if (s[i] === '"') {
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        value += s[i];
        i++;
      }
      i++;
    } else {
      const tok = /^[^,\s]*/.exec(s.slice(i))![0];
      value = tok;
      i += tok.length;
    }
    params[key[1]!.toLowerCase()] = value;
  }
  return { scheme, params };
}

/** Returns the challenge a 401 response announces; `undefined` when the header is missing or not understood. */
export function parseChallenge(header: string | null | undefined): Challenge | undefined {
  if (!header) return undefined;
  const { scheme, params } = parseAuthHeader(header);
  if (scheme === 'basic')
    return params.realm ? { scheme: 'basic', realm: params.realm } : { scheme: 'basic' };
  if (scheme === 'bearer' && params.realm) {
    return {
      scheme: 'bearer',
      realm: params.realm,
      ...(params.service !== undefined ? { service: params.service } : {}),
      ...(params.scope !== undefined ? { scope: params.scope } : {}),
      ...(params.error !== undefined ? { error: params.error } : {}),
    };
  }
  return undefined;
}

/** Returns `repository:<name>:<actions>`, the scope for one repository. */
export function repositoryScope(
  repository: string,
  ...actions: ('pull' | 'push' | 'delete' | '*')[]
): string {
  return `repository:${repository}:${actions.join(',')}`;
}

/**
 * Returns scopes merged per resource (`repository:a:pull` + `repository:a:push` → `repository:a:pull,push`),
 * sorted, so equal needs share one cached token.
 */
export function mergeScopes(scopes: Iterable<string>): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const scope of scopes) {
    // A scope string may hold several space-separated scopes (the token endpoint's `scope` parameter).
    for (const one of scope.split(' ')) {
      if (!one) continue;
      const lastColon = one.lastIndexOf(':');
      if (lastColon < 0) continue;
      const resource = one.slice(0, lastColon);
      const set = byResource.get(resource) ?? new Set<string>();
      for (const a of one.slice(lastColon + 1).split(',')) if (a) set.add(a);
      byResource.set(resource, set);
    }
  }
  return [...byResource.entries()].map(([r, a]) => `${r}:${[...a].sort().join(',')}`).sort();
}
