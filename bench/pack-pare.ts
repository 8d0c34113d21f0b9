// Child process for bench/pack.bench.ts: packs DIR into a gzip layer blob in the OCI layout OUT (what `pare build`
// does for a `files:` directory), so its wall time and RSS are measured on their own.
import { readHostDir } from '../src/fstree/index.ts';
import { OciLayout } from '../src/layout/index.ts';
import { layerFromTree } from '../src/oci/index.ts';

const [dir, out] = process.argv.slice(2);
const tree = await readHostDir(dir!);
const layer = layerFromTree(tree, { compression: 'gzip', epoch: 0 });
const layout = await OciLayout.create(out!);
// As layout.writeImage writes a built image's layers.
const r = await layout.writeLayer(layer, { digest: await layer.digest(), size: await layer.size() });
process.stdout.write(`${r.digest} ${r.size}\n`);
