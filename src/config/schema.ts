import { z } from 'zod';
import { ID_MAX } from '../accounts/index.ts';
import { EPOCH_WANT, isEpoch } from '../defaults.ts';

/**
 * The pare.yaml schema. Strict: an unknown key is an error (a typo must not silently do nothing). Every field is
 * documented in the README's "pare.yaml" section; keep the two in step.
 */

/**
 * Returns a schema for a field checked by `why`, which returns undefined for a good value and otherwise says what is
 * wanted (the message sees the input, so it can show the fix).
 */
/**
 * The presets `base:` may name; anything else names an image in any form every command accepts (transport/open.ts:
 * `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:TAG]`, `[docker://]HOST/REPO[:TAG|@DIGEST]` or a
 * bare path, relative to pare.yaml), parsed and opened by build/base-image.ts.
 */
export const BASE_PRESETS: readonly string[] = ['minimal', 'scratch'];

function checked<T>(why: (v: unknown) => string | undefined) {
  return z.custom<T>((v) => why(v) === undefined, { error: (iss) => why(iss.input) ?? 'invalid value' });
}

/**
 * A file mode as an octal string ("0755", "755", "4755"). A YAML number is refused, never reinterpreted: `mode: 755`
 * is the decimal 755, which is 0o1363 (world-writable and sticky).
 */
const octalMode = checked<string>((v) => {
  if (typeof v === 'string')
    return /^0?[0-7]{3,4}$/.test(v) ? undefined : 'want an octal mode such as "0755"';
  if (typeof v === 'number') {
    const text = Number.isInteger(v) && /^[0-7]{3,4}$/.test(String(v)) ? String(v) : v.toString(8);
    const fix = `"${text.padStart(4, '0')}"`;
    return `want an octal string such as "0755", not a YAML number (${v} is decimal, mode 0o${Number.isInteger(v) && v >= 0 ? v.toString(8) : '?'}); write it quoted: ${fix}`;
  }
  return 'want an octal mode as a string such as "0755"';
});

/** A user or group name as useradd(8) accepts it by default. */
const NAME = '[A-Za-z_][A-Za-z0-9_.-]{0,31}';
const ID_PART = new RegExp(`^(0|[1-9][0-9]{0,9}|${NAME})$`);

function idProblem(v: unknown, what: string): string | undefined {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0 || v > ID_MAX)
      return `want a ${what} as a whole number from 0 to ${ID_MAX}, or a name`;
    return undefined;
  }
  if (typeof v !== 'string') return `want a ${what}: a number or a name`;
  const parts = v.split(':');
  if (parts.length > 2 || parts.some((p) => !ID_PART.test(p)))
    return `want ${what === 'uid' ? 'uid[:gid]' : what}: each a decimal number (no sign, no leading zero) or a name, such as "app" or "1000:1000"`;
  if (parts.some((p) => /^\d+$/.test(p) && Number(p) > ID_MAX)) return `ids go up to ${ID_MAX}`;
  return undefined;
}

/** `uid[:gid]` as numbers or names (root, nonroot, nobody, `accounts:`, or names from the image's /etc/passwd). */
const owner = checked<string | number>((v) => idProblem(v, 'uid'));

/** An absolute path in the image without "." or ".." segments. */
const imagePath = checked<string>((v) => {
  if (typeof v !== 'string' || !v.startsWith('/')) return 'want an absolute path in the image such as "/app"';
  if (v.includes('\0')) return 'a path cannot contain NUL';
  if (v.split('/').some((s) => s === '.' || s === '..')) return 'want a path without "." or ".." segments';
  return undefined;
});

const accountId = checked<number>((v) =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= ID_MAX
    ? undefined
    : `want a whole number from 0 to ${ID_MAX}`,
);
const accountName = checked<string>((v) =>
  typeof v === 'string' && new RegExp(`^${NAME}$`).test(v)
    ? undefined
    : 'want a name: a letter or "_", then letters, digits, "_", "." or "-" (at most 32)',
);

