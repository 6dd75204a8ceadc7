"""Re-analyse a stored run: its streams, read back from storage, are replayed as documents into
the analyzers its protocol selects, exactly as during the run (procedures/analyzers.py), so a run
measured before an analysis changed can be analysed again. The results are returned, not stored:
the run's record keeps what was computed when it ran."""
from __future__ import annotations

from config.protocol import Protocol
from procedures.analyzers import analyzers_for
from procedures.documents import DocumentStream


def reanalyse(db, run_id: int) -> dict[str, dict]:
    """{analyzer name: result} of the stored run ``run_id``."""
    from storage.readers import get_run, read_stream
    run = get_run(db, run_id)
    protocol = Protocol.model_validate(run["protocol"])
    stream = DocumentStream()
    results: dict[str, dict] = {}
    analyzers = analyzers_for(protocol)
    for analyzer in analyzers:
        analyzer.attach(stream, protocol)
    summaries = {s["step_index"]: s.get("summary") or {} for s in run.get("steps", [])}
    for index in sorted(i for i in summaries if i is not None):
        for info in (s for s in run.get("streams", []) if s["step_index"] == index):
            _replay(stream, run, info, read_stream(db, run_id, info["name"]))
        stream.emit("step_stop", {"run_uid": run["uid"], "step_index": index, "status": "completed",
                                  "time": 0.0, "summary": summaries[index]})
    for info in (s for s in run.get("streams", []) if s["step_index"] is None):
        _replay(stream, run, info, read_stream(db, run_id, info["name"]))

    def keep(name, doc):
        if name == "analysis":
            results[doc["name"]] = doc["result"]
    for analyzer in analyzers:
        analyzer.finish(keep, run["uid"])
    return results


def _replay(stream: DocumentStream, run: dict, info: dict, frame) -> None:
    stream.emit("descriptor", {"run_uid": run["uid"], "descriptor_uid": info["descriptor_uid"],
                               "stream": info["name"], "step_index": info["step_index"],
                               "columns": info["columns"], "metadata": info["metadata"] or {}})
    data = {c: frame[c].to_numpy() for c in frame.columns if c != "seq"}
    stream.emit("event_page", {"descriptor_uid": info["descriptor_uid"], "seq_start": 0, "data": data})
