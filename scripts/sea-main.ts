// The single executable's entry (scripts/package.ts bundles it): bin/pare.js without the parts a SEA does not need —
// the Node version check (the Node is built in) and the compile cache. The executable starts from a V8 startup
// snapshot taken after this module and main's static imports were evaluated: at run time nothing of them is parsed
// or run again, and the function below is where execution resumes. Command modules load lazily, as in the package.
// A SEA's process.argv is [executable, executable, ...arguments].
import { startupSnapshot } from 'node:v8';
import { main } from '../src/cli/main.ts';

function run(): void {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`pare: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}

if (startupSnapshot.isBuildingSnapshot()) startupSnapshot.setDeserializeMainFunction(run);
else run();
