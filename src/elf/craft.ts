/**
 * Generates small, valid ELF files for tests and fuzzing (after go-containerregistry's `random`): any class, byte
 * order and machine, with an interpreter, a dynamic section (NEEDED, SONAME, RPATH, RUNPATH, FLAGS_1, BIND_NOW,
 * DEBUG), dynamic symbols and a GNU property note. One PT_LOAD maps the whole file at address = offset, so the
 * loader's and the linker's views agree. Used where no cross toolchain exists (foreign-architecture roots).
 */
import { DT } from './file.ts';
import { PT } from './header.ts';

export interface CraftOptions {
  /** e_machine (62 x86-64, 183 aarch64, 3 i386, 40 arm, 243 riscv, 21 ppc64, 22 s390). */
  readonly machine: number;
  readonly class?: 32 | 64;
  readonly endian?: 'little' | 'big';
  readonly type?: 'EXEC' | 'DYN' | 'REL';
  readonly flags?: number;
  readonly interp?: string;
  readonly needed?: readonly string[];
  readonly soname?: string;
  readonly rpath?: string;
  readonly runpath?: string;
  readonly flags1?: number;
  readonly bindNow?: boolean;
  readonly debug?: boolean;
  /** Undefined (imported) function symbols. */
  readonly imports?: readonly string[];
  /** Defined (exported) function symbols. */
  readonly exports?: readonly string[];
  /** Add PT_GNU_RELRO (default true). */
  readonly relro?: boolean;
  /** PT_GNU_STACK flags (default RW = 6; 7 for an executable stack; null for none). */
  readonly stackFlags?: number | null;
  /** A GNU property note: X86_FEATURE_1_AND / AARCH64_FEATURE_1_AND bits. */
  readonly property?: { readonly type: number; readonly bits: number };
}

class Out {
  readonly parts: Uint8Array[] = [];
  size = 0;
  align(n: number): number {
    const pad = (n - (this.size % n)) % n;
    if (pad) this.push(new Uint8Array(pad));
    return this.size;
  }
  push(b: Uint8Array): number {
    const at = this.size;
    this.parts.push(b);
    this.size += b.length;
    return at;
  }
}

