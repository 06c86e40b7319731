import ast
import subprocess
import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="transparent huge pages are a Linux setting")
def test_ingest_turns_transparent_huge_pages_off_for_its_process():
    # the kernel reports the per-process switch in /proc/self/status (THP_enabled: 0 once it is off);
    # children inherit it, so the child first turns it back on (this test process may have ingested)
    code = (
        "import ctypes; ctypes.CDLL(None).prctl(41, 0, 0, 0, 0)\n"
        "from noriba.memory import avoid_huge_pages\n"
        "before = [l for l in open('/proc/self/status') if l.startswith('THP_enabled')]\n"
        "print(repr((avoid_huge_pages(), before, [l for l in open('/proc/self/status') if l.startswith('THP_enabled')])))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    ok, before, after = ast.literal_eval(out)
    assert ok is True
    if before:  # kernels before 5.x do not report the switch
        assert before == ["THP_enabled:\t1\n"] and after == ["THP_enabled:\t0\n"]


def test_huge_pages_can_be_kept_with_the_environment():
    code = "from noriba.memory import avoid_huge_pages; print(avoid_huge_pages())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"NORIBA_HUGE_PAGES": "1", "PATH": ""}).stdout
    assert out.strip() == "False"
