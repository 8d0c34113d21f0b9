/**
 * The one rule that turns an error into pare's exit code (README: `0` success · `1` a check failed or an operation
 * could not be completed · `2` bad usage or bad input, nothing written).
 *
 * Every error code of every domain is listed, so a new code does not compile until it is classified:
 * - `2` (bad input): the user's arguments or files, or an image, layer, archive, index, .deb, ELF file, key or
 *   document pare refused because it is malformed, over a limit, unsafe or not what its digest/signature promised.
 * - `1` (failed): a check that did not pass (a signature that does not verify, `--locked` that differs), or an
 *   operation that could not be completed (network, HTTP status, a lock held, a sandbox that cannot start).
 * - `'cause'`: a wrapper that says which step failed; its `cause` chain decides (2 when some cause is bad input).
 * Anything that is not a pare error is an internal error: 1.
 */
import {
  type AttestErrorCode,
  BaseError,
  type ControlErrorCode,
  type DebianErrorCode,
  type DigestErrorCode,
  type ElfErrorCode,
  type HttpErrorCode,
  type LayoutErrorCode,
  type OciErrorCode,
  type RegistryErrorCode,
  type RunErrorCode,
  type SbomErrorCode,
  type SliceErrorCode,
  type TarErrorCode,
  type TreeErrorCode,
  type UsageErrorCode,
} from '../errors.ts';

/** Every code a pare error can carry. */
export type PareErrorCode =
  | UsageErrorCode
  | DigestErrorCode
  | TreeErrorCode
  | TarErrorCode
  | OciErrorCode
  | LayoutErrorCode
  | DebianErrorCode
  | ControlErrorCode
  | ElfErrorCode
  | AttestErrorCode
  | SbomErrorCode
  | RegistryErrorCode
  | HttpErrorCode
  | RunErrorCode
  | SliceErrorCode;

export const EXIT_OK = 0;
/** A check failed or an operation could not be completed (and internal errors). */
export const EXIT_FAILED = 1;
/** Bad usage or bad input: nothing was written. */
export const EXIT_BAD_INPUT = 2;

export type ExitRule = typeof EXIT_FAILED | typeof EXIT_BAD_INPUT | 'cause';