/** Returns the bytes of an ELF file built from `o`. */
export function craftElf(o: CraftOptions): Uint8Array {
  const is64 = (o.class ?? 64) === 64;
  const le = (o.endian ?? 'little') === 'little';
  const W = is64 ? 8 : 4;
  const buf = (n: number, fill: (dv: DataView) => void) => {
    const b = new Uint8Array(n);
    fill(new DataView(b.buffer));
    return b;
  };
  const word = (dv: DataView, at: number, v: bigint | number) =>
    is64 ? dv.setBigUint64(at, BigInt(v), le) : dv.setUint32(at, Number(v), le);

  // String table.
  const strs: string[] = [''];
  const strOff = new Map<string, number>([['', 0]]);
  let strLen = 1;
  const str = (s: string) => {
    let off = strOff.get(s);
    if (off === undefined) {
      off = strLen;
      strOff.set(s, off);
      strs.push(s);
      strLen += Buffer.byteLength(s) + 1;
    }
    return off;
  };
  const dynEntries: [bigint, bigint | (() => bigint)][] = [];
  for (const n of o.needed ?? []) dynEntries.push([DT.NEEDED, BigInt(str(n))]);
  if (o.soname) dynEntries.push([DT.SONAME, BigInt(str(o.soname))]);
  if (o.rpath !== undefined) dynEntries.push([DT.RPATH, BigInt(str(o.rpath))]);
  if (o.runpath !== undefined) dynEntries.push([DT.RUNPATH, BigInt(str(o.runpath))]);
  if (o.bindNow) dynEntries.push([DT.BIND_NOW, 0n]);
  if (o.debug) dynEntries.push([DT.DEBUG, 0n]);
  if (o.flags1 !== undefined) dynEntries.push([DT.FLAGS_1, BigInt(o.flags1)]);
  const syms: { name: number; defined: boolean }[] = [{ name: 0, defined: false }];
  for (const s of o.imports ?? []) syms.push({ name: str(s), defined: false });
  for (const s of o.exports ?? []) syms.push({ name: str(s), defined: true });
  const shnames = [
    '',
    '.interp',
    '.dynstr',
    '.dynsym',
    '.dynamic',
    '.note.gnu.property',
    '.text',
    '.shstrtab',
  ];
  const shstr = new Map<string, number>();
  let shLen = 0;
  const shBytes: string[] = [];
  for (const n of shnames) {
    shstr.set(n, shLen);
    shBytes.push(n);
    shLen += n.length + 1;
  }

  const phCount =
    2 +
    (o.interp ? 1 : 0) +
    (o.relro === false ? 0 : 1) +
    (o.stackFlags === null ? 0 : 1) +
    (o.property ? 1 : 0);
  const ehsize = is64 ? 64 : 52;
  const phent = is64 ? 56 : 32;
  const out = new Out();
  out.push(new Uint8Array(ehsize + phCount * phent));
  const interpAt = o.interp ? out.push(Buffer.from(`${o.interp}\0`)) : 0;
  const dynstrAt = out.push(Buffer.from(`${strs.join('\0')}\0`));
  out.align(W);
  const symEnt = is64 ? 24 : 16;
  const textAt = 0x10;
  const textIdx = 4 + (o.interp ? 1 : 0) + (o.property ? 1 : 0);
  const dynsymAt = out.push(
    buf(syms.length * symEnt, (dv) =>
      syms.forEach((s, i) => {
        const at = i * symEnt;
        dv.setUint32(at, s.name, le);
        const info = i === 0 ? 0 : (1 << 4) | 2; // GLOBAL FUNC
        if (is64) {
          dv.setUint8(at + 4, info);
          dv.setUint16(at + 6, s.defined ? textIdx : 0, le);
          dv.setBigUint64(at + 8, s.defined ? BigInt(textAt + i) : 0n, le);
        } else {
          dv.setUint32(at + 4, s.defined ? textAt + i : 0, le);
          dv.setUint8(at + 12, info);
          dv.setUint16(at + 14, s.defined ? textIdx : 0, le);
        }
      }),
    ),
  );
  out.align(W);
  const dynAt = out.size;
  dynEntries.push(
    [DT.STRTAB, BigInt(dynstrAt)],
    [DT.STRSZ, BigInt(strLen)],
    [DT.SYMTAB, BigInt(dynsymAt)],
    [DT.NULL, 0n],
  );
  out.push(
    buf(dynEntries.length * 2 * W, (dv) =>
      dynEntries.forEach(([t, v], i) => {
        word(dv, i * 2 * W, t);
        word(dv, i * 2 * W + W, typeof v === 'function' ? v() : v);
      }),
    ),
  );
  let noteAt = 0;
  let noteLen = 0;
  if (o.property) {
    out.align(8);
    const pa = is64 ? 8 : 4;
    const descLen = 8 + pa;
    noteLen = 16 + descLen;
    noteAt = out.push(
      buf(noteLen, (dv) => {
        dv.setUint32(0, 4, le);
        dv.setUint32(4, descLen, le);
        dv.setUint32(8, 5, le);
        new Uint8Array(dv.buffer).set(Buffer.from('GNU\0'), 12);
        dv.setUint32(16, o.property!.type, le);
        dv.setUint32(20, 4, le);
        dv.setUint32(24, o.property!.bits, le);
      }),
    );
  }
  const shstrAt = out.push(Buffer.from(`${shBytes.join('\0')}\0`));
  out.align(W);
  const shoff = out.size;
  const shent = is64 ? 64 : 40;
  type Sh = [
    name: string,
    type: number,
    offset: number,
    size: number,
    link: number,
    entsize: number,
    align: number,
  ];
  const sh: Sh[] = [
    ['', 0, 0, 0, 0, 0, 0],
    ['.interp', 1, interpAt, o.interp ? o.interp.length + 1 : 0, 0, 0, 1],
    ['.dynstr', 3, dynstrAt, strLen, 0, 0, 1],
    ['.dynsym', 11, dynsymAt, syms.length * symEnt, 2, symEnt, W],
    ['.dynamic', 6, dynAt, dynEntries.length * 2 * W, 2, 2 * W, W],
    ['.note.gnu.property', 7, noteAt, noteLen, 0, 0, 8],
    ['.text', 1, textAt, 0, 0, 0, 1],
    ['.shstrtab', 3, shstrAt, shLen, 0, 0, 1],
  ];
  const shdrs = sh.filter(
    (s, i) =>
      i === 0 || (s[0] === '.interp' ? !!o.interp : s[0] === '.note.gnu.property' ? !!o.property : true),
  );
  const shstrndx = shdrs.findIndex((s) => s[0] === '.shstrtab');
  const dynstrIdx = shdrs.findIndex((s) => s[0] === '.dynstr');
  out.push(
    buf(shdrs.length * shent, (dv) =>
      shdrs.forEach(([name, type, offset, size, link, entsize, align], i) => {
        const at = i * shent;
        const l = link ? dynstrIdx : 0;
        dv.setUint32(at, shstr.get(name)!, le);
        dv.setUint32(at + 4, type, le);
        if (name === '.dynsym') dv.setUint32(at + (is64 ? 44 : 28), 1, le);
        if (is64) {
          dv.setBigUint64(at + 8, i === 0 ? 0n : 2n, le);
          dv.setBigUint64(at + 16, BigInt(offset), le);
          dv.setBigUint64(at + 24, BigInt(offset), le);
          dv.setBigUint64(at + 32, BigInt(size), le);
          dv.setUint32(at + 40, l, le);
          dv.setBigUint64(at + 48, BigInt(align), le);
          dv.setBigUint64(at + 56, BigInt(entsize), le);
        } else {
          dv.setUint32(at + 8, i === 0 ? 0 : 2, le);
          dv.setUint32(at + 12, offset, le);
          dv.setUint32(at + 16, offset, le);
          dv.setUint32(at + 20, size, le);
          dv.setUint32(at + 24, l, le);
          dv.setUint32(at + 32, align, le);
          dv.setUint32(at + 36, entsize, le);
        }
      }),
    ),
  );
  const total = out.size;
  const file = new Uint8Array(total);
  let pos = 0;
  for (const p of out.parts) {
    file.set(p, pos);
    pos += p.length;
  }
  const dv = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, le ? 1 : 2, 1, 0]);
  dv.setUint16(16, o.type === 'EXEC' ? 2 : o.type === 'REL' ? 1 : 3, le);
  dv.setUint16(18, o.machine, le);
  dv.setUint32(20, 1, le);
  if (is64) {
    dv.setBigUint64(32, 64n, le);
    dv.setBigUint64(40, BigInt(shoff), le);
    dv.setUint32(48, o.flags ?? 0, le);
    dv.setUint16(52, 64, le);
    dv.setUint16(54, 56, le);
    dv.setUint16(56, phCount, le);
    dv.setUint16(58, 64, le);
    dv.setUint16(60, shdrs.length, le);
    dv.setUint16(62, shstrndx, le);
  } else {
    dv.setUint32(28, 52, le);
    dv.setUint32(32, shoff, le);
    dv.setUint32(36, o.flags ?? 0, le);
    dv.setUint16(40, 52, le);
    dv.setUint16(42, 32, le);
    dv.setUint16(44, phCount, le);
    dv.setUint16(46, 40, le);
    dv.setUint16(48, shdrs.length, le);
    dv.setUint16(50, shstrndx, le);
  }
  const phs: [type: number, flags: number, off: number, size: number, align: number][] = [
    [PT.LOAD, 5, 0, total, 0x1000],
  ];
  if (o.interp) phs.push([PT.INTERP, 4, interpAt, o.interp.length + 1, 1]);
  phs.push([PT.DYNAMIC, 6, dynAt, dynEntries.length * 2 * W, W]);
  if (o.relro !== false) phs.push([PT.GNU_RELRO, 4, dynAt, dynEntries.length * 2 * W, 1]);
  if (o.stackFlags !== null) phs.push([PT.GNU_STACK, o.stackFlags ?? 6, 0, 0, 16]);
  if (o.property) phs.push([PT.NOTE, 4, noteAt, noteLen, 8]);
  phs.forEach(([type, flags, off, size, align], i) => {
    const at = ehsize + i * phent;
    dv.setUint32(at, type, le);
    if (is64) {
      dv.setUint32(at + 4, flags, le);
      dv.setBigUint64(at + 8, BigInt(off), le);
      dv.setBigUint64(at + 16, BigInt(off), le);
      dv.setBigUint64(at + 24, BigInt(off), le);
      dv.setBigUint64(at + 32, BigInt(size), le);
      dv.setBigUint64(at + 40, BigInt(size), le);
      dv.setBigUint64(at + 48, BigInt(align), le);
    } else {
      dv.setUint32(at + 4, off, le);
      dv.setUint32(at + 8, off, le);
      dv.setUint32(at + 12, off, le);
      dv.setUint32(at + 16, size, le);
      dv.setUint32(at + 20, size, le);
      dv.setUint32(at + 24, flags, le);
      dv.setUint32(at + 28, align, le);
    }
  });
  return file;
}
