import { stringify } from 'yaml';
import type { Digest } from '../digest/index.ts';
import { RunError } from '../errors.ts';
import type { ImageConfig } from '../oci/model.ts';
import { formatReference, parseReference, withDigest } from '../registry/index.ts';
import { formatPublish, type PortMapping } from './network.ts';
import type { Secret } from './sandbox.ts';
import { parseEnvVar, type Volume } from './spec.ts';
import { DEFAULT_GID, DEFAULT_UID, type ExecUser } from './user.ts';

/**
 * The hardened settings of `pare run`, spelled for other runtimes: a `docker run` / `podman run` command line, or a
 * Kubernetes Pod with a restrictive securityContext. Derived from the image config (user, exposed ports, volumes) and
 * the same overrides `pare run` takes. Pure: returns text and warnings, prints nothing.
 *
 * The Pod follows the "restricted" Pod Security Standard
 * (https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted): runAsNonRoot, no privilege
 * escalation, capabilities drop ALL, seccompProfile RuntimeDefault; plus a read-only root with an in-memory /tmp.
 */

export type HardenedPrintTarget = 'docker' | 'podman' | 'kubernetes';

export interface PrintOptions {
  /** The image reference the other runtime pulls: a registry reference (see runnableReference). */
  readonly reference: string;
  readonly config: ImageConfig | undefined;
  /** The resolved user (uid 0 is replaced by 65532:65532 with a warning: the output never runs as root). */
  readonly user: ExecUser;
  readonly entrypoint?: string;
  readonly cmd?: readonly string[];
  readonly env?: readonly string[];
  readonly workdir?: string;
  readonly hostname?: string;
  readonly volumes?: readonly Volume[];
  /** Network access (docker/podman: without it and without ports, `--network=none`). */
  readonly net?: boolean;
  /** `-p` mappings; default: each of the image's ExposedPorts on 127.0.0.1, the same port on both sides. */
  readonly publish?: readonly PortMapping[];
  /** `--secret`s: podman secrets, docker read-only binds, Kubernetes secret volumes, all at /run/secrets/NAME. */
  readonly secrets?: readonly Secret[];
  /** Size of the /tmp tmpfs in bytes (default 64 MiB, as in the sandbox). */
  readonly tmpSize?: number;
}

export interface PrintResult {
  readonly text: string;
  readonly warnings: readonly string[];
}

const TMP_SIZE = 64 * 1024 * 1024;

/** Returns `bytes` in the largest binary unit that divides it: [count, unit index 0..3 for B, Ki, Mi, Gi]. */
function binaryUnits(bytes: number): [number, number] {
  let n = bytes;
  let u = 0;
  while (u < 3 && n % 1024 === 0 && n > 0) {
    n /= 1024;
    u++;
  }
  return [n, u];
}

function nonRoot(user: ExecUser, warnings: string[]): { uid: number; gid: number } {
  if (user.uid !== 0) return { uid: user.uid, gid: user.gid };
  warnings.push(
    `the image runs as root (uid 0); the hardened settings use ${DEFAULT_UID}:${DEFAULT_GID} instead`,
  );
  return { uid: DEFAULT_UID, gid: DEFAULT_GID };
}

/** Exposed ports as `[port, protocol]` (`8080/tcp` → [8080, 'TCP']), sorted; malformed keys are skipped with a warning. */
function exposedPorts(
  config: ImageConfig | undefined,
  warnings: string[],
): [number, 'TCP' | 'UDP' | 'SCTP'][] {
  const out: [number, 'TCP' | 'UDP' | 'SCTP'][] = [];
  for (const key of Object.keys(config?.config?.ExposedPorts ?? {}).sort()) {
    const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(key);
    const port = m ? Number(m[1]) : 0;
    if (!m || port < 1 || port > 65535) {
      warnings.push(`skipped exposed port ${JSON.stringify(key)}: want PORT[/tcp|udp|sctp]`);
      continue;
    }
    out.push([port, (m[2] ?? 'tcp').toUpperCase() as 'TCP' | 'UDP' | 'SCTP']);
  }
  return out;
}

