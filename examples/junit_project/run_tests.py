"""Run the tests with unittest and write a JUnit XML report (standard library only).

    python3 run_tests.py [REPORT]     (default reports/junit.xml)

Exits 0 if every test passed, 1 otherwise.
"""

import sys
import time
import unittest
from pathlib import Path
from xml.etree import ElementTree


class RecordingResult(unittest.TextTestResult):
    """A text result that also records each test's outcome and duration."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.records: list[tuple[unittest.TestCase, str, str, float]] = []
        self._started = 0.0

    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def _record(self, test, outcome, detail=""):
        self.records.append((test, outcome, detail, time.monotonic() - self._started))

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "failure", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "error", self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped", reason)


def junit_xml(records) -> ElementTree.ElementTree:
    suite = ElementTree.Element("testsuite", name="junit_project", tests=str(len(records)))
    for test, outcome, detail, seconds in records:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            classname=f"{type(test).__module__}.{type(test).__name__}",
            name=test._testMethodName,
            time=f"{seconds:.3f}",
        )
        if outcome != "pass":
            last_line = detail.strip().splitlines()[-1] if detail.strip() else ""
            element = ElementTree.SubElement(case, outcome, message=last_line)
            element.text = detail
    return ElementTree.ElementTree(suite)


def main() -> int:
    report = Path(sys.argv[1] if len(sys.argv) > 1 else "reports/junit.xml")
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    tests = unittest.defaultTestLoader.discover(str(here / "tests"), top_level_dir=str(here))
    runner = unittest.TextTestRunner(resultclass=RecordingResult, verbosity=2, stream=sys.stdout)
    result = runner.run(tests)
    report.parent.mkdir(parents=True, exist_ok=True)
    junit_xml(result.records).write(report, encoding="utf-8", xml_declaration=True)
    print(f"JUnit report: {report}")
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
