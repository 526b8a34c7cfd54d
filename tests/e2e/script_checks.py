"""A tiny check counter for the stdlib-only script tests: they print 'N passed, M failed' (a
closing line CI reads) and exit non-zero on any failure."""


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {name}" + (f": {detail}" if detail else ""))

    def report(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return 1 if self.failed else 0

    def run_all(self, tests):
        """Runs each test function; a crash in one is one failure, not the end of the run."""
        for t in tests:
            try:
                t()
            except Exception as e:  # noqa: BLE001
                self.check(t.__name__, False, f"raised {type(e).__name__}: {e}")
        return self.report()
