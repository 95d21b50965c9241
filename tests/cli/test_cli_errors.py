"""A LilypadError ends any command with one line, ``Error: <its message>``, and exit
status 1 (no traceback): under ``lilypad``, in a group's own callback, and for a
command invoked on its own."""

from __future__ import annotations

from click.testing import CliRunner

from lilypad.cli import main
from lilypad.cli.mediator import mediator

MEDIATOR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def invoke(command, *args: str, **kwargs):
    # catch_exceptions=False: an exception that escaped the command would fail the test here
    return CliRunner(mix_stderr=False).invoke(command, list(args), catch_exceptions=False, **kwargs)


def test_a_command_error_is_one_line(tmp_path):
    out = invoke(main, "addresses", "--network", "nosuch:net", env={"LILYPAD_DEPLOYMENTS_DIR": str(tmp_path)})
    assert out.exit_code == 1 and out.stdout == ""
    assert out.stderr == f"Error: no deployments file at {tmp_path}/nosuch-net.json: deploy first with " \
                         "`ape run deploy --network ECOSYSTEM:NETWORK:PROVIDER`\n"


def test_a_group_callback_error_is_one_line(tmp_path):
    # `lilypad jobcreator` runs the bridge in the group's own callback
    out = invoke(main, "jobcreator", "--web3-private-key", "not-hex", "--mediators", MEDIATOR,
                 "--data-dir", str(tmp_path))
    assert out.exit_code == 1
    assert out.stderr == "Error: WEB3_PRIVATE_KEY is not a valid private key (expected 32 bytes of hex)\n"


def test_a_command_invoked_on_its_own_reports_the_same_way(tmp_path):
    out = invoke(mediator, "--web3-private-key", "not-hex", "--data-dir", str(tmp_path))
    assert out.exit_code == 1
    assert out.stderr == "Error: WEB3_PRIVATE_KEY is not a valid private key (expected 32 bytes of hex)\n"
    bad = invoke(mediator, "--web3-private-key", "not-hex", "--modules", "bad ref!!", "--data-dir", str(tmp_path))
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: invalid module reference 'bad ref!!'")


def test_a_daemon_without_a_key_or_mediators_says_what_is_missing(tmp_path):
    nokey = invoke(main, "mediator", "--data-dir", str(tmp_path), env={"WEB3_PRIVATE_KEY": ""})
    assert nokey.exit_code == 1
    assert nokey.stderr == "Error: no private key: pass --web3-private-key or set WEB3_PRIVATE_KEY\n"
    none = invoke(main, "resource-provider", "--web3-private-key", "0x01", "--data-dir", str(tmp_path),
                  env={"LILYPAD_MEDIATORS": ""})
    assert none.stderr == "Error: name at least one trusted mediator: --mediators or LILYPAD_MEDIATORS\n"
    bad = invoke(main, "jobcreator", "--web3-private-key", "0x01", "--mediators", "0x12,nope",
                 "--data-dir", str(tmp_path))
    assert bad.exit_code == 1 and bad.stderr == "Error: not an address: 0x12, nope\n"
