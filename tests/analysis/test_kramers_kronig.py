"""Lin-KK test: small residual for causal, stationary spectra, large for spectra that are not."""

import numpy as np
import pytest

from analysis.kramers_kronig import KramersKronigInputError, lin_kk


def blocking_pellet(f_hz, r_ohm=1e4, c_f=5e-12, n=0.92, q_el=2e-6, n_el=0.85, inductance_h=0.0):
    omega = 2 * np.pi * f_hz
    q = c_f**n / r_ohm ** (1 - n)
    return (1j * omega * inductance_h + r_ohm / (1 + r_ohm * q * (1j * omega) ** n)
            + 1 / (q_el * (1j * omega) ** n_el))


def with_noise(z, fraction, seed):
    rng = np.random.default_rng(seed)
    return z + np.abs(z) * fraction * (rng.standard_normal(z.size) + 1j * rng.standard_normal(z.size))


F = np.geomspace(7e6, 1, 69)


def test_ideal_voigt_circuit_passes():
    omega = 2 * np.pi * F
    z = 10 + 100 / (1 + 1j * omega * 1e-4) + 1000 / (1 + 1j * omega * 1e-1)
    assert lin_kk(F, z).residual_pct < 0.3


@pytest.mark.parametrize("kwargs", [{}, {"r_ohm": 30, "inductance_h": 3e-7}, {"r_ohm": 1e6, "n_el": 0.7}])
def test_valid_blocking_spectra_leave_residual_at_noise_level(kwargs):
    z = blocking_pellet(F, **kwargs)
    assert lin_kk(F, z).residual_pct < 0.1
    noisy = lin_kk(F, with_noise(z, 0.002, seed=1))
    assert noisy.residual_pct < 0.3


def test_input_order_does_not_matter():
    z = with_noise(blocking_pellet(F), 0.002, seed=2)
    assert lin_kk(F[::-1], z[::-1]).residual_pct == pytest.approx(lin_kk(F, z).residual_pct, rel=1e-6)


def test_drifting_spectrum_violates_kk():
    seconds = np.cumsum(np.maximum(3 / F, 0.5))
    # Resistance falls by 40 % while the sweep runs (sample warming up).
    drifting = np.array([blocking_pellet(np.array([f]), r_ohm=1e4 * (1 - 0.4 * t / seconds[-1]))[0]
                         for f, t in zip(F, seconds)])
    stationary = lin_kk(F, with_noise(blocking_pellet(F), 0.002, seed=3)).residual_pct
    assert lin_kk(F, with_noise(drifting, 0.002, seed=3)).residual_pct > 3 * stationary


def test_non_causal_distortion_is_detected():
    z = blocking_pellet(F)
    distorted = z.real + 1j * z.imag * (1 + 0.3 * np.sin(np.log(F)))  # imaginary part alone warped
    assert lin_kk(F, distorted).residual_pct > 2.0


def test_residuals_equal_an_independent_complex_least_squares_fit():
    """The chain fit is the weighted linear least squares of R, L, 1/C and M Voigt elements with
    τ log-spaced over 1/ω_max … 1/ω_min; redo it here with numpy's SVD solver on the complex design."""
    z = with_noise(blocking_pellet(F, inductance_h=3e-7), 0.003, seed=4)
    result = lin_kk(F, z)
    omega = 2 * np.pi * F
    tau = np.geomspace(1 / omega.max(), 1 / omega.min(), result.n_elements)
    design = np.column_stack([np.ones_like(omega), 1j * omega, 1 / (1j * omega),
                              1 / (1 + 1j * np.outer(omega, tau))]) / np.abs(z)[:, None]
    stacked = np.vstack([design.real, design.imag])
    target = np.concatenate([z.real, z.imag]) / np.tile(np.abs(z), 2)
    scale = np.linalg.norm(stacked, axis=0)
    coefficients = np.linalg.lstsq(stacked / scale, target, rcond=None)[0] / scale
    residual = target - stacked @ coefficients
    np.testing.assert_allclose(result.residual_real, residual[: F.size], atol=1e-9)
    np.testing.assert_allclose(result.residual_imag, residual[F.size:], atol=1e-9)
    voigt_r = coefficients[3:]
    assert result.mu == pytest.approx(1 - -voigt_r[voigt_r < 0].sum() / voigt_r[voigt_r >= 0].sum(), abs=1e-6)


@pytest.mark.parametrize("f, z, message", [
    (F[:4], blocking_pellet(F[:4]), "at least 5 points"),
    (F, blocking_pellet(F)[:-1], "same length"),
    (-F, blocking_pellet(F), "finite and > 0"),
    (F, np.zeros(F.size, dtype=complex), "non-zero"),
])
def test_bad_input_is_refused(f, z, message):
    with pytest.raises(KramersKronigInputError, match=message):
        lin_kk(f, z)


