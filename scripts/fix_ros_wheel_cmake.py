"""Point the ROS 2 wheels' exported CMake files at this interpreter's include dirs.

The ros-* wheels were built in a manylinux container: 13-14 of their exported
``*__rosidl_generator_pyExport.cmake`` files name ``/opt/python/cp311-cp311/include/python3.11``
and that container's numpy include dir. Building our own interface package against them
fails until those paths name this interpreter's (see ../shared/reference/platform_notes.md).
Idempotent: a second run finds nothing to rewrite.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

import numpy

WHEEL_PREFIX = re.compile(r"/opt/python/cp3\d+-cp3\d+")


def fix(prefix: Path) -> int:
    """Rewrite the foreign include dirs under ``prefix/share``; return the files changed."""
    py_inc = sysconfig.get_paths()["include"]
    np_inc = numpy.get_include()
    changed = 0
    for path in (prefix / "share").glob("*/cmake/*.cmake"):
        text = path.read_text()
        if "/opt/python/" not in text:
            continue
        new = re.sub(WHEEL_PREFIX.pattern + r"/include/python3\.\d+", py_inc, text)
        new = re.sub(
            WHEEL_PREFIX.pattern + r"/lib/python3\.\d+/site-packages/numpy/(_core|core)/include",
            np_inc,
            new,
        )
        if new != text:
            path.write_text(new)
            changed += 1
    return changed


if __name__ == "__main__":
    n = fix(Path(sys.argv[1] if len(sys.argv) > 1 else sys.prefix))
    print(f"fix_ros_wheel_cmake: rewrote {n} file(s)")
