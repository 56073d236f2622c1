import pytest

from tests.support.signals import metric_counts


@pytest.fixture
def counts():
    with metric_counts() as found:
        yield found
