"""Nothing is written to the database before the instruments answer (issue 9, scope 6): a real
station whose instruments cannot be reached leaves no run behind (the CLI's exit 2 for it is in
tests/test_cli.py)."""
from __future__ import annotations

import pytest

from config.station import load_station
from procedures.service import RunService
from procedures.station import InstrumentUnreachable
from storage.readers import list_runs

UNREACHABLE = """
[station]
simulate = false
[chamber]
address = "ASRL/dev/ttyCELLBENCH-NO-SUCH-PORT::INSTR"
[potentiostat]
dll_path = "{dll}"
[cycler]
export_path = "{export}"
"""


@pytest.fixture
def unreachable_station(tmp_path):
    path = tmp_path / "lab.toml"
    path.write_text(UNREACHABLE.format(dll=tmp_path / "no" / "EClib64.dll",
                                       export=tmp_path / "no" / "landt.txt"), encoding="utf-8")
    return path


def test_an_unreachable_station_stores_no_run(tmp_path, unreachable_station):
    db = f"sqlite:///{tmp_path / 'u.sqlite'}"
    service = RunService(load_station(unreachable_station), db, report_dir=False)
    with pytest.raises(InstrumentUnreachable) as caught:
        service.run_file("onbh_conductivity")
    message = str(caught.value)
    assert "chamber:" in message and "ttyCELLBENCH-NO-SUCH-PORT" in message
    assert "potentiostat:" in message and "nothing was run or stored" in message
    assert list_runs(db).empty


def test_a_reachable_simulated_station_stores_its_run_with_the_identities(tmp_path):
    db = f"sqlite:///{tmp_path / 's.sqlite'}"
    seen = []
    cfg = load_station(simulate=True)
    result = RunService(cfg, db, report_dir=False,
                        subscribers=[lambda name, doc: seen.append(doc) if name == "start" else None]
                        ).run_file("lsv_oxidation")
    assert result.completed, result.reason
    # Identified before the run was announced: the start document already names them.
    assert set(seen[0]["station"]["identities"]) == {"potentiostat"}
    assert len(list_runs(db)) == 1
