"""Entry point of the desktop GUI (``python main.py gui``) and its scripted mode.

Scripted mode runs protocols in the real window for documentation and checks: ``--run`` queues
and starts them, ``--quit-when-done`` closes the window when the queue is done, after saving the
main window as ``--screenshot`` and the state of every plot of the session as ``--state-json``:
``{"plots": [{"title", "kind", "run_id", "curves": [{"name", "points_shown", "points_received"}]}]}``.
The exit code is 0 when every run completed, 1 otherwise, 2 for a bad station or protocol.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

MIN_WINDOW_PX = (1280, 800)
EXIT_USAGE = 2


@dataclass
class ScriptedOptions:
    runs: list[str] = field(default_factory=list)
    quit_when_done: bool = False
    screenshot: str | None = None
    state_json: str | None = None


def main(station=None, db=None, simulate: bool = False, options: ScriptedOptions | None = None) -> int:
    from PyQt6.QtCore import QEventLoop, QTimer
    from PyQt6.QtWidgets import QApplication

    from config.errors import ConfigError
    from config.protocol import load_protocol, resolve_protocol_path
    from config.station import load_station
    from gui.main_window import MainWindow

    options = options or ScriptedOptions()
    try:
        station_cfg = load_station(station, simulate=True if simulate else None)
        protocols = [(load_protocol(resolve_protocol_path(name), station_cfg), str(resolve_protocol_path(name)))
                     for name in options.runs]
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    app = QApplication.instance() or QApplication(sys.argv)
    window = MainWindow(station_cfg, db)
    window.resize(max(window.width(), MIN_WINDOW_PX[0]), max(window.height(), MIN_WINDOW_PX[1]))
    window.show()
    for protocol, source in protocols:
        window.queue_protocol(protocol, source)
    if not options.quit_when_done:
        if protocols:
            window.start_queue()
        return app.exec()
    # A loop of its own rather than app.exec(): quitting the application's loop would leave a
    # process (a test session) that goes on unable to run anything more.
    loop = QEventLoop()
    window.queue_finished.connect(lambda: _finish(app, window, options, loop))
    if protocols:
        window.start_queue()
    else:
        QTimer.singleShot(0, lambda: _finish(app, window, options, loop))
    loop.exec()
    completed = all(r["status"] == "completed" for r in window.results)
    return 0 if completed and len(window.results) == len(protocols) else 1


def _finish(app, window, options: ScriptedOptions, loop) -> None:
    """Save what the session shows, then quit."""
    app.processEvents()
    if options.state_json:
        Path(options.state_json).write_text(json.dumps(window.plots.state(), indent=1), encoding="utf-8")
    if options.screenshot:
        window.plots.flush()
        app.processEvents()
        if not window.grab().save(options.screenshot):
            print(f"error: could not write the screenshot {options.screenshot}", file=sys.stderr)
    for result in window.results:
        reason = f" — {result['reason']}" if result.get("reason") else ""
        print(f"run {result.get('run_id')}: {result['status']}{reason}", file=sys.stderr)
    window.close()
    loop.quit()