/** Users and groups added to /etc/passwd and /etc/group (build/accounts.ts checks them against the base's). */
const accountsSection = z.strictObject({
  groups: z
    .array(
      z.strictObject({
        name: accountName,
        gid: accountId,
        /** Supplementary members: user names. */
        members: z.array(accountName).optional(),
      }),
    )
    .default([]),
  users: z
    .array(
      z.strictObject({
        name: accountName,
        uid: accountId,
        /** The primary group's id: a group of accounts.groups or of the base. */
        gid: accountId,
        gecos: z
          .string()
          .regex(/^[^:\n]*$/, 'the GECOS field cannot contain ":" or a newline')
          .optional(),
        /** Default /home/NAME, created 0700 and owned by the user when the base does not have it. */
        home: imagePath.optional(),
        /** Default /sbin/nologin. */
        shell: imagePath.optional(),
      }),
    )
    .default([]),
});

const port = checked<number | string>((v) => {
  const want = 'want a port from 1 to 65535, as PORT or "PORT/tcp|udp|sctp"';
  if (typeof v === 'number') return Number.isInteger(v) && v >= 1 && v <= 65535 ? undefined : want;
  if (typeof v !== 'string') return want;
  const m = /^([1-9][0-9]{0,4})(\/(tcp|udp|sctp))?$/.exec(v);
  return m && Number(m[1]) <= 65535 ? undefined : want;
});

export { EPOCH_MAX } from '../defaults.ts';

const platform = z
  .string()
  .regex(/^linux\/[a-z0-9]+(\/v[0-9]+)?$/, 'want a platform such as linux/amd64 or linux/arm64');

/** The placeholders `src:` may hold, expanded per platform with OCI names (build/files.ts). */
export const SRC_PLACEHOLDERS = ['arch', 'os', 'variant'] as const;

const hostSource = checked<string>((v) => {
  if (typeof v !== 'string' || v === '') return 'want a host path relative to pare.yaml';
  for (const m of v.matchAll(/\{([^}]*)\}?/g))
    if (!(SRC_PLACEHOLDERS as readonly string[]).includes(m[1]!) || !m[0].endsWith('}'))
      return `unknown placeholder ${JSON.stringify(m[0])}; src can hold {arch}, {os} and {variant}`;
  return undefined;
});

const fileEntry = z
  .strictObject({
    /** Host path (file or directory), relative to pare.yaml's directory; {arch}, {os}, {variant} per platform. */
    src: hostSource.optional(),
    /** Only for these platforms (each one of the top-level platforms). */
    platforms: z.array(platform).min(1).optional(),
    /** Inline file content. */
    content: z.string().optional(),
    /** Make a symlink with this target. */
    symlink: z.string().min(1).optional(),
    /** Make an (empty) directory. */
    dir: z.boolean().optional(),
    /** Absolute path in the image. */
    dest: z.string().min(1),
    mode: octalMode.optional(),
    owner: owner.optional(),
  })
  .refine(
    (f) => [f.src, f.content, f.symlink, f.dir].filter((x) => x !== undefined && x !== false).length === 1,
    {
      message: 'give exactly one of src, content, symlink or dir: true',
    },
  )
  // A symlink's mode is always 0777 (Linux ignores it): a mode given for one would silently do nothing.
  .refine((f) => f.symlink === undefined || f.mode === undefined, {
    message: 'a symlink has no mode of its own (it is always 0777); remove mode',
    path: ['mode'],
  });

const stringOrList = z.union([z.string().min(1), z.array(z.string())]);

const imageSection = z.strictObject({
  entrypoint: stringOrList.optional(),
  cmd: stringOrList.optional(),
  env: z
    .record(
      z.string().regex(/^[^=\0]+$/, 'an environment name cannot contain "="'),
      z.union([z.string(), z.number(), z.boolean()]),
    )
    .optional(),
  workdir: imagePath.optional(),
  user: owner.optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  ports: z.array(port).optional(),
  stopSignal: checked<string>((v) => {
    const want = 'want a signal name such as SIGTERM, or a number from 1 to 64 as a string ("15")';
    if (typeof v !== 'string') return want;
    const n = /^[1-9][0-9]?$/.test(v) ? Number(v) : undefined;
    return /^SIG[A-Z][A-Z0-9+-]*$/.test(v) || (n !== undefined && n <= 64) ? undefined : want;
  }).optional(),
  volumes: z.array(imagePath).optional(),
});

const debianSection = z.strictObject({
  suite: z.string().min(1).default('bookworm'),
  components: z.array(z.string()).default(['main']),
  security: z.boolean().default(true),
  updates: z.boolean().default(true),
  mirror: z.string().url().optional(),
  securityMirror: z.string().url().optional(),
  keyring: z.string().optional(),
  snapshot: z
    .string()
    .regex(/^[0-9]{8}T[0-9]{6}Z$/, 'want a snapshot timestamp such as 20250101T000000Z')
    .optional(),
  snapshotMirror: z.string().url().optional(),
});

