"""How close is close, in one place for every test.

Symmetry checks compare float64 on-shell momenta (seal.testing's ATOL/RTOL); penalties and
gradients state which of these cases they are in.
"""

from seal.testing import ATOL, RTOL

# the same float64 computation summed in another order (atol for values that are ~0)
EXACT_F64 = {"rtol": 1e-12, "atol": 1e-12}
# invariance / covariance of a float64 model under a finite group element
INVARIANT_F64 = {"rtol": RTOL, "atol": ATOL}
# two routes to the same float64 penalty (fused vs replayed forwards, gradients of sums)
ROUTES_F64 = {"rtol": 1e-10, "atol": 1e-12}
# central differences of a function linear in the momenta: rounding only
LINEAR_DIFFERENCE_F64 = {"rtol": 1e-9, "atol": 0.0}
# a float64 central difference (step 1e-5) against the derivative it approximates
FINITE_DIFFERENCE_F64 = {"rtol": 1e-6, "atol": 0.0}
# bf16 autocast against float32: 8 bits of mantissa, a few % on a difference of outputs
BF16 = {"rtol": 0.05, "atol": 0.0}
# a penalty under the identity element, relative to the penalty at beta_max = 0.5
IDENTITY_RELATIVE = 1e-12
