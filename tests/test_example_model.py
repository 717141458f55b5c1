"""The bundled example model: every bundled test digit through the generated C on the host."""
from horq_codegen import data
from horq_codegen.verify import verify

from conftest import EXAMPLE_MODEL


def test_every_bundled_test_digit_agrees_on_the_host():
    count = len(data.mnist_subset("test")[1])
    report = verify(EXAMPLE_MODEL, "host", samples=count)
    c = report.comparison
    assert c.samples == count == 1000
    assert c.bit_exact and c.argmax_agree == count and c.passed, report.summary()
    assert c.accuracy_c == c.accuracy_torch and c.accuracy_c > 0.97


def test_bundled_model_is_clean_under_sanitizers():
    report = verify(EXAMPLE_MODEL, "host", samples=5, sanitize=True)
    assert report.comparison.passed and report.comparison.bit_exact