/** The exit code of each error code. Exhaustive by type: adding a code to a domain needs a row here. */
export const EXIT_RULES: Readonly<Record<PareErrorCode, ExitRule>> = {
  USAGE: 2,
  CONFIG_INVALID: 2,
  CONFIG_NOT_FOUND: 2,
  INPUT_NOT_FOUND: 2,
  INPUT_INVALID: 2,

  // Content that is not what its descriptor, lock or index promised is refused input.
  DIGEST_INVALID: 2,
  DIGEST_MISMATCH: 2,
  DIGEST_UNSUPPORTED: 2,
  SIZE_MISMATCH: 2,

  // Layers and packages whose paths escape, loop, collide or do not fit together.
  TREE_PATH_INVALID: 2,
  TREE_PATH_ESCAPE: 2,
  TREE_CONFLICT: 2,
  TREE_NOT_FOUND: 2,
  TREE_NOT_DIR: 2,
  TREE_SYMLINK_LOOP: 2,
  TREE_HARDLINK_INVALID: 2,

  TAR_TRUNCATED: 2,
  TAR_CHECKSUM: 2,
  TAR_HEADER_INVALID: 2,
  TAR_PAX_INVALID: 2,
  TAR_UNSUPPORTED: 2,
  TAR_UNSAFE_PATH: 2,
  TAR_LIMIT: 2,

  OCI_MANIFEST_INVALID: 2,
  OCI_CONFIG_INVALID: 2,
  OCI_INDEX_INVALID: 2,
  OCI_MEDIA_TYPE: 2,
  OCI_PLATFORM_NOT_FOUND: 2,
  OCI_PLATFORM_INVALID: 2,
  OCI_VALIDATION: 2,
  OCI_LAYER_INVALID: 2,
  OCI_LIMIT: 2,

  LAYOUT_NOT_FOUND: 2,
  LAYOUT_INVALID: 2,
  LAYOUT_BLOB_MISSING: 2,
  LAYOUT_REF_NOT_FOUND: 2,
  LAYOUT_ARCHIVE_INVALID: 2,
  LAYOUT_VERSION: 2,
  // Another pare process holds the layout: nothing is wrong with the input.
  LAYOUT_LOCKED: 1,

  DEBIAN_VERSION_INVALID: 2,
  DEBIAN_RELATION_INVALID: 2,
  // pare.yaml asks for a package the archive does not have, or for a set nothing satisfies.
  DEBIAN_PACKAGE_NOT_FOUND: 2,
  DEBIAN_UNSATISFIABLE: 2,
  DEBIAN_CONFLICT: 2,
  DEBIAN_DEB_INVALID: 2,
  DEBIAN_DEB_UNSAFE: 2,
  DEBIAN_DEB_LIMIT: 2,
  DEBIAN_ASSEMBLE_CONFLICT: 2,
  DEBIAN_NO_MIRROR: 2,
  DEBIAN_NO_KEYRING: 2,
  DEBIAN_SOURCES_INVALID: 2,
  DEBIAN_HTTP: 1,
  // The mirror has no such suite or file (now): the fetch failed.
  DEBIAN_NOT_FOUND: 1,
  DEBIAN_SIGNATURE: 2,
  DEBIAN_EXPIRED: 2,
  DEBIAN_RELEASE_INVALID: 2,
  DEBIAN_SUITE_MISMATCH: 2,
  DEBIAN_HASH_MISMATCH: 2,
  DEBIAN_INDEX_INVALID: 2,
  DEBIAN_LOCK_INVALID: 2,
  // `--locked` is a check: the resolution differs from the lock.
  DEBIAN_LOCK_MISMATCH: 1,
  // The mirror no longer serves a locked package: the fetch failed.
  DEBIAN_LOCK_STALE: 1,

  CONTROL_SYNTAX: 2,
  CONTROL_DUPLICATE_FIELD: 2,

  ELF_NOT_ELF: 2,
  ELF_TRUNCATED: 2,
  ELF_UNSUPPORTED: 2,
  ELF_HEADER_INVALID: 2,
  ELF_OFFSET_INVALID: 2,
  ELF_STRING_INVALID: 2,
  ELF_NOTE_INVALID: 2,
  ELF_VERSION_INVALID: 2,
  ELF_LIMIT: 2,
  ELF_CACHE_INVALID: 2,
  ELF_IO: 1,

  ATTEST_KEY_INVALID: 2,
  ATTEST_KEY_PASSWORD: 2,
  ATTEST_KEY_UNSUPPORTED: 2,
  ATTEST_KEY_EXISTS: 2,
  ATTEST_ENVELOPE_INVALID: 2,
  // Verification is the check: a signature that does not verify, signs something else or is not there fails it.
  ATTEST_SIGNATURE_INVALID: 1,
  ATTEST_SUBJECT_MISMATCH: 1,
  ATTEST_NOT_FOUND: 1,
  ATTEST_PAYLOAD_INVALID: 2,
  ATTEST_BUNDLE_INVALID: 2,

  SBOM_DPKG_INVALID: 2,
  SBOM_OS_RELEASE_INVALID: 2,
  // pare's own document fails its schema: pare's failure, not the input's.
  SBOM_INVALID: 1,

  REGISTRY_AUTH: 1,
  REGISTRY_CREDENTIALS: 2,
  // The registry sent content that is not what was asked for, or answered outside the distribution spec.
  REGISTRY_DIGEST: 2,
  REGISTRY_PROTOCOL: 2,
  REGISTRY_UNSUPPORTED: 2,
  REGISTRY_REFERENCE: 2,
  REGISTRY_HTTP: 1,
  REGISTRY_NETWORK: 1,
  REGISTRY_NOT_FOUND: 1,
  REGISTRY_TIMEOUT: 1,
  REGISTRY_TLS: 1,

  // A connection that failed under pare's HTTP reader: the operation could not be completed.
  HTTP_CONNECTION_FAILED: 1,
  HTTP_CONNECTION_CUT: 1,
  HTTP_STALLED: 1,
  HTTP_PROTOCOL: 1,
  HTTP_ABORTED: 1,
  HTTP_PROXY_FAILED: 1,
  // A request pare will not send (a header with a line break, a scheme it does not speak): pare's caller's fault.
  HTTP_REQUEST_INVALID: 1,
  HTTP_TIMEOUT: 1,
  HTTP_BODY_UNREAD: 1,
  HTTP_REDIRECT_REFUSED: 1,
  HTTP_TOO_MANY_REDIRECTS: 1,
  // The user's own setup: an unreadable --ca-file, an HTTPS_PROXY that is not an http:// URL.
  HTTP_CA_FILE: 2,
  HTTP_PROXY_INVALID: 2,

  RUN_BWRAP_MISSING: 1,
  RUN_USERNS_DISABLED: 1,
  RUN_ARCH_UNSUPPORTED: 1,
  // `pare run docker://…`: run takes a local image.
  RUN_IMAGE_UNSUPPORTED: 2,
  RUN_NO_COMMAND: 1,
  RUN_USER_NOT_FOUND: 1,
  RUN_USER_INVALID: 2,
  RUN_VOLUME_INVALID: 2,
  RUN_ENV_INVALID: 2,
  RUN_WORKDIR_INVALID: 2,
  RUN_SIZE_INVALID: 2,
  RUN_PUBLISH_INVALID: 2,
  RUN_SECRET_INVALID: 2,
  // `run --print` of a local image without --image, or an --image that is not a registry reference.
  RUN_REFERENCE_INVALID: 2,
  // pasta is not installed, or the private network could not be set up.
  RUN_NETWORK_MISSING: 1,
  RUN_NETWORK_FAILED: 1,
  // Unpacking fails on a hostile layer (bad input) or on the disk (failed): the cause says which.
  RUN_UNPACK_FAILED: 'cause',
  RUN_SANDBOX_FAILED: 1,

  SLICE_ROOT_NOT_FOUND: 2,
  SLICE_SHELL_REQUIRED: 2,
  SLICE_OPTIONS_INVALID: 2,
  SLICE_PROBE_UNAVAILABLE: 1,
  SLICE_PROBE_FAILED: 1,
  // pare slim: the slimmed image fails a probe the source passed; nothing is written.
  SLICE_SLIM_BROKEN: 1,
  SLICE_REPORT_INVALID: 2,
};

/** Most causes followed for a `'cause'` rule (a cause chain is finite, but a cycle is possible). */
const MAX_CAUSES = 32;

function ruleOf(e: unknown): ExitRule | undefined {
  if (!(e instanceof BaseError)) return undefined;
  return Object.hasOwn(EXIT_RULES, e.code) ? EXIT_RULES[e.code as PareErrorCode] : undefined;
}

/**
 * Returns the exit code for an error: the row of its code in EXIT_RULES, following the cause chain for `'cause'`
 * rows. A pare error whose code has no row (only possible for a class outside errors.ts) and any other error: 1.
 */
export function exitCodeOf(e: unknown): typeof EXIT_FAILED | typeof EXIT_BAD_INPUT {
  let rule = ruleOf(e);
  let c: unknown = e;
  for (let i = 0; rule === 'cause' && i < MAX_CAUSES; i++) {
    c = (c as Error).cause;
    if (c === undefined) break;
    const r = ruleOf(c);
    if (r !== undefined) rule = r;
    else if (!(c instanceof Error)) break;
  }
  return rule === EXIT_BAD_INPUT ? EXIT_BAD_INPUT : EXIT_FAILED;
}
