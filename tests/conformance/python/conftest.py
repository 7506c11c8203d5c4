import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from brazen_server import BrazenServer  # noqa: E402


@pytest.fixture(scope="module")
def server(request):
    name = request.module.__name__.rsplit(".", 1)[-1]
    srv = BrazenServer(name).start()
    request.module._brazen_server = srv
    yield srv
    srv.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        srv = getattr(item.module, "_brazen_server", None)
        if srv is not None:
            rep.sections.append(("brazen server log (tail)", srv.log_tail(40)))
