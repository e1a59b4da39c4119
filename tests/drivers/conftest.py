import pytest

from actsac.drivers.robots import load_robot
from actsac.drivers.sim import simulate
from tests.conftest import deadline_guard

TEST_DEADLINE_S = 60  # no driver test may hang: a stuck one fails with a clear message instead


@pytest.fixture(autouse=True)
def deadline():
    with deadline_guard(TEST_DEADLINE_S):
        yield


@pytest.fixture(scope="module", params=["so100", "koch"])
def sim_robot(request):
    """(RobotSpec, {bus: port}) of a simulated single-bus robot of each family, shared by a test module."""
    spec = load_robot(request.param)
    with simulate(spec) as ports:
        yield spec, ports


def bus_for(spec, ports, **options):
    from actsac.drivers.bus import make_bus

    bus_spec = spec.buses[0]
    return make_bus(bus_spec, ports[bus_spec.name], **options)
