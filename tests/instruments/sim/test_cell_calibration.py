"""The paper's numbers (PAPER.md) emerge from the cell model driven by a CCCV loop written here."""
import numpy as np
import pytest

from instruments.sim.cell import CellModel, cell_constants_for, paper_cell

FULL_CUTOFF_V, HALF_CUTOFF_V, CHARGE_V = 1.5, 1.8, 3.4


def model(name):
    return CellModel(cell_constants_for(paper_cell(name)), np.random.default_rng(7))


def cccv_cycle(m, c_rate, *, charge_c=25.0, discharge_c=25.0, lower_v):
    """Charge CC to 3.4 V, CV at 3.4 V until 0.1 C, discharge CC to lower_v: (charge, discharge) mAh/cm²."""
    one_c = m.k.capacity_ah
    cc = m.run_cc(c_rate * one_c, charge_c, until_voltage_v=CHARGE_V, max_duration_s=40 * 3600)
    cv = m.run_cv(CHARGE_V, charge_c, until_current_a=0.1 * one_c, max_duration_s=20 * 3600)
    dis = m.run_cc(-c_rate * one_c, discharge_c, until_voltage_v=lower_v, max_duration_s=40 * 3600)
    per_cm2 = 1e3 / m.k.area_cm2
    return (cc.capacity_ah[-1] + cv.capacity_ah[-1]) * per_cm2, dis.capacity_ah[-1] * per_cm2


@pytest.mark.parametrize("name, reversible", [("full_15mg", 1.3), ("full_30mg", 2.2), ("full_45mg", 3.5)])
def test_full_cell_first_cycle_and_cycling(name, reversible):
    m = model(name)
    charges, discharges = zip(*(cccv_cycle(m, 0.1, lower_v=FULL_CUTOFF_V) for _ in range(30)))
    charges, discharges = np.array(charges), np.array(discharges)
    assert discharges[0] == pytest.approx(reversible, rel=0.05)
    assert 0.70 <= discharges[0] / charges[0] <= 0.81
    ce = discharges[1:] / charges[1:]
    assert 0.998 <= ce.mean() <= 0.999
    # fade of a sodium-limited cell: constant CE → geometric decay; extrapolated to 100 cycles
    per_cycle = (discharges[-1] / discharges[1]) ** (1 / (discharges.size - 2))
    assert discharges[1] / discharges[0] * per_cycle ** 98 > 0.80


def test_full_cell_100_cycles_retention():
    m = model("full_45mg")
    results = np.array([cccv_cycle(m, 0.1, lower_v=FULL_CUTOFF_V) for _ in range(100)])
    ce = results[1:, 1] / results[1:, 0]
    assert 0.998 <= ce.mean() <= 0.999
    assert results[-1, 1] / results[0, 1] > 0.80


def test_half_cell_formation_and_140_cycles_at_c3():
    m = model("half_nco_nzc_onbh_15mg")
    charge, discharge = cccv_cycle(m, 0.1, lower_v=HALF_CUTOFF_V)
    assert charge == pytest.approx(1.7, abs=0.1)
    assert discharge / charge == pytest.approx(0.98, abs=0.01)
    for _ in range(140):
        _, discharge = cccv_cycle(m, 1 / 3, lower_v=HALF_CUTOFF_V)
    assert discharge == pytest.approx(1.36, abs=0.1)


def test_cold_discharge_of_the_45mg_full_cell():
    m = model("full_45mg")
    cccv_cycle(m, 0.1, lower_v=FULL_CUTOFF_V)  # formation at room temperature
    measured = [cccv_cycle(m, 0.1, charge_c=20.0, discharge_c=t, lower_v=FULL_CUTOFF_V)[1]
                for t in (25.0, 0.0, -5.0, -10.0, -15.0)]
    assert measured == pytest.approx([3.1, 2.9, 2.8, 2.5, 1.5], abs=0.1)
