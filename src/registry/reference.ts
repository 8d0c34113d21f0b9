import { type Digest, isDigest } from '../digest/index.ts';
import { RegistryError } from '../errors.ts';
import { formatLocalRef, LOCAL_TRANSPORTS, type LocalRef, parseLocalTransport } from '../layout/index.ts';

/**
 * Image references as docker and skopeo users write them: `host[:port]/path/name[:tag][@digest]`, after the grammar
 * of distribution's `reference` package (https://github.com/distribution/reference/blob/main/reference.go), and
 * the transports of containers-transports(5): `docker://REF`, `oci:DIR[:tag]`, `oci-archive:FILE[:tag]`,
 * `docker-archive:FILE[:ref]`.
 *
 * There is no built-in default registry: a reference without a host is an error unless the caller (or
 * `PARE_DEFAULT_REGISTRY`) names one, so an image never goes to a registry nobody chose.
 */

/** A parsed `host/repository[:tag][@digest]`. */
export interface ImageReference {
  /** `host[:port]` as written (lowercase host). */
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

/** Where an artifact lives, as a skopeo transport: a registry, or a local layout or archive (layout/ref.ts). */
export type TransportReference = { readonly transport: 'docker'; readonly ref: ImageReference } | LocalRef;

export interface ParseReferenceOptions {
  /** Registry for references without a host; defaults to `PARE_DEFAULT_REGISTRY` from the environment. */
  readonly defaultRegistry?: string;
  /** Environment to read `PARE_DEFAULT_REGISTRY` from (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** distribution limits the whole name (host + path) to 255 characters. */
const MAX_NAME_LENGTH = 255;
const TAG = /^[\w][\w.-]{0,127}$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;

function bad(input: string, why: string): RegistryError {
  return new RegistryError(
    'REGISTRY_REFERENCE',
    `cannot parse image reference ${JSON.stringify(input)}: ${why}`,
  );
}

/** Returns true when `host[:port]` is a valid registry host as docker accepts it. */
export function isValidRegistryHost(host: string): boolean {
  let name = host;
  let port: string | undefined;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return false;
    name = host.slice(1, end);
    const rest = host.slice(end + 1);
    if (rest !== '' && !/^:[0-9]+$/.test(rest)) return false;
    return /^[0-9a-fA-F:.]+$/.test(name);
  }
  const colon = host.lastIndexOf(':');
  if (colon >= 0) {
    port = host.slice(colon + 1);
    name = host.slice(0, colon);
    if (!/^[0-9]+$/.test(port) || Number(port) > 65535) return false;
  }
  return name.length > 0 && name.split('.').every((c) => DOMAIN_COMPONENT.test(c));
}

/** docker's rule: the first path component is a host when it has a `.` or `:`, is `localhost`, or has capitals. */
function looksLikeHost(component: string): boolean {
  return (
    component.includes('.') ||
    component.includes(':') ||
    component === 'localhost' ||
    component.startsWith('[') ||
    component !== component.toLowerCase()
  );
}

/**
 * Returns the parsed form of `host[:port]/repo[:tag][@digest]`; throws REGISTRY_REFERENCE naming what is wrong.
 *
 * @example parseReference('127.0.0.1:5000/app/web:1.2@sha256:…')
 */
export function parseReference(input: string, options: ParseReferenceOptions = {}): ImageReference {
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) throw bad(input, `${JSON.stringify(d)} is not a canonical sha256/sha512 digest`);
    digest = d;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag))
      throw bad(input, `tag ${JSON.stringify(tag)} must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }
  if (rest === '') throw bad(input, 'the repository name is empty');
  const slash = rest.indexOf('/');
  let registry: string;
  let repository: string;
  if (slash > 0 && looksLikeHost(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    repository = rest.slice(slash + 1);
    if (!isValidRegistryHost(registry))
      throw bad(input, `${JSON.stringify(registry)} is not a valid host[:port]`);
    registry = registry.toLowerCase();
  } else {
    const fallback = options.defaultRegistry ?? (options.env ?? process.env).PARE_DEFAULT_REGISTRY;
    if (!fallback) {
      throw bad(
        input,
        'no registry host; write it as host[:port]/repository[:tag] or set PARE_DEFAULT_REGISTRY to the registry to use',
      );
    }
    if (!isValidRegistryHost(fallback))
      throw bad(input, `default registry ${JSON.stringify(fallback)} is not a valid host[:port]`);
    registry = fallback.toLowerCase();
    repository = rest;
  }
  if (repository === '') throw bad(input, 'the repository name is empty');
  for (const c of repository.split('/')) {
    if (!PATH_COMPONENT.test(c)) {
      throw bad(
        input,
        `repository component ${JSON.stringify(c)} must be lowercase letters and digits separated by ".", "_", "__" or "-"`,
      );
    }
  }
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH)
    throw bad(input, `the name is longer than ${MAX_NAME_LENGTH} characters`);
  return Object.freeze({
    registry,
    repository,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  });
}

/** Returns `host/repo[:tag][@digest]`. */
export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** Returns what goes after `/manifests/`: the digest when pinned, else the tag, else `latest` (as docker does). */
export function manifestReference(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** Returns the same repository pinned to `digest` (the tag is kept for display). */
export function withDigest(ref: ImageReference, digest: Digest): ImageReference {
  return Object.freeze({ ...ref, digest });
}

const TRANSPORTS = ['docker', ...LOCAL_TRANSPORTS] as const;

/**
 * Returns the transport and location of `docker://REF`, `oci:DIR[:tag]`, `oci-archive:FILE[:tag]` or
 * `docker-archive:FILE[:ref]`; a string without a transport prefix is a registry reference. The tag of a local
 * transport follows the path's last `:` (layout's splitPathAndTag).
 */
export function parseTransportReference(
  input: string,
  options: ParseReferenceOptions = {},
): TransportReference {
  if (input.startsWith('docker://'))
    return { transport: 'docker', ref: parseReference(input.slice('docker://'.length), options) };
  const local = parseLocalTransport(input);
  if (local) return local;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//.exec(input);
  if (scheme) {
    throw new RegistryError(
      'REGISTRY_REFERENCE',
      `cannot parse ${JSON.stringify(input)}: unknown transport ${JSON.stringify(scheme[1])}; use one of ${TRANSPORTS.map((t) => (t === 'docker' ? 'docker://' : `${t}:`)).join(', ')}`,
    );
  }
  return { transport: 'docker', ref: parseReference(input, options) };
}

/** Returns the transport reference in its canonical string form. */
export function formatTransportReference(t: TransportReference): string {
  if (t.transport === 'docker') return `docker://${formatReference(t.ref)}`;
  return formatLocalRef(t);
}
