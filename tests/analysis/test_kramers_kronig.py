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


# A window that does not end at 1 Hz (where ln f_min and 1/f_min hide their mistakes).
F_TENTH = np.geomspace(1e6, 0.1, 71)


@pytest.mark.parametrize("F", [F, F_TENTH])
def test_residuals_equal_an_independent_complex_least_squares_fit(F):
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
    (np.append(F[:-1], 0.0), blocking_pellet(F), "finite and > 0"),
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


@pytest.mark.parametrize("F, kwargs, seed", [(F, {}, 5), (F, {"r_ohm": 30, "inductance_h": 3e-7}, 6),
                                             (F, {"r_ohm": 1e6, "n_el": 0.7}, 7), (F_TENTH, {}, 5)])
def test_number_of_elements_is_the_first_that_over_fits(F, kwargs, seed):
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


def test_five_points_are_enough_for_a_two_element_chain():
    """The documented minimum: 5 points leave room for R, L, 1/C and 2 Voigt elements (τ at both ends)."""
    f = F[::17]
    z = with_noise(blocking_pellet(f), 0.003, seed=10)
    result = lin_kk(f, z)
    assert f.size == 5 and result.n_elements == 2
    residual, mu = independent_chain(f, z, 2)
    np.testing.assert_allclose(np.concatenate([result.residual_real, result.residual_imag]), residual, atol=1e-9)


def test_the_result_does_not_depend_on_the_unit_of_impedance():
    """The same spectrum in megaohms (or a sub-milliohm pellet) has the same relative residuals, M and mu."""
    z = with_noise(blocking_pellet(F), 0.003, seed=11)
    ohm, milliohm = lin_kk(F, z), lin_kk(F, z * 1e-6)
    assert milliohm.n_elements == ohm.n_elements
    assert milliohm.mu == pytest.approx(ohm.mu, abs=1e-9)
    np.testing.assert_allclose(milliohm.residual_real, ohm.residual_real, atol=1e-9)


def test_a_short_spectrum_never_gets_more_elements_than_its_points_determine():
    """N points, 2N residuals: the chain stops at N − 3 Voigt elements (with R, L, 1/C: N unknowns)."""
    f = F[::7]
    z = with_noise(blocking_pellet(f), 0.003, seed=12)
    result = lin_kk(f, z, mu_threshold=-1.0)
    assert result.n_elements == f.size - 3
