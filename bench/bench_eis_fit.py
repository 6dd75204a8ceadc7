"""Benchmark: cellbench's analyze_spectrum against impedance.py's CustomCircuit fit, same spectra.

Run: .venv/bin/python bench/bench_eis_fit.py   (needs `impedance==1.7.1`, the "bench" extra)

Ours is timed end to end (model choice, Lin-KK check, uncertainties). The anchor, measured in the
same run on the same synthetic spectra, is impedance.py's
    CustomCircuit('R0-p(R1,CPE1)-CPE2', initial_guess=<guess read from the data>).fit(f, Z)
with default options. Each impedance.py fit runs in a child process with a timeout so this script
cannot hang; the time reported is measured inside the child around .fit() only. R counts as
recovered when R_total (ours) or R0 + R1 (impedance.py) is within 3 % of the truth. Times are the
minimum of REPEATS runs for both (least disturbed by other load on the machine).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.eis import analyze_spectrum  # noqa: E402

EPS0_F_PER_CM = 8.8541878128e-14
TIMEOUT_S = 60
REPEATS = 9


def pellet_spectrum(sigma, thickness_mm=1.0, gb_ratio=0.0, inductance_h=0.0, noise=0.005, seed=0):
    """7 MHz → 1 Hz, 10 points per decade; 10 mm pellet, εr = 20, blocking CPE electrodes."""
    f = np.geomspace(7e6, 1, 69)
    omega = 2 * np.pi * f
    length_cm, area_cm2 = thickness_mm / 10, math.pi * 0.25
    r_bulk = length_cm / (sigma * area_cm2)
    c_bulk = EPS0_F_PER_CM * 20 * area_cm2 / length_cm
    z = 1j * omega * inductance_h + r_bulk / (1 + r_bulk * c_bulk**0.95 / r_bulk**0.05 * (1j * omega) ** 0.95)
    if gb_ratio:
        r_gb = gb_ratio * r_bulk
        z = z + r_gb / (1 + r_gb * 1e-9**0.9 / r_gb**0.1 * (1j * omega) ** 0.9)
    z = z + 1 / (2e-6 * (1j * omega) ** 0.85)
    rng = np.random.default_rng(seed)
    z = z + np.abs(z) * noise * (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size))
    return f, z, r_bulk * (1 + gb_ratio)


CASES = {
    "o-NBH 30 °C (offset + spike, L)": dict(sigma=4.6e-3, inductance_h=2e-7),
    "o-NBH -10 °C (offset + spike, L)": dict(sigma=3e-4, inductance_h=2e-7),
    "full bulk arc 1e-6 S/cm": dict(sigma=1e-6),
    "bulk + GB arcs 1e-6 S/cm": dict(sigma=1e-6, gb_ratio=1.0),
    "partial bulk arc 3e-5 S/cm, 2 mm": dict(sigma=3e-5, thickness_mm=2.0, inductance_h=3e-7),
}


def data_guess(f, z):
    """impedance.py needs a guess: read it off the data the way a user would."""
    minus_imag = -z.imag
    spike_start = f.size - 1  # walk up from the lowest frequency while -Z'' keeps falling
    while spike_start > 0 and minus_imag[spike_start - 1] < minus_imag[spike_start]:
        spike_start -= 1
    r0 = max(float(z.real[0]), 1e-3)
    r_total = max(float(z.real[spike_start]), 1.1 * r0)
    r1 = r_total - r0
    apex = int(np.argmax(minus_imag[: spike_start + 1]))
    q1 = 1 / (r1 * (2 * np.pi * f[apex]) ** 0.9)
    q2 = 1 / (abs(z[-1] - r_total) * (2 * np.pi * f[-1]) ** 0.8)
    return [r0, r1, q1, 0.9, q2, 0.8]


def impedance_worker() -> None:
    """Child process: read f, Z, guess as JSON on stdin; fit; print time and parameters."""
    from impedance.models.circuits import CustomCircuit

    job = json.load(sys.stdin)
    f = np.array(job["f"])
    z = np.array(job["z_real"]) + 1j * np.array(job["z_imag"])
    times = []
    for _ in range(job["repeats"]):
        circuit = CustomCircuit("R0-p(R1,CPE1)-CPE2", initial_guess=job["guess"])
        start = time.perf_counter()
        circuit.fit(f, z)
        times.append(time.perf_counter() - start)
    print(json.dumps({"seconds": min(times), "parameters": list(map(float, circuit.parameters_))}))


def run_impedance(f, z, guess):
    job = json.dumps({"f": f.tolist(), "z_real": z.real.tolist(), "z_imag": z.imag.tolist(),
                      "guess": guess, "repeats": REPEATS})
    try:
        done = subprocess.run([sys.executable, __file__, "--impedance-worker"], input=job, text=True,
                              capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {TIMEOUT_S} s"
    if done.returncode != 0:
        return None, "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(done.stdout), ""


def main() -> None:
    print(f"{'spectrum':36s} {'ours ms':>8s} {'imp.py ms':>9s} {'ratio':>6s}  R ours / imp.py (truth)")
    ours_total, theirs_total = 0.0, 0.0
    ratios = []
    for name, kwargs in CASES.items():
        f, z, r_true = pellet_spectrum(**kwargs)
        analyze_spectrum(f, z.real, z.imag, 1000 * kwargs.get("thickness_mm", 1.0), 10)  # warm-up
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            result = analyze_spectrum(f, z.real, z.imag, 1000 * kwargs.get("thickness_mm", 1.0), 10)
            times.append(time.perf_counter() - start)
        ours = min(times)
        r_ours = result["r_total_ohm"]
        ours_ok = r_ours is not None and abs(r_ours / r_true - 1) < 0.03

        theirs, problem = run_impedance(f, z, data_guess(f, z))
        if theirs is None:
            print(f"{name:36s} {ours * 1e3:8.1f} {'-':>9s} {'-':>6s}  impedance.py {problem}")
            continue
        r_theirs = theirs["parameters"][0] + theirs["parameters"][1]
        theirs_ok = abs(r_theirs / r_true - 1) < 0.03
        ratio = theirs["seconds"] / ours
        ratios.append(ratio)
        ours_total += ours
        theirs_total += theirs["seconds"]
        print(f"{name:36s} {ours * 1e3:8.1f} {theirs['seconds'] * 1e3:9.1f} {ratio:6.1f}  "
              f"{_fmt(r_ours)} {'ok' if ours_ok else 'WRONG'} / {_fmt(r_theirs)} "
              f"{'ok' if theirs_ok else 'WRONG'} ({_fmt(r_true)})")
    if ratios:
        print(f"total: ours {ours_total * 1e3:.1f} ms, impedance.py {theirs_total * 1e3:.1f} ms, "
              f"speed-up {theirs_total / ours_total:.1f}x (per spectrum {min(ratios):.1f}–{max(ratios):.1f}x; "
              "target >= 10x)")
    print("note: ours also chooses the model, runs Lin-KK and computes uncertainties; "
          "impedance.py fits one fixed circuit from the given guess.")


def _fmt(r):
    return "None" if r is None else f"{r:.4g} Ω"


if __name__ == "__main__":
    if "--impedance-worker" in sys.argv:
        impedance_worker()
    else:
        main()
