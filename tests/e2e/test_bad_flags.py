"""Bad input on every path (README: exit codes): a malformed, out-of-range or inconsistent value
of any subcommand's flag exits 2 with a message naming the flag or field, never a raw library
exception text or a meaningless number. `python3 test_bad_flags.py --list` prints each input
beside what it now says."""
import os
import re
import sys
import unittest

from e2e_common import TempDirTest, run

RUN = ["run", "--backend", "sim", "-q"]
PAIR = ["pair", "--backend", "sim", "-q"]
PAIR_OK = PAIR + ["--gemm", "1024x1024x1024", "--bytes", "1MiB"]
COLL = ["coll", "--backend", "sim", "-q"]
STEP = ["step", "--backend", "sim", "-q", "--layers", "2"]
MOE = ["--model", "qwen3_30b_a3b", "--gpus", "16", "--tp", "1", "--pp", "1"]

# (arguments, text the message must hold). {tmp} is a fresh folder, {bad} a file that is not JSON,
# {res} a valid result file.
CASES = [
    (["frobnicate"], "unknown subcommand 'frobnicate'"),
    ([], "a subcommand is required"),
    (RUN + ["--iters", "0"], "--iters: expected an integer from 1 to 1048576, got '0'"),
    (RUN + ["--iters", "99999999999999999999"], "--iters: expected an integer from 1 to 1048576"),
    (RUN + ["--warmup", "-1"], "--warmup: expected an integer from 0 to 1048576"),
    (RUN + ["--timeout", "0"], "--timeout: expected a number above 0"),
    (RUN + ["--timeout", "nan"], "--timeout: expected a number above 0"),
    (RUN + ["--gpus", "4"], "--gpus 4: one thread per GPU is for --backend cuda"),
    (RUN + ["--json", ""], "--json: expected a value"),
    (RUN + ["--json", "/proc/x.json"], "--json /proc/x.json: cannot write there"),
    (RUN + ["--json", "{tmp}"], "is a folder"),
    (RUN + ["--json", "{tmp}/a.json", "--csv", "{tmp}/a.json"], "--csv {tmp}/a.json: the same file as --json"),
    (RUN + ["--backend", "gpu"], "--backend: gpu not in {auto,sim,cuda,loopback}"),
    (RUN + ["--config", "nosuch"], "--config: unknown scenario 'nosuch'"),
    (RUN + ["--config", "{bad}"], "invalid JSON at line"),
    (RUN + ["--config", "{tmp}"], "is not a regular file"),
    (RUN + ["--set", "cdmc=0"], "--set cdmc: 0 is out of range [1, 32]"),
    (RUN + ["--set", "cdmc=1,,2"], "--set cdmc=1,,2: empty value in list"),
    (RUN + ["--set", "=1"], "--set =1: expected key=value"),
    (RUN + ["--set", "tp=3"], "is not divisible by tp (3)"),
    (RUN + ["--set", "sm_margin=abc"], "--set sm_margin: expected an integer, got 'abc'"),
    (RUN + ["--set", "method=fast"], "--set method: unknown method 'fast'"),
    (RUN + ["--set", "model=nosuch"], "model: unknown model 'nosuch'"),
    (RUN + ["--set", "seq_length=99999999999"], "--set seq_length: 99999999999 is out of range"),
    (RUN + ["--set", "sequence_parallel=maybe"], "--set sequence_parallel: expected true or false"),
    (RUN + ["--inject", "nonsense"], "--inject: 'nonsense'"),
    (RUN + ["--inject", "die:rank=5:case=0"], "rank 5 does not exist"),
    (RUN + ["--inject", "skip_collective:rank=1:case=99999"], "case 99999 does not exist"),
    (PAIR + ["--bytes", "1MiB"], "--gemm is required"),
    (PAIR + ["--bytes", "1MiB", "--gemm", "0x1x1"], "--gemm: invalid GEMM shape '0x1x1': dimensions must be positive"),
    (PAIR + ["--bytes", "1MiB", "--gemm", "1x1"], "--gemm: invalid GEMM shape '1x1': needs three dimensions"),
    (PAIR + ["--bytes", "1MiB", "--gemm", "99999999x1x1"], "dimensions must be at most 1048576"),
    (PAIR + ["--gemm", "8x8x8", "--bytes", "0"], "--bytes: invalid size '0': must be at least 1 byte"),
    (PAIR + ["--gemm", "8x8x8", "--bytes", "1XB"], "--bytes: invalid size '1XB': unknown unit 'XB'"),
    (PAIR + ["--gemm", "8x8x8", "--bytes", "99999999999999999999"], "larger than 1 PB"),
    (PAIR_OK + ["--coll", "broadcast"], "--coll: unknown collective 'broadcast'"),
    (PAIR_OK + ["--dtype", "int8"], "--dtype: unknown dtype 'int8'"),
    (PAIR_OK + ["--dtype", "nvfp4"], "configs/gpus/h100_sxm.json has no peak for it"),
    (PAIR_OK + ["--dtype", "mxfp8", "--gpu", "a100_sxm"], "has no mxfp8 tensor cores"),
    (PAIR_OK + ["--coll", "all_reduce", "--cta-policy", "zero", "--gpu", "b200"],
     "cta_policy zero runs ncclAllReduce on no SM"),
    (PAIR_OK + ["--cta-policy", "fast"], "--cta-policy: unknown cta_policy 'fast'"),
    (PAIR_OK + ["--symmetric", "on", "--nccl-version", "2.26"], "symmetric memory windows needs NCCL >= 2.27"),
    (PAIR_OK + ["--min-ctas", "32", "--max-ctas", "8"], "min_ctas 32 exceeds max_ctas 8"),
    (PAIR_OK + ["--cluster", "gb200_nvl72", "--gpu", "gb200", "--nvlink-domain", "6"],
     "--nvlink-domain 6: an NVLink domain is a whole number of nodes of 4 GPUs"),
    (PAIR_OK + ["--ranks", "0"], "--ranks: expected an integer from 1 to 65536, got '0'"),
    (PAIR_OK + ["--sm-margin", "200"], "--sm-margin 200 leaves no SM for the GEMM"),
    (PAIR_OK + ["--sm-margin", "1,,2"], "--sm-margin 1,,2: empty value in list"),
    (PAIR_OK + ["--comm-ctas", "-3"], "pair --comm-ctas: -3 is out of range [0, 64]"),
    (PAIR_OK + ["--comm-ctas", "0,1024"], "pair --comm-ctas: 1024 is out of range [0, 64]"),
    (RUN + ["--set", "comm_ctas=65"], "--set comm_ctas: 65 is out of range [0, 64]"),
    (PAIR_OK + ["--cdmc", "1,1"], "pair --cdmc: value '1' is listed twice"),
    (PAIR_OK + ["--order", "up"], "pair --order: unknown order 'up'"),
    (PAIR_OK + ["--comm-waits-on-producer", "nan"], "--comm-waits-on-producer: expected a number"),
    (PAIR_OK + ["--gpu", "nosuch"], "--gpu: unknown gpu 'nosuch'"),
    (PAIR_OK + ["--cluster", "nosuch"], "--cluster: unknown cluster 'nosuch'"),
    (PAIR_OK + ["--gpus-per-node", "0"], "--gpus-per-node: expected an integer from 1 to 1024"),
    (PAIR_OK + ["--nic-gbps", "nan"], "--nic-gbps: expected a number"),
    (PAIR_OK + ["--cluster", "dgx_a100", "--gpu", "h100_sxm"],
     "--gpu h100_sxm and --cluster dgx_a100 disagree: the cluster file's nodes hold a100_sxm"),
    (PAIR_OK + ["--cluster", "dgx_h100", "--gpus-per-node", "4"],
     "--gpus-per-node 4 and --cluster dgx_h100 disagree: the cluster file has gpus_per_node 8"),
    (PAIR_OK + ["--cluster", "dgx_h100", "--nic-gbps", "25"],
     "--nic-gbps 25 and --cluster dgx_h100 disagree: the cluster file has nic_gbps 50"),
    (COLL + ["--bytes", "1MiB", "--cluster", "dgx_a100", "--gpu", "h100_sxm"],
     "--gpu h100_sxm and --cluster dgx_a100 disagree"),
    (COLL + ["--bytes", "1MiB", "--min", "1KiB"], "--bytes excludes --min"),
    (COLL + ["--bytes", "1MiB", "--op", "broadcast"], "--op: unknown collective 'broadcast'"),
    (COLL + ["--bytes", "1MiB", "--gpu", "a100_sxm", "--algo", "nvls", "--op", "all_reduce"],
     "no NVLink SHARP on this GPU"),
    (COLL + ["--bytes", "1MiB", "--gpu", "a100_sxm", "--symmetric", "on"], "a100_sxm.json has no sim.nccl_symmetric"),
    (COLL + ["--bytes", "1MiB", "--op", "reduce_scatter", "--cta-policy", "zero"], "a reduction needs SMs to add"),
    (COLL + ["--bytes", "1MiB", "--cta-policy", "zero", "--nccl-version", "2.27"], "needs NCCL >= 2.28"),
    (COLL + ["--bytes", "1MiB", "--ranks", "16", "--cta-policy", "zero"], "spans 2 NVLink domains"),
    (COLL + ["--bytes", "1MiB", "--nccl-version", "3.0"], "--nccl-version: '3.0': expected an NCCL 2 version"),
    (COLL + ["--bytes", "1MiB", "--ctas", "2000"], "--ctas: expected an integer from 0 to 64"),
    (COLL + ["--bytes", "1MiB", "--ctas", "65"], "--ctas: expected an integer from 0 to 64"),
    (COLL + ["--min", "4MiB", "--max", "1MiB"], "--min: 4MiB is larger than --max 1MiB"),
    (COLL + ["--min", "1MiB"], "give --bytes SIZE, or --min and --max"),
    (COLL + ["--min", "1B", "--max", "1MiB"], "size 1 is not a multiple of 16"),
    (STEP + ["--tp", "0"], "--tp: 0 is out of range (1 to 1024)"),
    (STEP + ["--tp", "abc"], "--tp: expected an integer, got 'abc'"),
    (STEP + ["--tp", "1,,2"], "--tp 1,,2: empty value in list"),
    (STEP + ["--gpus", "16,16"], "--gpus: value '16' is listed twice"),
    (STEP + ["--set", "sm_margin=0,8,0"], "--sm-margin: value '0' is listed twice"),
    (STEP + ["--set", "comm_ctas=1024"], "--comm-ctas: 1024 is out of range [0, 64]"),
    (STEP + ["--cluster", "dgx_a100", "--gpu", "h100_sxm"],
     "--gpu h100_sxm and --cluster dgx_a100 disagree: the cluster file's nodes hold a100_sxm"),
    (STEP + ["--cluster", "dgx_h100", "--gpus-per-node", "4"],
     "--gpus-per-node 4 and --cluster dgx_h100 disagree: the cluster file has gpus_per_node 8"),
    (STEP + ["--tp", "3"], "not divisible by tp x pp x cp = 3"),
    (STEP + ["--megatron-2022", "on"],
     "--megatron-2022: Megatron-LM 2022 has no Transformer Engine userbuffers: set --tp-overlap off"),
    (STEP + ["--gbs", "7"], "--gbs: 7 is not divisible by mbs x dp"),
    (STEP + ["--seq", "99999999999"], "--seq: 99999999999 is out of range"),
    (STEP + ["--nic-gbps", "-5"], "--nic-gbps: expected GB/s per NIC"),
    (STEP + ["--recompute", "some"], "--recompute: unknown recompute mode 'some'"),
    (STEP + ["--tp-overlap", "x"], "--tp-overlap: expected on or off, got 'x'"),
    (STEP + ["--cdmc", "99"], "--cdmc: 99 is out of range (1 to 32)"),
    (STEP + ["--layers", "-1"], "--layers: -1 is out of range"),
    (STEP + ["--set", "foo=1"], "--set foo=1: unknown step axis 'foo'"),
    (STEP + ["--model", "nosuch"], "--model: unknown model 'nosuch'"),
    (STEP + ["--ep", "2"], "--ep: model gpt3_175b has no experts (num_moe_experts)"),
    (STEP + MOE + ["--ep", "48"], "--ep: 48 does not divide the 128 experts of qwen3_30b_a3b"),
    (STEP + MOE + ["--ep", "32"],
     "--ep: etp x ep x pp = 1 x 32 x 1 does not divide the 16 GPUs"),
    (STEP + MOE + ["--etp", "5", "--ep", "2"], "--etp: 5 does not divide moe_ffn_hidden_size 768"),
    (STEP + MOE[:-4] + ["--tp", "2", "--pp", "1", "--ep", "8", "--sequence-parallel", "off"],
     "--ep: expert parallelism beside tp 2 needs sequence parallelism"),
    (STEP + ["--bridge-config", "{tmp}/nosuch.json"], "nosuch.json: cannot open file"),
    (STEP + ["--te-launch-ordering", "maybe"], "--te-launch-ordering: unknown te_launch_ordering"),
    (STEP + ["--iters", "0"], "--iters: expected an integer from 1 to 1048576"),
    (STEP + ["--json", "/proc/x.json"], "--json /proc/x.json: cannot write there"),
    (STEP + ["--trace", "/proc/x"], "--trace /proc/x: cannot write there"),
    (STEP + ["--csv", "/proc/x.csv"], "--csv /proc/x.csv: cannot write there"),
    (STEP + ["--model", "llama3_8b", "--gpus", "16", "--tp", "2", "--cp", "8", "--cp-comm-type", "a2a"],
     "--cp-comm-type: a2a scatters each TP rank's heads over CP: KV heads 8 / tp 2 = 4 is not divisible by cp 8"),
    (STEP + ["--model", "llama3_8b", "--gpus", "4", "--tp", "2", "--cp", "2", "--cp-comm-type", "a2a+p2p"],
     "--cp-comm-type: a2a+p2p needs hierarchical_context_parallel_sizes"),
    (STEP + ["--model", "llama3_8b", "--gpus", "16", "--tp", "2", "--cp", "8", "--cp-comm-type", "a2a+p2p",
             "--hierarchical-context-parallel-sizes", "2+2"],
     "--hierarchical-context-parallel-sizes: 2 x 2 is not cp = 8 (Megatron-Core asserts the product)"),
    (STEP + ["--hierarchical-context-parallel-sizes", "2"], "--hierarchical-context-parallel-sizes: expected two sizes joined by '+'"),
    (STEP + ["--cp-comm-type", "ring"], "--cp-comm-type"),
    (["resolve"], "--input is required"),
    (["resolve", "--input", "{tmp}"], "is a folder, not a JSON file"),
    (["resolve", "--input", "{bad}"], "invalid JSON at line"),
    (["compare", "a.json"], "new is required"),
    (["compare", "{bad}", "{bad}"], "invalid JSON at line"),
    (["compare", "{tmp}", "{tmp}"], "is a folder, not a result file"),
    (["compare", "{res}", "{res}", "--threshold", "-5"], "--threshold: expected a percent"),
    (["presets", "--show", "nosuch"], "--show: unknown preset 'nosuch'"),
    (["presets", "--show", ""], "--show: expected a value"),
]

