"""The servers the protocol tests speak to: the model server with the test models, and the stub service
behind a router."""

from tests.graph.conftest import stub  # noqa: F401
from tests.server.conftest import test_models_server  # noqa: F401
