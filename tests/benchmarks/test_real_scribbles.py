"""The benchmark that needs no shared data (it uses the shipped sample) runs and prints its table."""

import re
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_real_scribbles_prints_a_row_per_method(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import real_scribbles

    assert real_scribbles.main(["--seconds", "2", "--seeds", "0", "--affinity", "0.1"]) == 0
    rows = {}
    for line in capsys.readouterr().out.splitlines()[2:]:
        method, dice = re.match(r"(.+?)\s{2,}(\d\.\d{3})", line).groups()
        rows[method] = float(dice)
    assert set(rows) == {"network, affinity 0.1", "no flips, affinity 0.1", "network (raw), affinity 0.1",
                         "random forest", "Otsu threshold"}
    assert all(0 <= d <= 1 for d in rows.values())
    assert rows["Otsu threshold"] > 0.5  # the reference masks and the image belong together
