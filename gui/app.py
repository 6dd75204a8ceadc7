"""Entry point of the desktop GUI (``python main.py gui``)."""
from __future__ import annotations

import sys


def main(station=None, db=None) -> int:
    from PyQt6.QtWidgets import QApplication

    from config.errors import ConfigError
    from config.station import load_station
    from gui.main_window import MainWindow

    try:
        station_cfg = load_station(station)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = QApplication.instance() or QApplication(sys.argv)
    window = MainWindow(station_cfg, db)
    window.show()
    return app.exec()