# A library's own words, or a number nobody typed (a range printed in full, a wrapped integer).
RAW = re.compile(r"json\.exception|terminate called|what\(\)|std::|basic_string|stoi|stod")
LONG_NUMBER = re.compile(r"\d{13,}")


def message(err):
    lines = [l for l in err.splitlines() if l and not l.startswith("[")
             and not l.startswith("Run with --help")]
    return lines[-1] if lines else ""


class BadFlags(TempDirTest):
    def fill(self, args):
        bad = self.write_json("bad.json", "{")
        res = self.path("r.json")
        if any("{res}" in a for a in args) and not os.path.exists(res):
            run(PAIR_OK + ["--json", res])
        return [a.replace("{tmp}", self.tmp).replace("{bad}", bad).replace("{res}", res)
                for a in args]

    def test_every_bad_input_exits_2_naming_it(self):
        for args, needle in CASES:
            with self.subTest(args=" ".join(args)):
                rc, _, err = run(self.fill(args), timeout=120)
                self.assertEqual(rc, 2, err)
                said = message(err)
                self.assertIn(self.fill([needle])[0], said)
                self.assertNotRegex(err, RAW)
                typed = " ".join(args)
                for n in LONG_NUMBER.findall(said):
                    self.assertIn(n, typed, "a number nobody typed: " + said)


def listing():
    """Markdown rows: each bad input and what it now says."""
    t = BadFlags("test_every_bad_input_exits_2_naming_it")
    t.setUp()
    try:
        for args, _ in CASES:
            rc, _, err = run(t.fill(args), timeout=120)
            print("| `%s` | %d | %s |" % (" ".join(args).replace(t.tmp, "DIR"), rc,
                                          message(err).replace(t.tmp, "DIR").replace("|", "\\|")))
    finally:
        t.tearDown()


if __name__ == "__main__":
    if sys.argv[1:] == ["--list"]:
        listing()
    else:
        unittest.main(verbosity=2)
