"""Blackwell builds (docs/ARCHITECTURE.md §10.2): with the CUDA toolkit, the kernels compile for
sm_100a beside the default sm_90a when OB_CUDA_ARCHS (scripts/build.sh) asks for both, and the
default configuration still targets sm_90a alone. Only the CUDA objects are built (host code does
not depend on the architecture), in a throwaway build folder."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from e2e_common import HAVE_CUDA, SRC


def configure(build, archs=None):
    flags = ["-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release"]
    if archs:
        flags.append(f"-DCMAKE_CUDA_ARCHITECTURES={archs}")
    p = subprocess.run(["cmake", "-S", SRC, "-B", build] + flags, capture_output=True, text=True,
                       timeout=600)
    if p.returncode != 0:
        raise AssertionError(p.stdout[-3000:] + p.stderr[-3000:])
    with open(os.path.join(build, "build.ninja")) as f:
        return f.read()


@unittest.skipUnless(HAVE_CUDA and shutil.which("nvcc") and shutil.which("ninja"),
                     "needs the CUDA toolkit and ninja")
class Sm100Build(unittest.TestCase):
    def test_kernels_compile_for_sm100a_and_the_default_stays_sm90a(self):
        with tempfile.TemporaryDirectory() as build:
            ninja = configure(build, "90a;100a")
            self.assertIn("arch=compute_100a", ninja)
            self.assertIn("arch=compute_90a", ninja)
            targets = sorted(set(re.findall(r"CMakeFiles/ob_cuda\.dir/kernels/\w+\.cu\.o", ninja)))
            self.assertTrue(targets, "no CUDA kernel objects in the build")
            p = subprocess.run(["ninja", "-C", build] + targets, capture_output=True, text=True,
                               timeout=1200)
            self.assertEqual(p.returncode, 0, p.stdout[-4000:] + p.stderr[-4000:])
        with tempfile.TemporaryDirectory() as build:
            ninja = configure(build)
            self.assertIn("arch=compute_90a", ninja)
            self.assertNotIn("compute_100a", ninja)


if __name__ == "__main__":
    unittest.main()
