"""What surviving eis.py mutants change in fitted results, for the judgements in tests/MUTANTS.md.

    cd FOLDER/mutants && python /path/to/tests/mutation/measure_eis.py x__fit_best__mutmut_50 ...

FOLDER is a scratch folder kept by ``run_mutation.py eis --keep``; its mutants/ directory holds
mutmut's module, in which the mutant named by MUTANT_UNDER_TEST is switched on (mutmut's own
mechanism). Each spectrum is fitted with the original and with each mutant: the 15 recovery cases
and the 30 random pellets of test_eis.py, its 3 noiseless spectra, and the real LAGP and 7 s04147
spectra of test_eis_real.py. Printed per mutant (one JSON line): the largest change of R_total,
R_bulk or R_gb in units of the original's standard error (noisy spectra) and relative (all), the
spectra whose separation or determinability changes (with how far R_total moved and how far the
original was from the truth), and those where only one of the two raises.
"""

import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parents[1] / "analysis"
sys.path.insert(0, os.getcwd())  # mutmut's analysis package
os.environ["MUTANT_UNDER_TEST"] = "none"  # the original of every function


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_eis_tests = _load("measured_test_eis", TESTS / "test_eis.py")
_real_tests = _load("measured_test_eis_real", TESTS / "test_eis_real.py")
from analysis.eis import fit_spectrum  # noqa: E402  (after the mutants' folder is on the path)


def spectra():
    """(label, f, Z, thickness µm, diameter mm, true R_total or None)."""
    t = _eis_tests
    out = []
    for index, (sigma, thickness, window, gb, inductance, noise) in enumerate(t.RECOVERY_CASES):
        f = t.frequencies(*window)
        z, r_total, _ = t.pellet(f, sigma, thickness, gb_ratio=gb, inductance_h=inductance, noise=noise,
                                 seed=int(sigma * 1e9) % 1000)
        out.append((f"recovery{index}", f, z, thickness * 1000, 10.0, r_total))
    rng = np.random.default_rng(2024)  # the draws of test_random_pellets_are_never_silently_wrong
    for case in range(30):
        f = t.frequencies(rng.choice([1e6, 3e6, 7e6]), rng.choice([0.1, 1.0]))
        sigma = 10 ** rng.uniform(-7, math.log10(2e-2))
        z, r_total, _ = t.pellet(
            f, sigma, rng.uniform(0.5, 2.0), eps_r=rng.uniform(10, 50), n_bulk=rng.uniform(0.85, 1.0),
            gb_ratio=rng.choice([0.0, rng.uniform(0.2, 3.0)]), c_gb_f=10 ** rng.uniform(-10, -8),
            n_gb=rng.uniform(0.8, 1.0), inductance_h=rng.choice([0.0, 10 ** rng.uniform(-8, -6)]),
            q_el=10 ** rng.uniform(-7, -5), n_el=rng.uniform(0.6, 0.95), noise=rng.uniform(0.002, 0.01),
            seed=case)
        out.append((f"random{case}", f, z, None, None, r_total))
    for index, kwargs in enumerate([{"gb_ratio": 2.0}, {}, {"gb_ratio": 0.5, "inductance_h": 3e-7}]):
        f = t.frequencies(7e6, 1)
        z, r_total, _ = t.pellet(f, 1e-6, 1.0, **kwargs)
        out.append((f"noiseless{index}", f, z, None, None, r_total))
    f, z_real, z_imag = _real_tests.lagp_spectrum()
    out.append(("lagp", f, z_real + 1j * z_imag, None, None, None))
    for s in _real_tests.s04147_spectra():
        out.append((s["label"], s["frequency_hz"], s["z_real_ohm"] + 1j * s["z_imag_ohm"],
                    _real_tests.S04147_THICKNESS_UM, _real_tests.S04147_DIAMETER_MM, None))
    return out


def _fit(f, z, thickness, diameter):
    try:
        return fit_spectrum(f, z.real, z.imag, thickness, diameter)
    except Exception as error:  # noqa: BLE001  (a mutant may raise anything; that is a result here)
        return repr(error)


def effect(name: str, cases, originals) -> dict:
    os.environ["MUTANT_UNDER_TEST"] = f"analysis.eis.{name}"
    worst_sigma, where, worst_relative, changed, raised = 0.0, "", 0.0, [], []
    try:
        for (label, f, z, thickness, diameter, truth), original in zip(cases, originals):
            mutant = _fit(f, z, thickness, diameter)
            if isinstance(mutant, str) or isinstance(original, str):
                if mutant != original:
                    raised.append(label)
                continue
            if (mutant.separation, mutant.r_total_determinable) != (original.separation,
                                                                      original.r_total_determinable):
                off = "" if truth is None else f", the original {original.r_total_ohm / truth - 1:+.2g} from the truth"
                changed.append(f"{label}: {original.separation}/{original.r_total_determinable} -> "
                               f"{mutant.separation}/{mutant.r_total_determinable}, R_total "
                               f"{mutant.r_total_ohm / original.r_total_ohm - 1:+.2g}{off}")
                continue
            for key in ("r_total", "r_bulk", "r_gb"):
                a, b = getattr(original, f"{key}_ohm"), getattr(mutant, f"{key}_ohm")
                stderr = getattr(original, f"{key}_stderr_ohm")
                if a is None or b is None:
                    continue
                worst_relative = max(worst_relative, abs(b - a) / abs(a))
                if stderr and not label.startswith("noiseless") and abs(b - a) / stderr > worst_sigma:
                    worst_sigma, where = abs(b - a) / stderr, f"{label} {key}"
    finally:
        os.environ["MUTANT_UNDER_TEST"] = "none"
    return {"mutant": name, "max_sigma": float(f"{worst_sigma:.2g}"), "at": where,
            "max_relative": float(f"{worst_relative:.2g}"), "changed": changed, "raised": raised}


def main(names: list[str]) -> None:
    cases = spectra()
    originals = [_fit(f, z, thickness, diameter) for _, f, z, thickness, diameter, _ in cases]
    for name in names:
        print(json.dumps(effect(name, cases, originals)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
