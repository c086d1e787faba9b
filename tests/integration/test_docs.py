"""The configs shown in the docs are real: every ```toml block of
docs/socketio.md is a complete sluice.toml that `sluice check` accepts, and
the routing it promises is what `sluice explain` answers."""

import json
import re

import pytest

from conftest import REPO, run_sluice

SOCKETIO_DOC = REPO / "docs" / "socketio.md"


def toml_blocks(path):
    return re.findall(r"```toml\n(.*?)```", path.read_text(), re.S)


BLOCKS = toml_blocks(SOCKETIO_DOC)


def test_the_socketio_guide_has_a_config_for_each_failure():
    sections = re.findall(r"^## \d+\. ", SOCKETIO_DOC.read_text(), re.M)
    assert len(sections) == 7 and len(BLOCKS) == 7


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=lambda i: f"block{i + 1}")
def test_each_config_in_the_socketio_guide_passes_check(index, tmp_path):
    path = tmp_path / "sluice.toml"
    path.write_text(BLOCKS[index])
    code, out, err = run_sluice("check", "--config", str(path))
    assert code == 0, err
    assert " error: " not in err, err
    # Every guide config routes a polling request to its socketio route,
    # with the path the Socket.IO server listens on.
    code, out, err = run_sluice("explain", "--config", str(path), "/socket.io/?EIO=4&transport=polling")
    answer = json.loads(out)
    assert code == 0 and answer["route"] == "socketio" and answer["kind"] == "socketio", out
    assert answer["upstream_target"] == "/socket.io/?EIO=4&transport=polling"


def test_the_guide_configs_do_what_their_sections_say(tmp_path):
    def explain(block, target):
        path = tmp_path / "sluice.toml"
        path.write_text(BLOCKS[block])
        return json.loads(run_sluice("explain", "--config", str(path), target)[1])

    catchall = explain(0, "/socket.io/?EIO=4&transport=polling")
    assert catchall["shadowed"] == [{"route": "catchall", "reason": "shorter prefix /"}]
    under_api = explain(2, "/api/socket.io/?EIO=4&transport=polling")
    assert under_api["route"] == "socketio-under-api"
    assert under_api["upstream_target"] == "/socket.io/?EIO=4&transport=polling"
    timeouts = explain(4, "/socket.io/")["timeouts"]
    assert timeouts["read"] == "90s" and timeouts["tunnel_idle"] == "2h"
