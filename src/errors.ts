/**
 * The error hierarchy of pare. Each domain has one class with a closed union of SCREAMING_SNAKE codes, structured
 * context fields and a `cause` chain (after sigstore-js and ky). Messages are lowercase and say
 * "cannot <verb> <object>: <reason>" with the concrete value quoted. Only `cli/` turns errors into exit codes.
 */

/** Base class: a stable machine-readable `code` plus the usual message and cause. */
export class BaseError<C extends string = string> extends Error {
  readonly code: C;
  override readonly name: string;
  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export type UsageErrorCode =
  | 'USAGE'
  | 'CONFIG_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'INPUT_NOT_FOUND'
  | 'INPUT_INVALID';
/** Bad input from the user (arguments, pare.yaml, source files). The CLI maps these to exit code 2. */
export class UsageError extends BaseError<UsageErrorCode> {
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly column: number | undefined;
  constructor(
    code: UsageErrorCode,
    message: string,
    options?: { cause?: unknown; file?: string; line?: number; column?: number },
  ) {
    super(code, message, options);
    this.file = options?.file;
    this.line = options?.line;
    this.column = options?.column;
  }
}

export type DigestErrorCode = 'DIGEST_INVALID' | 'DIGEST_MISMATCH' | 'DIGEST_UNSUPPORTED' | 'SIZE_MISMATCH';
/** A malformed digest string, or content whose digest or size is not what was promised. */
export class DigestError extends BaseError<DigestErrorCode> {
  readonly expected: string | undefined;
  readonly actual: string | undefined;
  constructor(
    code: DigestErrorCode,
    message: string,
    options?: { cause?: unknown; expected?: string; actual?: string },
  ) {
    super(code, message, options);
    this.expected = options?.expected;
    this.actual = options?.actual;
  }
}

export type TreeErrorCode =
  | 'TREE_PATH_INVALID'
  | 'TREE_PATH_ESCAPE'
  | 'TREE_CONFLICT'
  | 'TREE_NOT_FOUND'
  | 'TREE_NOT_DIR'
  | 'TREE_SYMLINK_LOOP'
  | 'TREE_HARDLINK_INVALID';
/** A path or entry that cannot be placed in an FsTree. */
export class TreeError extends BaseError<TreeErrorCode> {
  readonly path: string | undefined;
  constructor(code: TreeErrorCode, message: string, options?: { cause?: unknown; path?: string }) {
    super(code, message, options);
    this.path = options?.path;
  }
}

export type TarErrorCode =
  | 'TAR_TRUNCATED'
  | 'TAR_CHECKSUM'
  | 'TAR_HEADER_INVALID'
  | 'TAR_PAX_INVALID'
  | 'TAR_UNSUPPORTED'
  | 'TAR_UNSAFE_PATH'
  | 'TAR_LIMIT';
/** A tar stream that is malformed, truncated, hostile (path escapes) or over a named limit. */
export class TarError extends BaseError<TarErrorCode> {
  readonly offset: number | undefined;
  readonly path: string | undefined;
  constructor(
    code: TarErrorCode,
    message: string,
    options?: { cause?: unknown; offset?: number; path?: string },
  ) {
    super(code, message, options);
    this.offset = options?.offset;
    this.path = options?.path;
  }
}

export type OciErrorCode =
  | 'OCI_MANIFEST_INVALID'
  | 'OCI_CONFIG_INVALID'
  | 'OCI_INDEX_INVALID'
  | 'OCI_MEDIA_TYPE'
  | 'OCI_PLATFORM_NOT_FOUND'
  | 'OCI_PLATFORM_INVALID'
  | 'OCI_VALIDATION'
  | 'OCI_LAYER_INVALID'
  | 'OCI_LIMIT';
/** An image, manifest, config or index that does not follow the OCI image-spec. */
export class OciError extends BaseError<OciErrorCode> {
  readonly digest: string | undefined;
  constructor(code: OciErrorCode, message: string, options?: { cause?: unknown; digest?: string }) {
    super(code, message, options);
    this.digest = options?.digest;
  }
}

export type LayoutErrorCode =
  | 'LAYOUT_NOT_FOUND'
  | 'LAYOUT_INVALID'
  | 'LAYOUT_BLOB_MISSING'
  | 'LAYOUT_REF_NOT_FOUND'
  | 'LAYOUT_ARCHIVE_INVALID'
  | 'LAYOUT_VERSION'
  | 'LAYOUT_LOCKED';
/** An OCI image layout, oci-archive or docker-archive that is missing, corrupt or lacks what was asked for. */
export class LayoutError extends BaseError<LayoutErrorCode> {
  readonly path: string | undefined;
  constructor(code: LayoutErrorCode, message: string, options?: { cause?: unknown; path?: string }) {
    super(code, message, options);
    this.path = options?.path;
  }
}

export type ControlErrorCode = 'CONTROL_SYNTAX' | 'CONTROL_DUPLICATE_FIELD';
/** A deb822 control file (Packages, Release, dpkg status, .sources) that does not parse; `line` is 1-based. */
export class ControlError extends BaseError<ControlErrorCode> {
  readonly line: number | undefined;
  readonly source: string | undefined;
  constructor(
    code: ControlErrorCode,
    message: string,
    options?: { cause?: unknown; line?: number; source?: string },
  ) {
    super(code, message, options);
    this.line = options?.line;
    this.source = options?.source;
  }
}

export type DebianErrorCode =
  | 'DEBIAN_VERSION_INVALID'
  | 'DEBIAN_RELATION_INVALID'
  | 'DEBIAN_PACKAGE_NOT_FOUND'
  | 'DEBIAN_UNSATISFIABLE'
  | 'DEBIAN_CONFLICT'
  | 'DEBIAN_DEB_INVALID'
  | 'DEBIAN_DEB_UNSAFE'
  | 'DEBIAN_DEB_LIMIT'
  | 'DEBIAN_ASSEMBLE_CONFLICT'
  // archive access (mirror, keys, secure-apt chain, cache, lockfile)
  | 'DEBIAN_NO_MIRROR'
  | 'DEBIAN_NO_KEYRING'
  | 'DEBIAN_SOURCES_INVALID'
  | 'DEBIAN_HTTP'
  | 'DEBIAN_NOT_FOUND'
  | 'DEBIAN_SIGNATURE'
  | 'DEBIAN_EXPIRED'
  | 'DEBIAN_RELEASE_INVALID'
  | 'DEBIAN_SUITE_MISMATCH'
  | 'DEBIAN_HASH_MISMATCH'
  | 'DEBIAN_INDEX_INVALID'
  | 'DEBIAN_LOCK_INVALID'
  | 'DEBIAN_LOCK_MISMATCH'
  | 'DEBIAN_LOCK_STALE';
/**
 * A Debian version, relation, package set, .deb or assembled root that is malformed, unsatisfiable or unsafe.
 * `package` names the package concerned, `path` the .deb member or tree path, `chain` the dependency chain,
 * `url` the archive URL that was fetched (archive access codes).
 */
export class DebianError extends BaseError<DebianErrorCode> {
  readonly package: string | undefined;
  readonly path: string | undefined;
  readonly chain: readonly string[] | undefined;
  readonly url: string | undefined;
  constructor(
    code: DebianErrorCode,
    message: string,
    options?: { cause?: unknown; package?: string; path?: string; chain?: readonly string[]; url?: string },
  ) {
    super(code, message, options);
    this.package = options?.package;
    this.path = options?.path;
    this.chain = options?.chain;
    this.url = options?.url;
  }
}

/** True when `e` is a pare error with one of the given codes (or any pare error when none is given). */
export function isPareError(e: unknown, ...codes: string[]): e is BaseError {
  return e instanceof BaseError && (codes.length === 0 || codes.includes(e.code));
}

export type ElfErrorCode =
  | 'ELF_NOT_ELF'
  | 'ELF_TRUNCATED'
  | 'ELF_UNSUPPORTED'
  | 'ELF_HEADER_INVALID'
  | 'ELF_OFFSET_INVALID'
  | 'ELF_STRING_INVALID'
  | 'ELF_NOTE_INVALID'
  | 'ELF_VERSION_INVALID'
  | 'ELF_LIMIT'
  | 'ELF_CACHE_INVALID'
  | 'ELF_IO';
/** An ELF file (or ld.so.cache / loader path) that is malformed, truncated, over a named limit or unreadable. */
export class ElfError extends BaseError<ElfErrorCode> {
  readonly file: string | undefined;
  readonly offset: number | undefined;
  readonly field: string | undefined;
  constructor(
    code: ElfErrorCode,
    message: string,
    options?: { cause?: unknown; file?: string; offset?: number; field?: string },
  ) {
    super(code, message, options);
    this.file = options?.file;
    this.offset = options?.offset;
    this.field = options?.field;
  }
}

export type AttestErrorCode =
  | 'ATTEST_KEY_INVALID'
  | 'ATTEST_KEY_PASSWORD'
  | 'ATTEST_KEY_UNSUPPORTED'
  | 'ATTEST_KEY_EXISTS'
  | 'ATTEST_ENVELOPE_INVALID'
  | 'ATTEST_SIGNATURE_INVALID'
  | 'ATTEST_PAYLOAD_INVALID'
  | 'ATTEST_SUBJECT_MISMATCH'
  | 'ATTEST_NOT_FOUND'
  | 'ATTEST_BUNDLE_INVALID';
/** A key, signature, DSSE envelope, sigstore bundle or attestation that cannot be loaded, made or verified. */
export class AttestError extends BaseError<AttestErrorCode> {
  readonly path: string | undefined;
  readonly digest: string | undefined;
  constructor(
    code: AttestErrorCode,
    message: string,
    options?: { cause?: unknown; path?: string; digest?: string },
  ) {
    super(code, message, options);
    this.path = options?.path;
    this.digest = options?.digest;
  }
}

export type SbomErrorCode = 'SBOM_DPKG_INVALID' | 'SBOM_OS_RELEASE_INVALID' | 'SBOM_INVALID';
/** Package metadata in an image that cannot be read into an SBOM, or an SBOM that fails its schema. */
export class SbomError extends BaseError<SbomErrorCode> {
  readonly path: string | undefined;
  constructor(code: SbomErrorCode, message: string, options?: { cause?: unknown; path?: string }) {
    super(code, message, options);
    this.path = options?.path;
  }
}

export type RegistryErrorCode =
  | 'REGISTRY_AUTH'
  | 'REGISTRY_CREDENTIALS'
  | 'REGISTRY_DIGEST'
  | 'REGISTRY_HTTP'
  | 'REGISTRY_NETWORK'
  | 'REGISTRY_NOT_FOUND'
  | 'REGISTRY_PROTOCOL'
  | 'REGISTRY_REFERENCE'
  | 'REGISTRY_TIMEOUT'
  | 'REGISTRY_TLS'
  | 'REGISTRY_UNSUPPORTED';
/** One entry of a distribution-spec error body (`{"errors":[{"code","message","detail"}]}`). */
export interface RegistryDiagnostic {
  readonly code: string;
  readonly message: string;
  readonly detail?: unknown;
}
/**
 * A registry that refused, failed or answered outside the distribution spec, a bad image reference, or unusable
 * credentials. `host`, `repository` and `status` name where it happened; `diagnostics` carries the registry's own
 * error codes.
 */
export class RegistryError extends BaseError<RegistryErrorCode> {
  readonly host: string | undefined;
  readonly repository: string | undefined;
  readonly status: number | undefined;
  readonly request: string | undefined;
  readonly diagnostics: readonly RegistryDiagnostic[];
  constructor(
    code: RegistryErrorCode,
    message: string,
    options?: {
      cause?: unknown;
      host?: string;
      repository?: string;
      status?: number;
      request?: string;
      diagnostics?: readonly RegistryDiagnostic[];
    },
  ) {
    super(code, message, options);
    this.host = options?.host;
    this.repository = options?.repository;
    this.status = options?.status;
    this.request = options?.request;
    this.diagnostics = options?.diagnostics ?? [];
  }
}

/** True when `e` is a RegistryError (with one of the given codes, when any are given). */
export function isRegistryError(e: unknown, ...codes: RegistryErrorCode[]): e is RegistryError {
  return e instanceof RegistryError && (codes.length === 0 || codes.includes(e.code));
}

/**
 * A failure of pare's HTTP layer (src/http): on one connection of its own reader (wire.ts: cut before the response or
 * in its body, silent past the timeout, not HTTP/1.1, a request pare refuses to send, a proxy that did not open the
 * tunnel), or of the transport (no response in time, a redirect refused or looping, an unreadable CA file, a bad
 * proxy URL). `host` names the server (or proxy); the caller (registry, Debian mirror) adds what was asked
 * for and decides whether to retry or resume.
 */
export type HttpErrorCode =
  | 'HTTP_CONNECTION_FAILED'
  | 'HTTP_CONNECTION_CUT'
  | 'HTTP_STALLED'
  | 'HTTP_PROTOCOL'
  | 'HTTP_ABORTED'
  | 'HTTP_REQUEST_INVALID'
  | 'HTTP_PROXY_FAILED'
  | 'HTTP_PROXY_INVALID'
  | 'HTTP_CA_FILE'
  | 'HTTP_TIMEOUT'
  | 'HTTP_BODY_UNREAD'
  | 'HTTP_REDIRECT_REFUSED'
  | 'HTTP_TOO_MANY_REDIRECTS';

export class HttpError extends BaseError<HttpErrorCode> {
  readonly host: string | undefined;
  constructor(code: HttpErrorCode, message: string, options?: { cause?: unknown; host?: string }) {
    super(code, message, options);
    this.host = options?.host;
  }
}

export type RunErrorCode =
  | 'RUN_BWRAP_MISSING'
  | 'RUN_USERNS_DISABLED'
  | 'RUN_ARCH_UNSUPPORTED'
  | 'RUN_IMAGE_UNSUPPORTED'
  | 'RUN_NO_COMMAND'
  | 'RUN_USER_NOT_FOUND'
  | 'RUN_USER_INVALID'
  | 'RUN_VOLUME_INVALID'
  | 'RUN_ENV_INVALID'
  | 'RUN_WORKDIR_INVALID'
  | 'RUN_SIZE_INVALID'
  | 'RUN_UNPACK_FAILED'
  | 'RUN_SANDBOX_FAILED'
  | 'RUN_PUBLISH_INVALID'
  | 'RUN_SECRET_INVALID'
  | 'RUN_NETWORK_MISSING'
  | 'RUN_NETWORK_FAILED'
  | 'RUN_REFERENCE_INVALID';
/**
 * A sandboxed run that cannot start: bubblewrap or user namespaces unavailable (`hint` says how to enable them), an
 * image that cannot be unpacked or has nothing to run, a bad `--user`/`-v`/`-e`.
 */
export class RunError extends BaseError<RunErrorCode> {
  readonly path: string | undefined;
  readonly hint: string | undefined;
  constructor(
    code: RunErrorCode,
    message: string,
    options?: { cause?: unknown; path?: string; hint?: string },
  ) {
    // The hint is part of the message too: the CLI prints messages, and a user who cannot run must see the fix.
    super(code, options?.hint ? `${message}; ${options.hint}` : message, options);
    this.path = options?.path;
    this.hint = options?.hint;
  }
}

/** True when `e` is a RunError (with one of the given codes, when any are given). */
export function isRunError(e: unknown, ...codes: RunErrorCode[]): e is RunError {
  return e instanceof RunError && (codes.length === 0 || codes.includes(e.code));
}

export type SliceErrorCode =
  | 'SLICE_ROOT_NOT_FOUND'
  | 'SLICE_SHELL_REQUIRED'
  | 'SLICE_OPTIONS_INVALID'
  | 'SLICE_PROBE_UNAVAILABLE'
  | 'SLICE_PROBE_FAILED'
  | 'SLICE_SLIM_BROKEN'
  | 'SLICE_REPORT_INVALID';
/**
 * Slicing that cannot give a working image: a root (entrypoint, executable, keep glob) that is not in the tree, a
 * script whose interpreter is a shell while `shell: false`, a probe command that fails, a slimmed image that fails a
 * probe its source passed (`pare slim`), a malformed slice report.
 */
export class SliceError extends BaseError<SliceErrorCode> {
  readonly path: string | undefined;
  constructor(code: SliceErrorCode, message: string, options?: { cause?: unknown; path?: string }) {
    super(code, message, options);
    this.path = options?.path;
  }
}

export type BuildErrorCode = 'BUILD_NOT_RUNNABLE';
/**
 * A build whose result could not run: an ELF file for another machine than the platform, a loader or library ld.so
 * would not find, an entrypoint that is missing, not executable or whose `#!` interpreter is missing. Exit code 1.
 */
export class BuildError extends BaseError<BuildErrorCode> {
  readonly platform: string | undefined;
  constructor(code: BuildErrorCode, message: string, options?: { cause?: unknown; platform?: string }) {
    super(code, message, options);
    this.platform = options?.platform;
  }
}