const sliceSection = z.union([
  z.enum(['auto', 'none']),
  z.strictObject({
    mode: z.enum(['auto', 'none']).default('auto'),
    executables: z.array(z.string()).optional(),
    keep: z.array(z.string()).optional(),
    /** Re-slice an image base's whole tree into one layer of pare's (its layers and their digests are not kept). */
    base: z.boolean().optional(),
    /** Globs removed even when something needs them (wins over every rule; why-kept shows the drop). */
    drop: z.array(z.string().min(1)).optional(),
    probe: z.array(stringOrList).optional(),
    locales: z.array(z.string()).optional(),
  }),
]);

const outputSection = z.strictObject({
  /** OCI layout directory (relative to pare.yaml). */
  layout: z.string().optional(),
  tag: z
    .string()
    .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/, 'want a tag: letters, digits, "_", "." or "-"')
    .optional(),
  /** Also write a single-file archive (OCI layout + docker-archive in one tar). */
  tar: z.string().optional(),
  compression: z.enum(['gzip', 'zstd']).optional(),
});

/** A variant's name: it becomes the tag suffix (`TAG-NAME`), so letters, digits, ".", "_" and "-". */
export const VARIANT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * A variant (Chainguard's `-dev`, distroless `:debug`): a second image built in the same run from the main image's
 * inputs plus these (build/build.ts). Only additions and run-config overrides: what the main image is made of
 * (base, platforms, debian, slice, accounts) cannot differ, so both come from one lock.
 */
const variantSection = z.strictObject({
  /** More packages, resolved into the same pare.lock and kept whole (every file, plus its closure). */
  packages: z.array(z.string().min(1)).min(1).optional(),
  /** More files, after the main image's (same rules). */
  files: z.array(fileEntry).optional(),
  /** Overrides the main image's shell:. */
  shell: z.boolean().optional(),
  /** Overrides the main image's image: field by field (env, labels and annotations by key). */
  image: imageSection.optional(),
});

export const configSchema = z.strictObject({
  name: z
    .string()
    .regex(
      /^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/,
      'want a lowercase image name such as "hello" or "team/app"',
    )
    .optional(),
  /**
   * `minimal` adds /etc/passwd, /etc/group, /tmp and /home/nonroot; `scratch` adds nothing (Debian builds always
   * assemble a full base). Or an existing image, `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` or
   * `docker://HOST/REPO[:TAG|@DIGEST]`, pinned by digest in pare.lock (build/base-image.ts).
   */
  base: checked<string>((v) =>
    typeof v === 'string' && v.trim() === v && v !== ''
      ? undefined
      : 'want minimal, scratch, or an image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:TAG], [docker://]HOST/REPO[:TAG|@DIGEST] or a path',
  ).default('minimal'),
  platforms: z.array(platform).min(1).default(['linux/amd64']),
  /**
   * A registry repository (HOST/REPO) the build shares its verified .debs through, as `pare build --cache` (which,
   * and PARE_CACHE, win over it).
   */
  cache: z.string().min(1).optional(),
  debian: debianSection.optional(),
  packages: z.array(z.string().min(1)).optional(),
  shell: z.boolean().default(false),
  accounts: accountsSection.optional(),
  files: z.array(fileEntry).default([]),
  image: imageSection.default({}),
  slice: sliceSection.optional(),
  output: outputSection.default({}),
  /** Variants by name, each built as a second image tagged `TAG-NAME`. */
  variants: z
    .record(
      z
        .string()
        .regex(
          VARIANT_NAME,
          'want a variant name: lowercase letters, digits, ".", "_" or "-" (it is a tag suffix)',
        ),
      variantSection,
    )
    .optional(),
  /** SOURCE_DATE_EPOCH for this build (the environment variable wins). */
  epoch: checked<number>((v) => (isEpoch(v) ? undefined : EPOCH_WANT)).optional(),
});

export type Config = z.infer<typeof configSchema>;
export type FileSpec = z.infer<typeof fileEntry>;
export type AccountsSpec = z.infer<typeof accountsSection>;
export type VariantSpec = z.infer<typeof variantSection>;
