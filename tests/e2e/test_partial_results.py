"""A result that is not what a whole sweep answers says so (README: journaled sweeps): an
interrupted sweep's JSON carries "complete": false and "planned_cases", and its table and report
say PARTIAL; a second signal leaves no FILE.tmp.<pid> behind."""
import os
import signal
import subprocess
import time
import unittest

from e2e_common import BIN, SRC, TempDirTest, load, validate
from test_reliability import CASES, RUN, journal_lines

NO_PICTURES = {"OVERLAP_BENCH_PYTHON": "/nonexistent/python3"}


def start(args):
    env = dict(os.environ, OVERLAP_BENCH_CONFIGS=os.path.join(SRC, "configs"))
    env.pop("CUDA_DEVICE_MAX_CONNECTIONS", None)
    return subprocess.Popen([BIN] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


class Partial(TempDirTest):
    def test_an_interrupted_sweep_says_it_is_partial(self):
        out = self.path("r.json")
        p = start([a for a in RUN if a != "-q"] + ["--json", out])
        deadline = time.time() + 60
        while journal_lines(out + ".journal") < 6 and p.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        p.send_signal(signal.SIGINT)
        stdout, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 130, err)
        doc = load(out)
        validate(doc, "result_v1.schema.json")
        done = len(doc["cases"])
        self.assertLess(done, CASES, "the signal came too late to test anything")
        self.assertIs(doc["complete"], False)
        self.assertEqual(doc["planned_cases"], CASES)
        self.assertEqual(list(doc)[:4], ["schema", "simulated", "complete", "planned_cases"])
        self.assertIn("PARTIAL: %d of %d cases" % (done, CASES), stdout)
        rep = self.path("rep")
        self.assertRuns(["report", out, "--out", rep], env=NO_PICTURES)
        self.assertIn("PARTIAL: %d of %d cases" % (done, CASES), read(os.path.join(rep, "report.md")))
        # Resumed, the document is complete again and has no marker.
        self.assertRuns(RUN + ["--json", out, "--resume"])
        doc = load(out)
        self.assertNotIn("complete", doc)
        self.assertNotIn("planned_cases", doc)
        self.assertEqual(len(doc["cases"]), CASES)

    def test_a_second_signal_leaves_no_temporary_file(self):
        # 5,000 cases: a JSON of about 15 MB, long enough to be caught being written.
        args = RUN + ["--set", "comm_ctas=0,8,16,24,32"]
        for attempt in range(8):
            out = self.path("big%d.json" % attempt)
            p = start(args + ["--json", out])
            tmp = "%s.tmp.%d" % (out, p.pid)
            # The journal exists from the first case on: a temporary file seen beside it is the
            # result being written, never the writability probe made before the sweep.
            while p.poll() is None and not (os.path.exists(tmp) and
                                            os.path.exists(out + ".journal")):
                time.sleep(0.001)
            if p.poll() is not None:
                continue
            p.send_signal(signal.SIGINT)
            time.sleep(0.02)
            p.send_signal(signal.SIGINT)
            p.communicate(timeout=120)
            self.assertFalse(os.path.exists(tmp), "the second signal left %s behind" % tmp)
            if p.returncode != -signal.SIGINT or os.path.exists(out):
                # The file was renamed into place before the second signal: whole, not half.
                if os.path.exists(out):
                    load(out)
                continue  # try again to catch it mid-write
            self.assertTrue(os.path.exists(out + ".journal"), "the journal keeps the cases")
            return
        self.skipTest("could not signal the process twice while it wrote its JSON")


if __name__ == "__main__":
    unittest.main()