def independent_chain(f, z, m):
    """Residuals and mu of the R, L, 1/C + m Voigt chain by numpy's SVD solver on the complex design;
    τ log-spaced over 1/ω_max … 1/ω_min, one element at the geometric centre."""
    omega = 2 * np.pi * f
    tau = (np.geomspace(1 / omega.max(), 1 / omega.min(), m) if m > 1
           else np.array([1 / np.sqrt(omega.max() * omega.min())]))
    design = np.column_stack([np.ones_like(omega), 1j * omega, 1 / (1j * omega),
                              1 / (1 + 1j * np.outer(omega, tau))]) / np.abs(z)[:, None]
    stacked = np.vstack([design.real, design.imag])
    target = np.concatenate([z.real, z.imag]) / np.tile(np.abs(z), 2)
    scale = np.linalg.norm(stacked, axis=0)
    coefficients = np.linalg.lstsq(stacked / scale, target, rcond=None)[0] / scale
    voigt_r = coefficients[3:]
    mu = 1 - -voigt_r[voigt_r < 0].sum() / voigt_r[voigt_r >= 0].sum()
    return target - stacked @ coefficients, mu


@pytest.mark.parametrize("kwargs, seed", [({}, 5), ({"r_ohm": 30, "inductance_h": 3e-7}, 6),
                                          ({"r_ohm": 1e6, "n_el": 0.7}, 7)])
def test_number_of_elements_is_the_first_that_over_fits(kwargs, seed):
    """Schönleber's rule searched one M at a time (from 3 per decade) must give the same M as the
    coarse search with back-filling."""
    z = with_noise(blocking_pellet(F, **kwargs), 0.003, seed=seed)
    result = lin_kk(F, z)
    start = max(3, round(3 * np.log10(F.max() / F.min())))
    first = next(m for m in range(start, 51) if independent_chain(F, z, m)[1] <= 0.85)
    assert result.n_elements == first
    assert result.mu == pytest.approx(independent_chain(F, z, first)[1], abs=1e-6)


def test_one_element_chain_sits_at_the_geometric_centre():
    z = with_noise(blocking_pellet(F), 0.003, seed=8)
    result = lin_kk(F, z, max_elements=1)
    residual, mu = independent_chain(F, z, 1)
    assert result.n_elements == 1
    np.testing.assert_allclose(np.concatenate([result.residual_real, result.residual_imag]), residual, atol=1e-9)
    assert result.mu == pytest.approx(mu, abs=1e-9)


def test_search_ends_at_max_elements_when_the_chain_never_over_fits():
    z = with_noise(blocking_pellet(F), 0.003, seed=9)
    result = lin_kk(F, z, mu_threshold=-1.0, max_elements=7)
    assert result.n_elements == 7
    residual, mu = independent_chain(F, z, 7)
    assert result.mu == pytest.approx(mu, abs=1e-9) and mu > -1.0
    assert result.residual_pct == pytest.approx(100 * np.abs(residual).mean(), rel=1e-9)
    assert result.max_residual_pct == pytest.approx(100 * np.abs(residual).max(), rel=1e-9)


def first_over_fit(f, z, start, stop, threshold=0.85):
    """Schönleber's rule, one M at a time from ``start``: the first M whose mu is at or below the
    threshold, or ``stop`` when none up to it is."""
    return next((m for m in range(start, stop + 1) if independent_chain(f, z, m)[1] <= threshold), stop)


def test_another_frequency_window_spaces_tau_over_its_own_omega_range():
    """Every other test sweeps down to 1 Hz, where ln(2π f_min) and ln(2π / f_min) agree and
    log10(f_max · f_min) equals the decade count; a window from 300 kHz to 20 mHz tells them apart."""
    f = np.geomspace(3e5, 0.02, 57)
    z = with_noise(blocking_pellet(f, r_ohm=2e5, q_el=1e-6), 0.003, seed=10)
    result = lin_kk(f, z)
    start = max(3, round(3 * np.log10(f.max() / f.min())))
    assert result.n_elements == first_over_fit(f, z, start, 50)
    residual, _ = independent_chain(f, z, result.n_elements)
    np.testing.assert_allclose(np.concatenate([result.residual_real, result.residual_imag]), residual, atol=1e-9)


