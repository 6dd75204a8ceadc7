"""The protocol editor: a form generated from the protocol models (config/protocol.py).

Every field of every section and step gets an editor made from its type (a number, a text, a
choice for a Literal, a check box, a list of numbers), its unit read from its name
(``soak_s`` → s, ``temperature_c`` → °C) and its description as a tooltip. Each change is
validated the way ``load_protocol`` validates a file, against the station: every problem is
shown at its field (and the ones that belong to no single field above the form), and a valid
protocol shows the estimate of ``plan``. The structure (which steps, which sections) comes from
the file opened; the form edits values. Saved as TOML; queued into the main window.
"""
from __future__ import annotations

import json
import math
import tempfile
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout,
                             QLabel, QLineEdit, QPushButton, QScrollArea, QVBoxLayout, QWidget)

from config.errors import ConfigError
from config.protocol import PROTOCOL_DIR, Protocol, load_protocol, resolve_protocol_path
from config.station import read_toml

UNITS = {"_s": "s", "_c": "°C", "_hz": "Hz", "_v": "V", "_a": "A", "_ohm": "Ω", "_um": "µm",
         "_mm": "mm", "_mg": "mg", "_cm2": "cm²", "_pct": "%", "_mg_per_cm2": "mg/cm²",
         "_mah_per_g": "mAh/g", "_a_per_cm2": "A/cm²", "_v_per_s": "V/s", "_per_h": "1/h",
         "_s_per_cm": "S/cm", "_ah": "Ah", "_ohm_cm2": "Ω cm²"}
INVALID_STYLE = "background: #ffd7d7"


def unit_of(name: str) -> str:
    """The unit a field's name carries, longest suffix first ('' when none)."""
    for suffix in sorted(UNITS, key=len, reverse=True):
        if name.endswith(suffix):
            return UNITS[suffix]
    return ""


