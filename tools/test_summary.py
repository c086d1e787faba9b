"""Adds up the junit XML files of one tools/test run and prints the closing
line "N passed, M failed". `--failed NAME` counts one failure for a step that
produced no report (a build that did not compile, a crashed test binary)."""

import pathlib
import sys
import xml.etree.ElementTree as ET


def main() -> int:
    folder = pathlib.Path(sys.argv[1])
    extra_failed = [a for a in sys.argv[3:] if a] if len(sys.argv) > 2 and sys.argv[2] == "--failed" else []
    passed = failed = skipped = 0
    for path in sorted(folder.glob("*.xml")):
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError:
            failed += 1
            print(f"{path.name}: unreadable report")
            continue
        for case in root.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
            elif case.find("skipped") is not None:
                skipped += 1
            else:
                passed += 1
    failed += len(extra_failed)
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
