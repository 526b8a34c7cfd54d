"""The folders of src/ keep the order written in docs/ARCHITECTURE.md §1 (the table "folder |
holds | may include", lowest first): every `#include "X/..."` between folders is one the including
folder's row allows, and a row allows only folders above it, so the folders form no cycle. No
folder holds over 30 files, and only src/cuda, kernels/, bench/bench_cuda.cpp and tests/cuda include
a CUDA header; what the CLI reaches in src/cuda includes none, even through other headers."""
import os
import re
import unittest

from e2e_common import SRC

MAX_FILES = 30
# Over the limit when it came in (issue 15 split src/core, not src/cuda): may not grow.
OVER_LIMIT = {"src/cuda": 42}
CUDA_HEADER = re.compile(r'^\s*#\s*include\s*[<"](cuda_runtime|cuda_runtime_api|cuda|cublasLt|nccl'
                         r'|cupti|nvml)\.h[>"]', re.M)
CUDA_ALLOWED = ("src/cuda/", "kernels/", "bench/bench_cuda.cpp", "tests/cuda/")
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)
CODE = re.compile(r"\.(cpp|hpp|h|cu|cuh|hpp\.in)$")


def read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def layer_table():
    """[(folder, [folders it may include])] in the order of the table, lowest first."""
    text = read(os.path.join(SRC, "docs", "ARCHITECTURE.md"))
    rows, in_table = [], False
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and [c.lower() for c in cells] == ["folder", "holds",
                                                                    "may include"]:
            in_table = True
            continue
        if not in_table:
            continue
        if not line.startswith("|"):
            break
        if set(cells[0]) <= set("-: "):
            continue
        folder = cells[0].strip("`").rstrip("/")
        allowed = [a.strip().strip("`").rstrip("/") for a in cells[2].split(",")]
        rows.append((folder, [a for a in allowed if a and a not in ("—", "-", "nothing")]))
    return rows


def code_files(rel_dir):
    out = []
    for dirpath, _, names in os.walk(os.path.join(SRC, rel_dir)):
        out += [os.path.relpath(os.path.join(dirpath, n), SRC) for n in names if CODE.search(n)]
    return sorted(out)


def folder_of(rel):
    """`src/plan/plan.hpp` -> `src/plan`; `kernels/pattern.hpp` -> `kernels`."""
    parts = rel.split("/")
    return "/".join(parts[:2]) if parts[0] == "src" else parts[0]


def include_target(inc):
    """The folder an include names (`plan/plan.hpp` -> `src/plan`; `kernels/x.cuh` -> `kernels`)."""
    top = inc.split("/")[0]
    return "kernels" if top == "kernels" else "src/" + top


class Layering(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rows = layer_table()
        cls.order = [f for f, _ in cls.rows]
        cls.allowed = dict(cls.rows)

    def test_table_is_an_order(self):
        self.assertGreater(len(self.rows), 5, "no layer table in docs/ARCHITECTURE.md §1")
        self.assertEqual(len(set(self.order)), len(self.order), "a folder has two rows")
        for i, (folder, allowed) in enumerate(self.rows):
            for a in allowed:
                self.assertIn(a, self.order[:i],
                              f"{folder} may include {a}, which is not above it in the table")

    def test_every_folder_has_a_row(self):
        on_disk = {f"src/{d}" for d in os.listdir(os.path.join(SRC, "src"))
                   if os.path.isdir(os.path.join(SRC, "src", d))} | {"kernels"}
        self.assertEqual(sorted(on_disk - set(self.order)), [], "folders missing from the table")
        self.assertEqual(sorted(set(self.order) - on_disk), [], "rows without a folder")

    def test_includes_go_down(self):
        bad = []
        for folder in self.order:
            for rel in code_files(folder):
                for inc in INCLUDE.findall(read(os.path.join(SRC, rel))):
                    target = include_target(inc)
                    if target == folder or target not in self.allowed:
                        continue
                    if target not in self.allowed[folder]:
                        bad.append(f"{rel}: #include \"{inc}\" ({folder} may include "
                                   f"{', '.join(self.allowed[folder]) or 'nothing'})")
        self.assertEqual(bad, [], "includes against the order:\n" + "\n".join(bad))

    def test_no_stale_core_paths(self):
        bad = [f"{rel}: {inc}" for d in ("src", "kernels", "bench", "tests")
               for rel in code_files(d)
               for inc in INCLUDE.findall(read(os.path.join(SRC, rel))) if inc.startswith("core/")]
        self.assertEqual(bad, [], "src/core is gone (docs/ARCHITECTURE.md §1):\n" + "\n".join(bad))

    def test_folders_small(self):
        for folder in self.order:
            n = len([f for f in os.listdir(os.path.join(SRC, folder))
                     if os.path.isfile(os.path.join(SRC, folder, f))])
            limit = OVER_LIMIT.get(folder, MAX_FILES)
            self.assertLessEqual(n, limit, f"{folder} holds {n} files (at most {limit})")

    def test_cuda_headers_only_in_cuda(self):
        bad = [rel for d in ("src", "kernels", "bench", "tests") for rel in code_files(d)
               if not rel.startswith(CUDA_ALLOWED)
               and CUDA_HEADER.search(read(os.path.join(SRC, rel)))]
        self.assertEqual(bad, [], "CUDA headers outside " + ", ".join(CUDA_ALLOWED))

    def test_cli_reaches_no_cuda_header(self):
        """What the CLI includes from src/cuda (cuda_backend.hpp, backend_plugin.hpp) carries no
        CUDA header, nor does anything it includes in turn."""
        seen, todo = set(), code_files("src/cli")
        while todo:
            rel = todo.pop()
            if rel in seen:
                continue
            seen.add(rel)
            text = read(os.path.join(SRC, rel))
            self.assertFalse(CUDA_HEADER.search(text), f"the CLI reaches a CUDA header via {rel}")
            for inc in INCLUDE.findall(text):
                path = inc if inc.startswith("kernels/") else "src/" + inc
                if os.path.isfile(os.path.join(SRC, path)):
                    todo.append(path)


if __name__ == "__main__":
    unittest.main()
