"""Shared helpers for the end-to-end tests: run the real binary, load and validate JSON."""
import json
import os
import subprocess
import tempfile
import unittest

BIN = os.environ.get("OB_BIN", "build/overlap-bench")
SRC = os.environ.get("OB_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
HAVE_MPI = os.environ.get("OB_HAVE_MPI", "OFF") in ("ON", "1", "TRUE")
HAVE_CUDA = os.environ.get("OB_HAVE_CUDA", "OFF") in ("ON", "1", "TRUE")


def mpi_command(n, args, mpirun_args=()):
    """mpirun of the binary on n ranks, as root in a container, over shared memory only."""
    env = dict(os.environ, OVERLAP_BENCH_CONFIGS=os.path.join(SRC, "configs"),
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_btl="self,vader", OMPI_MCA_btl_vader_single_copy_mechanism="none",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    cmd = ["mpirun", "-np", str(n), "--oversubscribe", "--allow-run-as-root"]
    return cmd + list(mpirun_args) + [BIN] + list(args), env


def run(args, env=None, timeout=300, cwd=None):
    """Runs overlap-bench; returns (exit code, stdout, stderr)."""
    full_env = dict(os.environ)
    full_env.setdefault("OVERLAP_BENCH_CONFIGS", os.path.join(SRC, "configs"))
    full_env.pop("CUDA_DEVICE_MAX_CONNECTIONS", None)
    if env:
        full_env.update(env)
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True, env=full_env,
                       timeout=timeout, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def load(path):
    with open(path) as f:
        return json.load(f)


def schema(name):
    return load(os.path.join(SRC, "results", "schema", name))


def validate(doc, schema_name):
    import jsonschema  # Debian python3-jsonschema (scripts/setup.sh)
    jsonschema.validate(doc, schema(schema_name))


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write_json(self, name, obj):
        p = self.path(name)
        with open(p, "w") as f:
            if isinstance(obj, str):
                f.write(obj)
            else:
                json.dump(obj, f)
        return p

    def assertRuns(self, args, code=0, **kw):
        rc, out, err = run(args, **kw)
        self.assertEqual(rc, code, f"overlap-bench {' '.join(args)}\nstdout:\n{out}\nstderr:\n{err}")
        return out, err
