import { z } from 'zod';

/**
 * The pare.yaml schema. Strict: an unknown key is an error (a typo must not silently do nothing). Every field is
 * documented in the README's "pare.yaml" section; keep the two in step.
 */

const octalMode = z.union([
  z.string().regex(/^0?[0-7]{3,4}$/, 'want an octal mode such as "0755"'),
  z.number().int().min(0).max(0o7777),
]);

/** `uid[:gid]` as numbers or names (root, nonroot, nobody, or names from the image's /etc/passwd). */
const owner = z.union([z.string().min(1), z.number().int().min(0)]);

const fileEntry = z
  .strictObject({
    /** Host path (file or directory), relative to pare.yaml's directory. */
    src: z.string().min(1).optional(),
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
  );

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
  workdir: z.string().startsWith('/', 'want an absolute path').optional(),
  user: owner.optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  ports: z
    .array(
      z.union([
        z.number().int().min(1).max(65535),
        z.string().regex(/^[0-9]{1,5}(\/(tcp|udp|sctp))?$/, 'want PORT or PORT/tcp|udp|sctp'),
      ]),
    )
    .optional(),
  stopSignal: z
    .string()
    .regex(/^(SIG[A-Z0-9]+|[0-9]+)$/, 'want a signal name such as SIGTERM, or a number')
    .optional(),
  volumes: z.array(z.string().startsWith('/')).optional(),
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

export const configSchema = z.strictObject({
  name: z
    .string()
    .regex(
      /^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/,
      'want a lowercase image name such as "hello" or "team/app"',
    )
    .optional(),
  /** `minimal` adds /etc/passwd, /etc/group, /tmp and /home/nonroot; `scratch` adds nothing. Debian builds always assemble a full base. */
  base: z.enum(['minimal', 'scratch']).default('minimal'),
  platforms: z
    .array(
      z
        .string()
        .regex(/^linux\/[a-z0-9]+(\/v[0-9]+)?$/, 'want a platform such as linux/amd64 or linux/arm64'),
    )
    .min(1)
    .default(['linux/amd64']),
  debian: debianSection.optional(),
  packages: z.array(z.string().min(1)).optional(),
  shell: z.boolean().default(false),
  files: z.array(fileEntry).default([]),
  image: imageSection.default({}),
  slice: sliceSection.optional(),
  output: outputSection.default({}),
  /** SOURCE_DATE_EPOCH for this build (the environment variable wins). */
  epoch: z.number().int().min(0).optional(),
});

export type Config = z.infer<typeof configSchema>;
export type FileSpec = z.infer<typeof fileEntry>;
