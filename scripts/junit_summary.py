#!/usr/bin/env python3
"""
Print a per-test summary of a pytest JUnit XML file, as written by ``colcon test``.

Exit status: 0 when every test passed or was skipped, 1 on any failure or error, and also 1
when the file holds no tests at all (pytest collecting nothing must not look like success).
"""

import argparse
from pathlib import Path
import sys
import xml.etree.ElementTree as ElementTree


def summarize(junit_path: Path) -> int:
    """
    Print one line per test case and the totals; return the process exit status.

    A missing or unreadable file counts as a failure.
    """
    if not junit_path.is_file():
        print(f'test summary: no result file {junit_path} (did colcon test run?)')
        return 1
    try:
        root = ElementTree.parse(junit_path).getroot()
    except ElementTree.ParseError as exc:
        print(f'test summary: cannot parse {junit_path}: {exc}')
        return 1
    counts = {'passed': 0, 'failed': 0, 'error': 0, 'skipped': 0}
    rows = []
    for case in root.iter('testcase'):
        if case.find('failure') is not None:
            status = 'failed'
        elif case.find('error') is not None:
            status = 'error'
        elif case.find('skipped') is not None:
            status = 'skipped'
        else:
            status = 'passed'
        counts[status] += 1
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        time_s = float(case.get('time', '0') or 0.0)
        rows.append((status, time_s, name))
    print('')
    print('=' * 30 + ' per-test summary ' + '=' * 30)
    for status, time_s, name in rows:
        print(f'{status.upper():8s} {time_s:8.2f} s  {name}')
    total = sum(counts.values())
    print('-' * 78)
    print(
        f"{total} tests: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['error']} errors, {counts['skipped']} skipped")
    if total == 0:
        print('test summary: no tests were collected')
        return 1
    return 1 if counts['failed'] or counts['error'] else 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and summarize the given JUnit XML file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('junit_xml', type=Path, help='pytest JUnit XML file')
    args = parser.parse_args(argv)
    return summarize(args.junit_xml)


if __name__ == '__main__':
    sys.exit(main())
