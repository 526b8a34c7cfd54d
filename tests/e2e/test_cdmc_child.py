"""The CDMC child run without a GPU (docs/ARCHITECTURE.md §6): a real backend measures only the
CUDA_DEVICE_MAX_CONNECTIONS its process started with, so a sweep over CDMC re-executes the
binary once per other value and reads the child's cases back from the child's journal. The
`--inject reexec_cdmc` test hook makes the simulator take that path. The document must be byte
for byte the one a plain simulated sweep writes, no child journal may be left behind, and a
child journal left by an interrupted run is resumed (only its missing cases are measured)."""
import glob
import os
import tempfile
import unittest

from e2e_common import TempDirTest, load, run

SWEEP = ["run", "--backend", "sim", "-q", "--set", "cdmc=1,8,32", "--set", "sm_margin=0,16"]


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def leftovers(folder):
    """Child journals in `folder` and this user's temporary folder."""
    return (glob.glob(os.path.join(folder, "*.cdmc*"))
            + glob.glob(os.path.join(tempfile.gettempdir(), "overlap-bench-*.cdmc*.journal")))


class CdmcChild(TempDirTest):
    def test_children_return_the_cases_a_plain_sweep_measures(self):
        plain, child = self.path("plain.json"), self.path("child.json")
        rc, _, err = run(SWEEP + ["--json", plain])
        self.assertEqual(rc, 0, err)
        before = set(leftovers(self.tmp))
        rc, _, err = run(SWEEP + ["--json", child, "--inject", "reexec_cdmc"])
        self.assertEqual(rc, 0, err)
        # One child per value other than the process's own (8 when the variable is unset).
        self.assertIn("CUDA_DEVICE_MAX_CONNECTIONS=1: re-running", err)
        self.assertIn("CUDA_DEVICE_MAX_CONNECTIONS=32: re-running", err)
        self.assertNotIn("CUDA_DEVICE_MAX_CONNECTIONS=8: re-running", err)
        self.assertEqual(read_bytes(plain), read_bytes(child))
        self.assertEqual(set(leftovers(self.tmp)), before)
        self.assertFalse(os.path.exists(child + ".journal"))

    def test_without_json_the_child_journal_is_temporary(self):
        rc, out, err = run(["run", "--backend", "sim", "--set", "cdmc=1,8", "--set",
                            "sm_margin=0", "--inject", "reexec_cdmc"])
        self.assertEqual(rc, 0, err)
        self.assertIn("CUDA_DEVICE_MAX_CONNECTIONS=1: re-running", err)
        self.assertIn("recommendation", out)
        self.assertEqual(glob.glob(os.path.join(tempfile.gettempdir(),
                                                "overlap-bench-*.cdmc1.journal")), [])

    def test_an_interrupted_child_is_resumed(self):
        plain, resumed = self.path("plain.json"), self.path("resumed.json")
        rc, _, err = run(SWEEP + ["--json", plain])
        self.assertEqual(rc, 0, err)
        ones = [i for i, c in enumerate(load(plain)["cases"]) if c["params"].get("cdmc") == 1]
        self.assertGreaterEqual(len(ones), 3)
        # The CDMC=1 child as the parent starts it, killed before its third case.
        journal = resumed + ".journal.cdmc1"
        rc, _, _ = run(SWEEP + ["--json", resumed, "--cdmc-child-journal", journal,
                                "--inject", "die:rank=0:case=%d" % ones[2]],
                       env={"CUDA_DEVICE_MAX_CONNECTIONS": "1"})
        self.assertNotEqual(rc, 0)
        with open(journal) as f:
            self.assertEqual(len(f.read().splitlines()), 1 + 2)  # the header and two cases
        rc, _, err = run(SWEEP + ["--json", resumed, "--resume", "--inject", "reexec_cdmc"])
        self.assertEqual(rc, 0, err)
        self.assertIn("CUDA_DEVICE_MAX_CONNECTIONS=1: resuming", err)
        self.assertIn("2 case(s) already finished", err)
        self.assertEqual(read_bytes(plain), read_bytes(resumed))
        self.assertFalse(os.path.exists(journal))

    def test_the_hook_is_refused_where_it_cannot_act(self):
        rc, _, err = run(["step", "--backend", "sim", "--model", "gpt3_175b", "--gpus", "8",
                          "--tp", "8", "--gbs", "8", "--layers", "2", "--inject", "reexec_cdmc"])
        self.assertEqual(rc, 2, err)
        self.assertIn("reexec_cdmc", err)


if __name__ == "__main__":
    unittest.main()
