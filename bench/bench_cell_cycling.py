"""Benchmark and full-length calibration check of the simulated cell (instruments/sim/cell.py).

Drives CellModel directly with a CCCV loop (charge CC to 3.4 V, CV at 3.4 V until 0.1 C, discharge CC
to the cut-off) and prints, next to the paper's figures (PAPER.md), what the model gives and how long
it took: the three full cells over 100 C/10 cycles, the NCO/NZC/o-NBH half cell (C/10 formation,
140 cycles at C/3) and the cold discharge of the 45 mg/cm² full cell. Run: python bench/bench_cell_cycling.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from instruments.sim.cell import CellModel, cell_constants_for, paper_cell  # noqa: E402


def cccv_cycle(m, c_rate, lower_v, charge_c=25.0, discharge_c=25.0):
    one_c = m.k.capacity_ah
    cc = m.run_cc(c_rate * one_c, charge_c, until_voltage_v=3.4, max_duration_s=40 * 3600)
    cv = m.run_cv(3.4, charge_c, until_current_a=0.1 * one_c, max_duration_s=20 * 3600)
    dis = m.run_cc(-c_rate * one_c, discharge_c, until_voltage_v=lower_v, max_duration_s=40 * 3600)
    per_cm2 = 1e3 / m.k.area_cm2
    records = cc.time_s.size + cv.time_s.size + dis.time_s.size
    return (cc.capacity_ah[-1] + cv.capacity_ah[-1]) * per_cm2, dis.capacity_ah[-1] * per_cm2, records


def model(name):
    return CellModel(cell_constants_for(paper_cell(name)), np.random.default_rng(0))


def main() -> None:
    print("full cells, 100 cycles at C/10, 25 °C, 3.4 V CCCV / 1.5 V")
    for name, target in (("full_15mg", 1.3), ("full_30mg", 2.2), ("full_45mg", 3.5)):
        m = model(name)
        start = time.perf_counter()
        rows = np.array([cccv_cycle(m, 0.1, 1.5) for _ in range(100)])
        wall = time.perf_counter() - start
        ce = rows[1:, 1] / rows[1:, 0]
        print(f"  {name}: first charge {rows[0, 0]:.3f}, reversible {rows[0, 1]:.3f} mAh/cm² (paper {target}),"
              f" ICE {100 * rows[0, 1] / rows[0, 0]:.1f} % (paper 70-81),"
              f" mean CE 2-100 {100 * ce.mean():.3f} % (paper 99.8-99.9),"
              f" retention {100 * rows[-1, 1] / rows[0, 1]:.1f} % (paper > 80);"
              f" {int(rows[:, 2].sum())} records, {wall:.2f} s wall")

    m = model("half_nco_nzc_onbh_15mg")
    start = time.perf_counter()
    charge, discharge, _ = cccv_cycle(m, 0.1, 1.8)
    for _ in range(140):
        last = cccv_cycle(m, 1 / 3, 1.8)[1]
    wall = time.perf_counter() - start
    print(f"half cell NCO/NZC/o-NBH 15 mg/cm²: first charge {charge:.3f} (paper 1.7), ICE {100 * discharge / charge:.1f} %"
          f" (paper ~98.2), after 140 C/3 cycles {last:.3f} mAh/cm² (paper 1.36); {wall:.2f} s wall")

    m = model("full_45mg")
    start = time.perf_counter()
    cccv_cycle(m, 0.1, 1.5)
    cold = [cccv_cycle(m, 0.1, 1.5, charge_c=20.0, discharge_c=t)[1] for t in (25.0, 0.0, -5.0, -10.0, -15.0)]
    wall = time.perf_counter() - start
    print("cold discharge 45 mg/cm² (charged at 20 °C): "
          + ", ".join(f"{t:g} °C {c:.2f}" for t, c in zip((25, 0, -5, -10, -15), cold))
          + f" mAh/cm² (paper 3.1, 2.9, 2.8, 2.5, 1.5); {wall:.2f} s wall")


if __name__ == "__main__":
    main()