/** Quotes `s` for a POSIX shell (unchanged when it needs no quoting). */
export function shellQuote(s: string): string {
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Returns the `docker run` (or `podman run`) arguments after `run`, one flag group per element. */
export function dockerFlags(
  o: PrintOptions,
  warnings: string[] = [],
  runtime: 'docker' | 'podman' = 'docker',
): string[][] {
  const { uid, gid } = nonRoot(o.user, warnings);
  const [n, u] = binaryUnits(o.tmpSize ?? TMP_SIZE);
  const tmpSize = `${n}${['', 'k', 'm', 'g'][u]}`;
  const f: string[][] = [
    ['--rm'],
    ['--read-only'],
    ['--cap-drop=ALL'],
    ['--security-opt=no-new-privileges'],
    ['--user', `${uid}:${gid}`],
    ['--tmpfs', `/tmp:rw,noexec,nosuid,nodev,size=${tmpSize}`],
  ];
  const ports =
    o.publish && o.publish.length > 0
      ? o.publish.map(formatPublish)
      : exposedPorts(o.config, warnings)
          .filter(([, proto]) => proto !== 'SCTP')
          .map(([port, proto]) => `127.0.0.1:${port}:${port}/${proto.toLowerCase()}`);
  if (!o.net && ports.length === 0) f.push(['--network=none']);
  for (const p of ports) f.push(['--publish', p]);
  if (o.hostname) f.push(['--hostname', o.hostname]);
  if (o.workdir) f.push(['--workdir', o.workdir]);
  for (const e of o.env ?? []) f.push(['--env', e]);
  for (const v of o.volumes ?? []) f.push(['--volume', `${v.host}:${v.container}${v.readOnly ? ':ro' : ''}`]);
  for (const sec of o.secrets ?? []) {
    // podman: the secret created beforehand (printHardened prints `podman secret create`), mounted at
    // /run/secrets/NAME for the run user; docker run has no secrets outside swarm, so a read-only bind there.
    if (runtime === 'podman') f.push(['--secret', `${sec.name},type=mount,uid=${uid},gid=${gid},mode=0400`]);
    else f.push(['--mount', `type=bind,source=${sec.host},target=/run/secrets/${sec.name},readonly`]);
  }
  if (o.entrypoint !== undefined) f.push(['--entrypoint', o.entrypoint]);
  f.push([o.reference, ...(o.cmd ?? [])]);
  return f;
}

/** Returns a DNS-1123 label for the Pod and container name, from the last path component of the reference. */
export function podName(reference: string): string {
  let s = reference.replace(/^[a-z-]+:(?=\/|\.)/, '').replace(/@.*$/, '');
  s = s.slice(s.lastIndexOf('/') + 1).replace(/:.*$/, '');
  s = s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return /^[a-z0-9]/.test(s) ? s : 'app';
}

function volumeName(path: string, used: Set<string>): string {
  const base = `vol${path.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`.replace(/-+$/, '').slice(0, 55);
  let name = base;
  for (let i = 2; used.has(name); i++) name = `${base}-${i}`;
  used.add(name);
  return name;
}

/** Returns the Pod object (the JSON form of the YAML `--print kubernetes` emits). */
export function kubernetesPod(o: PrintOptions, warnings: string[] = []): Record<string, unknown> {
  const { uid, gid } = nonRoot(o.user, warnings);
  const name = podName(o.reference);
  const used = new Set<string>(['tmp']);
  const mounts: Record<string, unknown>[] = [{ name: 'tmp', mountPath: '/tmp' }];
  const [n, u] = binaryUnits(o.tmpSize ?? TMP_SIZE);
  const sizeLimit = `${n}${['', 'Ki', 'Mi', 'Gi'][u]}`;
  const volumes: Record<string, unknown>[] = [{ name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit } }];
  // The image's VOLUMEs are writable in docker even with --read-only; give each an emptyDir so the app keeps working.
  for (const path of Object.keys(o.config?.config?.Volumes ?? {}).sort()) {
    if (path === '/tmp' || !path.startsWith('/')) continue;
    const v = volumeName(path, used);
    mounts.push({ name: v, mountPath: path });
    volumes.push({ name: v, emptyDir: {} });
  }
  for (const sec of o.secrets ?? []) {
    const v = volumeName(`/secret-${sec.name}`, used);
    mounts.push({ name: v, mountPath: `/run/secrets/${sec.name}`, subPath: sec.name, readOnly: true });
    volumes.push({
      name: v,
      secret: {
        secretName: kubernetesSecretName(sec.name),
        items: [{ key: sec.name, path: sec.name }],
        defaultMode: 0o400,
      },
    });
  }
  for (const v of o.volumes ?? []) {
    warnings.push(
      `volume ${v.host}:${v.container} is not carried into the Pod (a hostPath volume would weaken it); mount a PersistentVolumeClaim there instead`,
    );
  }
  const container: Record<string, unknown> = { name, image: o.reference };
  if (o.entrypoint !== undefined) container.command = o.entrypoint === '' ? [] : [o.entrypoint];
  if (o.cmd && o.cmd.length > 0) container.args = [...o.cmd];
  if (o.workdir) container.workingDir = o.workdir;
  const env = (o.env ?? []).filter((e) => e.includes('=')).map((e) => parseEnvVar(e, '-e'));
  if (env.length > 0) container.env = env.map(([k, v]) => ({ name: k, value: v }));
  const ports =
    o.publish && o.publish.length > 0
      ? [...new Map(o.publish.map((m) => [`${m.containerPort}/${m.protocol}`, m])).values()].map(
          (m) => [m.containerPort, m.protocol.toUpperCase()] as const,
        )
      : exposedPorts(o.config, warnings);
  if (ports.length > 0) container.ports = ports.map(([p, proto]) => ({ containerPort: p, protocol: proto }));
  container.securityContext = {
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: gid,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
  container.volumeMounts = mounts;
  const spec: Record<string, unknown> = {
    automountServiceAccountToken: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: uid,
      runAsGroup: gid,
      fsGroup: gid,
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
  if (o.hostname) spec.hostname = o.hostname;
  spec.containers = [container];
  spec.volumes = volumes;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { 'app.kubernetes.io/name': name } },
    spec,
  };
}

