"""Campaign files: which protocols run side by side on which cell positions of one station.

    [campaign]
    name = "paper"
    station = "../stations/paper_lab.toml"   # relative to this file; --station overrides

    [[runs]]
    protocol = "full_cell_45mg"              # a shipped protocol's name, or a file (relative to this file)
    position = "a1"                          # a position of the station: its channels and chamber

``load_campaign`` checks the file, the station's positions and every protocol against the
position it runs on (its chamber's range, its channels), and reports every problem at once with
where it is, before any instrument is touched.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config.errors import ConfigError, format_pydantic_errors
from config.protocol import Protocol, load_protocol, resolve_protocol_path
from config.station import StationConfig, load_station, read_toml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class CampaignInfo(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    station: str = Field(default="", description="Station file, relative to the campaign file")


class CampaignRunEntry(_Strict):
    protocol: str = Field(min_length=1)
    position: str = Field(min_length=1)


class CampaignFile(_Strict):
    campaign: CampaignInfo
    runs: list[CampaignRunEntry] = Field(min_length=1)


@dataclass
class CampaignRun:
    """One validated run of a campaign."""

    index: int
    protocol: Protocol
    source: str
    position: str
    station: StationConfig  # the station as this run's position sees it

    @property
    def name(self) -> str:
        return self.protocol.protocol.name

    @property
    def chamber(self) -> str | None:
        return self.station.positions[self.position].chamber

    @property
    def channels(self) -> list[str]:
        return list(self.station.positions[self.position].channels)


@dataclass
class Campaign:
    name: str
    description: str
    path: str
    station: StationConfig
    runs: list[CampaignRun]


def _protocol_path(name: str, base: Path) -> Path:
    relative = base / name
    return relative if relative.exists() else resolve_protocol_path(name)


def load_campaign(path, station_path=None, simulate: bool | None = None) -> Campaign:
    """Read and check a campaign and its station (``station_path`` overrides the file's)."""
    path = Path(path)
    data = read_toml(path)
    try:
        spec = CampaignFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(str(path), format_pydantic_errors(exc)) from None
    if station_path is None and spec.campaign.station:
        station_path = path.parent / spec.campaign.station
    station = load_station(station_path, simulate=simulate)
    problems: list[str] = []
    if not station.positions:
        problems.append(f"the station ({station_path or 'config/station.toml'}) has no [positions]: "
                        "a campaign runs its protocols on named cell positions")
    runs, used = [], {}
    for i, entry in enumerate(spec.runs):
        where = f"runs[{i}]"
        if entry.position not in station.positions:
            if station.positions:
                problems.append(f"{where}.position: no position {entry.position!r}; the station has "
                                f"{sorted(station.positions)}")
            continue
        if entry.position in used:
            problems.append(f"{where}.position: {entry.position!r} is already runs[{used[entry.position]}]'s")
            continue
        used[entry.position] = i
        view = station.for_position(entry.position)
        source = _protocol_path(entry.protocol, path.parent)
        try:
            protocol = load_protocol(source, view)
        except ConfigError as exc:
            problems += [f"{where} ({entry.protocol}): {p}" for p in exc.problems]
            continue
        problems += [f"{where} ({entry.protocol}) on position {entry.position!r}: {p}"
                     for p in position_problems(protocol, station.positions[entry.position])]
        runs.append(CampaignRun(i, protocol, str(source), entry.position, view))
    if problems:
        raise ConfigError(str(path), problems)
    return Campaign(spec.campaign.name, spec.campaign.description, str(path), station, runs)


def position_problems(protocol: Protocol, position) -> list[str]:
    """What a protocol needs of its position: the channels its steps drive, a chamber if it
    sets temperatures, and no chamber if it sets none (other runs would set its temperature)."""
    from procedures.steps import expand_steps, kind_of, uses_chamber
    needed = sorted({instrument for step in expand_steps(protocol)
                     for instrument in kind_of(step).channels})
    problems = [f"needs a {instrument} channel; the position has {position.channels}"
                for instrument in needed if position.channel_of(instrument) is None]
    if uses_chamber(protocol) and position.chamber is None:
        problems.append("sets chamber temperatures but the position is in no chamber")
    elif not uses_chamber(protocol) and position.chamber is not None:
        problems.append(f"sets no temperature, so in chamber {position.chamber!r} it would "
                        "measure at whatever other runs set: use a position on the bench")
    return problems