def test_a_sparse_spectrum_starts_the_search_at_half_its_points():
    """Few points over many decades: 3 elements per decade (21 here) is more than 13 points can
    carry, so the search starts at N // 2 = 6, and the chain never has more elements than N − 3
    (M + 3 parameters against N complex points). On two clean arcs mu already dips below the
    threshold at M = 5, where the chain is still too coarse to over-fit: that is why the search
    does not start lower."""
    f = np.geomspace(1e6, 0.1, 13)
    omega = 2 * np.pi * f
    z = 5 + 100 / (1 + 1j * omega * 1e-5) + 1000 / (1 + 1j * omega * 1e-2)
    assert independent_chain(f, z, 5)[1] < 0.85
    assert lin_kk(f, z).n_elements == first_over_fit(f, z, 6, 10) == 6
    assert lin_kk(f, z, mu_threshold=-1.0).n_elements == 10


def test_the_default_largest_chain_is_50_elements():
    z = with_noise(blocking_pellet(F), 0.003, seed=12)
    assert lin_kk(F, z, mu_threshold=-1.0).n_elements == 50


def test_a_narrow_window_starts_the_search_at_three_elements():
    """Less than a decade asks for fewer than 3 elements per decade; the search starts at 3."""
    f = np.geomspace(2e3, 500, 25)
    z = with_noise(blocking_pellet(f), 0.01, seed=13)
    assert first_over_fit(f, z, 3, 3) == 3  # this noisy window over-fits at once
    assert lin_kk(f, z).n_elements == 3


def test_two_element_chain_spans_the_window():
    z = with_noise(blocking_pellet(F), 0.003, seed=14)
    result = lin_kk(F, z, mu_threshold=-1.0, max_elements=2)
    residual, mu = independent_chain(F, z, 2)
    np.testing.assert_allclose(np.concatenate([result.residual_real, result.residual_imag]), residual, atol=1e-9)
    assert result.mu == pytest.approx(mu, abs=1e-9)


@pytest.mark.parametrize("answer_m", ["coarse", "back-filled"])
def test_the_threshold_is_inclusive(answer_m):
    """mu at or below the threshold ends the search (asked with the threshold equal to an M's own
    mu), both for an M the coarse steps reach and for one found by back-filling."""
    z = with_noise(blocking_pellet(F), 0.003, seed=15)
    start = max(3, round(3 * np.log10(F.max() / F.min())))
    m = start + 4 if answer_m == "coarse" else start + 2
    mus = {k: independent_chain(F, z, k)[1] for k in range(start, m + 1)}
    threshold = lin_kk(F, z, mu_threshold=-1.0, max_elements=m).mu  # mu of M = m, as lin_kk computes it
    assert threshold == pytest.approx(mus[m], abs=1e-9)
    assert all(mus[k] > threshold + 1e-9 for k in range(start, m)), f"no M before {m} may qualify: {mus}"
    assert lin_kk(F, z, mu_threshold=threshold).n_elements == m


def test_an_inverted_arc_has_no_positive_resistance_and_mu_zero():
    """A negative-resistance arc at the chain's one time constant: every Voigt resistance is
    negative, and mu is 0 (over-fit), not a division by zero."""
    omega = 2 * np.pi * F
    tau = 1 / np.sqrt(omega.max() * omega.min())
    z = 500 + 1j * omega * 1e-7 - 100 / (1 + 1j * omega * tau)
    result = lin_kk(F, z, max_elements=1)
    assert result.n_elements == 1 and result.mu == 0.0
    assert result.residual_pct < 1e-6


def test_a_sub_ohm_cell_is_tested_like_any_other():
    """A large-area cell of a few hundred milliohms: impedances below 1 ohm are valid, and the
    over-fit measure does not depend on the unit's size."""
    z = with_noise(blocking_pellet(F, r_ohm=0.3, c_f=1e-6, q_el=1.0), 0.0003, seed=16)
    assert np.abs(z).max() < 1.0
    result = lin_kk(F, z)
    start = max(3, round(3 * np.log10(F.max() / F.min())))
    assert result.n_elements == first_over_fit(F, z, start, 50) > start
    assert result.residual_pct < 0.1


def test_exactly_five_points_are_enough():
    f = np.geomspace(1e5, 10, 5)
    assert lin_kk(f, blocking_pellet(f)).n_elements >= 1


def test_a_zero_frequency_is_refused():
    f = F.copy()
    f[-1] = 0.0
    with pytest.raises(KramersKronigInputError, match="finite and > 0"):
        lin_kk(f, blocking_pellet(F))


def test_object_arrays_from_a_table_are_converted():
    """Columns read from a mixed-type table arrive as object arrays; they are tested as numbers."""
    z = with_noise(blocking_pellet(F), 0.003, seed=17)
    expected = lin_kk(F, z)
    result = lin_kk(np.array(list(F), dtype=object), np.array(list(z), dtype=object))
    assert result.n_elements == expected.n_elements
    assert result.residual_pct == pytest.approx(expected.residual_pct, rel=1e-12)
