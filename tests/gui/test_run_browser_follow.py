"""The run browser follows a run that another writer is still storing."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("pytestqt")

from gui.run_browser import RunBrowser  # noqa: E402
from procedures.documents import DocumentStream, StreamWriter, new_uid  # noqa: E402
from storage.writer import StorageWriter  # noqa: E402


def curves(browser) -> list[tuple[list, list]]:
    """Every point of each curve (plotted_curves() gives what the view shows)."""
    return [(item.xData.tolist(), item.yData.tolist())
            for item in browser.plot.getPlotItem().listDataItems()]


def test_a_running_run_is_followed_until_it_ends(qtbot, tmp_path):
    db = f"sqlite:///{tmp_path / 'live.sqlite'}"
    writer = StorageWriter(db, flush_rows=10**6, flush_interval_s=1e9)
    docs = DocumentStream()
    docs.subscribe(writer, critical=True)
    uid = new_uid()
    docs.emit("start", {"run_uid": uid, "time": 0.0, "protocol_name": "live", "protocol": {},
                        "sample": {}, "station": {}, "simulated": True})
    v = StreamWriter(docs.emit, uid, "v", {"time_s": "s", "voltage_v": "V"})
    v.write({"time_s": [0.0, 1.0], "voltage_v": [3.0, 3.1]})
    writer.flush()

    browser = RunBrowser(db)
    qtbot.addWidget(browser)
    browser.follow_timer.setInterval(20)
    browser.refresh()
    browser.table.selectRow(0)
    assert browser.following
    assert curves(browser) == [([0.0, 1.0], [3.0, 3.1])]

    v.write({"time_s": [2.0, 3.0], "voltage_v": [3.2, np.nan]})
    writer.flush()
    qtbot.waitUntil(lambda: len(curves(browser)[0][0]) == 4, timeout=10000)
    assert curves(browser)[0][0] == [0.0, 1.0, 2.0, 3.0] and len(curves(browser)) == 1
    t = StreamWriter(docs.emit, uid, "t", {"time_s": "s", "temperature_c": "degC"})
    t.write({"time_s": [0.0], "temperature_c": [25.0]})
    writer.flush()
    qtbot.waitUntil(lambda: browser.stream_box.findText("t") >= 0, timeout=10000)

    docs.emit("analysis", {"run_uid": uid, "name": "eis", "step_index": None,
                           "result": {"r_bulk_ohm": 12.0}})
    docs.emit("stop", {"run_uid": uid, "time": 1.0, "status": "completed", "reason": "",
                       "traceback": None})
    qtbot.waitUntil(lambda: not browser.following, timeout=10000)
    assert browser.table.item(0, 2).text() == "completed"
    assert "completed" in browser.summary.text() and browser.results.count() >= 1
    assert [browser.stream_box.itemText(i) for i in range(browser.stream_box.count())] == ["v", "t"]
    assert curves(browser)[0][0] == [0.0, 1.0, 2.0, 3.0]
