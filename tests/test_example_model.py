"""The bundled example model: every bundled test digit through the generated C on the host."""
from horq_codegen.pipeline import Lowering
from horq_codegen.verify import AGREEMENT_THRESHOLD, verify

from conftest import EXAMPLE_MODEL


def test_bundled_test_digits_agree_in_integer_mode():
    """The issue's figure: at least 99 % of the 1,000 digits agree, accuracy within 0.3 points."""
    report = verify(EXAMPLE_MODEL, "host", samples=1000)
    c = report.comparison
    assert c.bit_exact and c.passed and c.agreement >= AGREEMENT_THRESHOLD >= 0.99, report.summary()
    assert abs(c.accuracy_c - c.accuracy_torch) <= 0.003 and c.accuracy_c > 0.97


def test_bundled_test_digits_agree_in_float_mode():
    # 400 of the 1,000 test digits keep the suite within CI's 15 minutes; `horq-codegen verify
    # examples/mnist/model.pt2 --target host --samples 1000 --activations float` checks them all
    count = 400
    report = verify(EXAMPLE_MODEL, "host", samples=count, lowering=Lowering("float"))
    c = report.comparison
    assert c.samples == count
    assert c.bit_exact and c.argmax_agree == count and c.passed, report.summary()
    assert c.accuracy_c == c.accuracy_torch and c.accuracy_c > 0.96


def test_bundled_model_is_clean_under_sanitizers():
    report = verify(EXAMPLE_MODEL, "host", samples=5, sanitize=True)
    assert report.comparison.passed and report.comparison.bit_exact
