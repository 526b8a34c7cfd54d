"""NCCL's zero-SM all-to-all and NCCL 2.31's per-collective CTA cap end to end (README
"Blackwell, NVL72 and NCCL 2.28+"): the copy-engine all-to-all beside a GEMM frees its SMs, the
per-collective cap is a sweep axis that narrows one collective's channels, and the combinations
NCCL cannot run exit 2 naming the flag and why."""
import unittest

from e2e_common import TempDirTest, load, run

SIM = ["--backend", "sim", "-q"]
PAIR = ["pair"] + SIM + ["--gpu", "b200", "--gemm", "8192x8192x8192", "--bytes", "256MiB"]


class ZeroSmAllToAll(TempDirTest):
    def test_the_copy_engine_all_to_all_frees_the_gemm(self):
        out = self.path("pair.json")
        code, _, err = run(PAIR + ["--coll", "all_to_all", "--cta-policy", "default,zero",
                                   "--json", out])
        self.assertEqual(code, 0, err)
        cases = {c["params"]["cta_policy"]: c for c in load(out)["cases"]}
        self.assertGreater(cases["zero"]["gemm_slowdown"], 1.0)  # HBM still shared
        self.assertLess(cases["zero"]["gemm_slowdown"], cases["default"]["gemm_slowdown"])

    def test_refused_where_nccl_cannot(self):
        for extra, words in [
            (["--nccl-version", "2.27"], "needs NCCL >= 2.28"),
            (["--ranks", "16", "--cluster", "dgx_b200"], "2 NVLink domains"),
        ]:
            code, _, err = run(["coll"] + SIM + ["--gpu", "b200", "--op", "all_to_all",
                                                 "--bytes", "1GiB", "--cta-policy", "zero"] + extra)
            self.assertEqual(code, 2, err)
            self.assertIn(words, err)


class PerCollectiveCtaCap(TempDirTest):
    def test_a_cap_on_one_collective_narrows_its_channels(self):
        out = self.path("pair.json")
        code, _, err = run(PAIR + ["--coll", "all_gather", "--nccl-version", "2.31",
                                   "--coll-max-ctas", "all_gather:2,reduce_scatter:2",
                                   "--json", out])
        self.assertEqual(code, 0, err)
        cases = {c["params"]["coll_max_ctas"]: c for c in load(out)["cases"]}
        # Capping the all-gather slows it; capping another collective changes nothing here.
        self.assertGreater(cases["all_gather:2"]["comm_ms"]["median"],
                           1.5 * cases["reduce_scatter:2"]["comm_ms"]["median"])

    def test_impossible_caps_are_named(self):
        for extra, words in [
            (["--coll-max-ctas", "4"], "needs NCCL >= 2.31"),
            (["--nccl-version", "2.31", "--coll-max-ctas", "all_gather:4", "--cta-policy", "zero"],
             "no CTA to cap"),
            (["--nccl-version", "2.31", "--coll-max-ctas", "all_gather:16", "--max-ctas", "8"],
             "exceeds the communicator's max_ctas 8"),
            (["--nccl-version", "2.31", "--coll-max-ctas", "broadcast:4"], "broadcast"),
            (["--nccl-version", "2.31", "--coll-max-ctas", "all_gather:99"], "99"),
        ]:
            code, _, err = run(PAIR + ["--coll", "all_gather"] + extra)
            self.assertEqual(code, 2, (extra, err))
            self.assertIn(words, err)
            self.assertRegex(err, r"coll[-_]max[-_]ctas")  # the flag, or the axis in the case id

    def test_a_step_takes_the_cap_before_the_version(self):
        # The step's flags are parsed in name order: the cap comes before --nccl-version and
        # --cta-policy, and is checked once every axis is set.
        out = self.path("step.json")
        code, _, err = run(["step"] + SIM + ["--model", "qwen3_30b_a3b", "--cluster", "dgx_b200",
                                             "--gpus", "8", "--ep", "8", "--gbs", "16",
                                             "--layers", "2", "--coll-max-ctas", "4,8",
                                             "--nccl-version", "2.31", "--cta-policy", "default",
                                             "--json", out])
        self.assertEqual(code, 0, err)
        steps = {c["params"]["coll_max_ctas"]: c["step_ms"]["median"] for c in load(out)["cases"]}
        self.assertGreater(steps["4"], steps["8"])  # fewer channels: a slower exchange
        code, _, err = run(["step"] + SIM + ["--model", "qwen3_30b_a3b", "--cluster", "dgx_b200",
                                             "--gpus", "8", "--ep", "8", "--gbs", "16",
                                             "--layers", "2", "--coll-max-ctas", "4"])
        self.assertEqual(code, 2, err)
        self.assertIn("needs NCCL >= 2.31", err)


if __name__ == "__main__":
    unittest.main()