def _strip_optional(annotation):
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _model_for_item(annotation, item: dict):
    """The model of one list item: the list's model, or the union member whose ``kind`` matches."""
    annotation = _strip_optional(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for member in typing.get_args(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel) and "kind" in member.model_fields:
            if item.get("kind") in typing.get_args(member.model_fields["kind"].annotation):
                return member
    return None


def _list_item_annotation(annotation):
    annotation = _strip_optional(annotation)
    return typing.get_args(annotation)[0] if typing.get_origin(annotation) is list else None


def dumps_toml(data: dict) -> str:
    """A protocol's data as TOML: scalars first, then tables, then arrays of tables."""
    out: list[str] = []
    _emit_table([], data, out, array=False)
    return "\n".join(out).lstrip() + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a valid TOML basic string
    return str(value)


def _is_table_array(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _emit_table(path: list[str], table: dict, out: list[str], array: bool) -> None:
    if path:
        out.append("")
        out.append(f"[[{'.'.join(path)}]]" if array else f"[{'.'.join(path)}]")
    for key, value in table.items():
        if not isinstance(value, dict) and not _is_table_array(value):
            out.append(f"{key} = {_toml_value(value)}")
    for key, value in table.items():
        if isinstance(value, dict):
            _emit_table([*path, key], value, out, array=False)
    for key, value in table.items():
        if _is_table_array(value):
            for item in value:
                _emit_table([*path, key], item, out, array=True)


class _Field:
    """One editor bound to a place in the protocol's data."""

    def __init__(self, container, key, annotation, widget, error: QLabel) -> None:
        self.container, self.key, self.annotation = container, key, annotation
        self.widget, self.error = widget, error


class ProtocolEditor(QWidget):
    """Open, edit, validate, estimate, save and queue a protocol."""

    queue_requested = pyqtSignal(object, str)  # (Protocol, source path)

    def __init__(self, station_cfg, parent=None) -> None:
        super().__init__(parent)
        self.station_cfg = station_cfg
        self.data: dict | None = None
        self.path: Path | None = None
        self.protocol: Protocol | None = None
        self.problems: list[str] = []
        self.fields: dict[str, _Field] = {}
        open_button = QPushButton("Open…")
        open_button.clicked.connect(self._choose_file)
        self.shipped = QComboBox()
        self.shipped.addItems(["shipped protocols…", *sorted(p.stem for p in PROTOCOL_DIR.glob("*.toml"))])
        self.shipped.activated.connect(self._open_shipped)
        self.save_button = QPushButton("Save as…")
        self.save_button.clicked.connect(self._choose_save)
        self.queue_button = QPushButton("Queue")
        self.queue_button.clicked.connect(self.queue)
        self.verdict = QLabel("open a protocol")
        self.verdict.setWordWrap(True)
        self.form_area = QScrollArea()
        self.form_area.setWidgetResizable(True)
        self.validate_timer = QTimer(self)
        self.validate_timer.setSingleShot(True)
        self.validate_timer.setInterval(250)  # validate once typing pauses
        self.validate_timer.timeout.connect(self.validate)
        top = QHBoxLayout()
        for w in (open_button, self.shipped, self.save_button, self.queue_button):
            top.addWidget(w)
        top.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.verdict)
        layout.addWidget(self.form_area, 1)
        self._update_buttons()

    # --- files ----------------------------------------------------------------------------------
    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Protocol file", str(PROTOCOL_DIR), "TOML (*.toml)")
        if path:
            self.open(path)

    def _open_shipped(self, index: int) -> None:
        if index > 0:
            self.open(resolve_protocol_path(self.shipped.itemText(index)))

    def open(self, path) -> None:
        self.path = Path(path)
        self.data = read_toml(self.path)
        self._build_form()
        self.validate()

    def _choose_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save protocol", str(self.path or ""), "TOML (*.toml)")
        if path:
            self.save(path)

    def save(self, path) -> Path:
        path = Path(path)
        path.write_text(dumps_toml(self.data), encoding="utf-8")
        self.path = path
        self.validate()
        return path

    def queue(self) -> None:
        if self.protocol is not None:
            self.queue_requested.emit(self.protocol, str(self.path))

    # --- the form -------------------------------------------------------------------------------
    def _build_form(self) -> None:
        self.fields.clear()
        body = QWidget()
        column = QVBoxLayout(body)
        self._add_model(column, Protocol, self.data, "")
        column.addStretch(1)
        self.form_area.setWidget(body)

    def _add_model(self, layout, model, data: dict, prefix: str) -> None:
        form = QFormLayout()
        layout.addLayout(form)
        for name, info in model.model_fields.items():
            path = f"{prefix}.{name}" if prefix else name
            annotation = _strip_optional(info.annotation)
            value = data.get(name)
            item_annotation = _list_item_annotation(info.annotation)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                if isinstance(value, dict):  # sections the file has; absent ones keep defaults
                    layout.addWidget(self._group(path, annotation, value))
            elif item_annotation is not None and _is_table_array(value):
                for i, item in enumerate(value):
                    item_model = _model_for_item(item_annotation, item)
                    if item_model is not None:
                        title = f"{path}[{i}]" + (f": {item['kind']}" if "kind" in item else "")
                        layout.addWidget(self._group(f"{path}[{i}]", item_model, item, title))
            elif name == "kind":
                form.addRow("kind", QLabel(str(value)))
            elif annotation is dict or typing.get_origin(annotation) is dict:
                if value:
                    form.addRow(name, QLabel(f"{value} (edit in the file)"))
            else:
                self._add_scalar(form, path, name, info, annotation, data)

    def _group(self, path: str, model, data: dict, title: str | None = None) -> QGroupBox:
        box = QGroupBox(title or path)
        inner = QVBoxLayout(box)
        self._add_model(inner, model, data, path)
        return box

    def _add_scalar(self, form: QFormLayout, path: str, name: str, info, annotation, data: dict) -> None:
        value = data.get(name)
        origin = typing.get_origin(annotation)
        if origin is typing.Literal:
            widget = QComboBox()
            choices = [str(c) for c in typing.get_args(annotation)]
            widget.addItems(choices)
            current = value if value is not None else info.default
            if current is not None:
                widget.setCurrentText(str(current))
            widget.currentTextChanged.connect(lambda _=None, p=path: self._edited(p))
        elif annotation is bool:
            widget = QCheckBox()
            widget.setChecked(bool(value if value is not None else info.default))
            widget.toggled.connect(lambda _=None, p=path: self._edited(p))
        else:
            widget = QLineEdit("" if value is None else
                               ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
                               if isinstance(value, list) else
                               (f"{value:g}" if isinstance(value, float) else str(value)))
            default = info.default if not info.is_required() else None
            if default not in (None, "") and not isinstance(default, BaseModel):
                widget.setPlaceholderText(f"default {default}")
            widget.textEdited.connect(lambda _=None, p=path: self._edited(p))
        if info.description:
            widget.setToolTip(info.description)
        unit = unit_of(name)
        error = QLabel("")
        error.setStyleSheet("color: #b00000")
        error.setWordWrap(True)
        error.hide()
        cell = QWidget()
        cell_layout = QVBoxLayout(cell)
        cell_layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(widget, 1)
        if unit:
            row.addWidget(QLabel(unit))
        cell_layout.addLayout(row)
        cell_layout.addWidget(error)
        form.addRow(name, cell)
        self.fields[path] = _Field(data, name, annotation, widget, error)

    def field_widget(self, path: str):
        return self.fields[path].widget

    def _edited(self, path: str) -> None:
        field = self.fields[path]
        w = field.widget
        if isinstance(w, QComboBox):
            choices = typing.get_args(field.annotation)
            field.container[field.key] = next(c for c in choices if str(c) == w.currentText())
        elif isinstance(w, QCheckBox):
            field.container[field.key] = w.isChecked()
        else:
            text = w.text().strip()
            if not text:
                field.container.pop(field.key, None)  # the model's default
            else:
                field.container[field.key] = self._parse(text, field.annotation)
        self.validate_timer.start()

    @staticmethod
    def _parse(text: str, annotation):
        """The value typed, as the model's type when it reads as one (else the text, which the
        validation then reports at its field)."""
        item = _list_item_annotation(annotation)
        if item is not None:
            return [ProtocolEditor._parse(part.strip(), item) for part in text.split(",") if part.strip()]
        for kind in (int, float):
            if annotation is kind:
                try:
                    return kind(text)
                except ValueError:
                    return text
        return text

    # --- validation -----------------------------------------------------------------------------
    def validate(self) -> None:
        """Validate as ``load_protocol`` does (through a scratch file: one validation path)."""
        self.validate_timer.stop()
        if self.data is None:
            return
        with tempfile.TemporaryDirectory() as scratch:
            scratch_file = Path(scratch) / (self.path.name if self.path else "protocol.toml")
            scratch_file.write_text(dumps_toml(self.data), encoding="utf-8")
            try:
                self.protocol = load_protocol(scratch_file, self.station_cfg)
                self.problems = []
            except ConfigError as exc:
                self.protocol = None
                self.problems = list(exc.problems)
        self._show_problems()
        self._update_buttons()

    def _show_problems(self) -> None:
        placed: set[int] = set()
        for path, field in self.fields.items():
            own = [i for i, p in enumerate(self.problems) if p.startswith(f"{path}:")
                   or p.startswith(f"{path}[")]
            placed.update(own)
            text = "\n".join(self.problems[i].split(": ", 1)[-1] for i in own)
            field.error.setText(text)
            field.error.setVisible(bool(own))
            field.widget.setStyleSheet(INVALID_STYLE if own else "")
        general = [p for i, p in enumerate(self.problems) if i not in placed]
        if self.protocol is not None:
            from procedures.progress import hms
            from procedures.steps import plan_steps
            planned = plan_steps(self.protocol, self.station_cfg)
            total = sum(p.estimate.duration_s for p in planned)
            self.verdict.setText(f"valid: {len(planned)} steps, expected {hms(total)}")
            self.verdict.setStyleSheet("color: #006000")
        else:
            lines = [f"{len(self.problems)} problem(s)"] + general
            self.verdict.setText("\n".join(lines))
            self.verdict.setStyleSheet("color: #b00000")

    def _update_buttons(self) -> None:
        self.save_button.setEnabled(self.data is not None)
        self.queue_button.setEnabled(self.protocol is not None)