/** A Kubernetes Secret name (a DNS-1123 subdomain) for a podman secret name: lowercase, "_" becomes "-". */
export function kubernetesSecretName(name: string): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return s === '' ? 'secret' : s;
}

/** Returns the hardened settings for `target` as text: a shell command line, or Pod YAML. */
export function printHardened(target: HardenedPrintTarget, o: PrintOptions): PrintResult {
  const warnings: string[] = [];
  const secrets = o.secrets ?? [];
  if (target === 'kubernetes') {
    // The secret's content is not printed: create it from the file, as podman does below.
    const create = secrets.map(
      (s) =>
        `# kubectl create secret generic ${kubernetesSecretName(s.name)} --from-file=${shellQuote(`${s.name}=${s.host}`)}\n`,
    );
    const text = create.join('') + stringify(kubernetesPod(o, warnings), { lineWidth: 0 });
    return { text, warnings };
  }
  const create =
    target === 'podman'
      ? secrets.map((s) => `podman secret create ${shellQuote(s.name)} ${shellQuote(s.host)}\n`)
      : [];
  const groups = dockerFlags(o, warnings, target).map((g) => g.map(shellQuote).join(' '));
  return { text: `${create.join('')}${target} run ${groups.join(' \\\n  ')}\n`, warnings };
}

/**
 * The reference docker, podman or Kubernetes pull for `image` (the `pare run` argument): `explicit` (`--image REF`,
 * where the image was pushed) when given, else `image` itself when it names a registry image (`docker://` dropped).
 * Pinned to `digest` (the image's manifest digest, which a push keeps) unless it has one. A local image (`oci:`,
 * an archive, a directory; `local` when the caller opened it from disk) has no name another runtime can pull: RUN_REFERENCE_INVALID says to push it and give
 * --image.
 */
export function runnableReference(
  image: string,
  explicit: string | undefined,
  digest: Digest | undefined,
  options: { local?: boolean } = {},
): string {
  const candidate = explicit ?? (image.startsWith('docker://') ? image.slice('docker://'.length) : image);
  const local =
    explicit === undefined &&
    (options.local === true || /^(oci|oci-archive|docker-archive|dir|containers-storage):/.test(image));
  let ref: ReturnType<typeof parseReference> | undefined;
  if (!local) {
    try {
      ref = parseReference(candidate);
    } catch (e) {
      if (explicit !== undefined)
        throw new RunError(
          'RUN_REFERENCE_INVALID',
          `cannot use --image ${JSON.stringify(explicit)}: ${(e as Error).message}`,
          { cause: e },
        );
    }
  }
  if (!ref) {
    throw new RunError(
      'RUN_REFERENCE_INVALID',
      `cannot print a runnable reference for ${JSON.stringify(image)}: it is a local image, which docker, podman and Kubernetes cannot pull; push it (pare push ${image} REGISTRY/REPO:TAG) and give --image REGISTRY/REPO:TAG`,
    );
  }
  return formatReference(ref.digest || !digest ? ref : withDigest(ref, digest));
}
