"""The solver's status page in a real headless Chromium, with live data: a real
solver, a provider's open offer, and a job run to the end on a real chain."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import pytest

from lilypad.devnet.network import NETWORK, PROVIDER, LocalNetwork, address_of
from lilypad.devnet.processes import repo_root

INSTALLER = repo_root() / "scripts" / "_toolchain" / "install-chromium.sh"


@pytest.fixture(scope="module")
def chromium() -> str:
    """Chromium from Debian's packages, installed on first use (apt only)."""
    def find() -> str | None:
        return shutil.which("chromium") or shutil.which("chromium-browser")

    if find() is None:
        out = subprocess.run(["bash", str(INSTALLER)], capture_output=True, text=True, timeout=900)
        if out.returncode == 3:
            pytest.skip(f"chromium cannot be installed from apt here: {out.stderr.strip()[-300:]}")
        assert out.returncode == 0, out.stderr
    path = find()
    assert path, "install-chromium.sh succeeded but chromium is not on PATH"
    return path


def browse(chromium: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--no-first-run", "--hide-scrollbars", f"--user-data-dir={tmp / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)


def png_pixels(data: bytes) -> tuple[int, int, list[int]]:
    """Width, height and the grey level of every pixel of an 8-bit RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw, stride, prev, grey = zlib.decompress(idat), width * bpp, bytearray(width * bpp), []
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        grey.extend((line[x] + line[x + 1] + line[x + 2]) // 3 for x in range(0, stride, bpp))
        prev = line
    return width, height, grey


def api(net: LocalNetwork, path: str) -> dict:
    with urllib.request.urlopen(f"{net.solver_url}/api/v1/{path}", timeout=10) as response:
        return json.loads(response.read())


def test_the_reputation_cell_shows_the_counters_and_the_values_in_lp():
    from lilypad.chain.contracts import Reputation
    from lilypad.solver.status import _reputation

    cell = _reputation(Reputation(3, 3, 2, 1, 1, 0, 1, 1, 25 * 10**17, 15 * 10**17))
    assert cell == ("agreed 3, submitted 3, accepted 2, checked 1, mediation passed 1 / failed 0, timeouts 2; "
                    "value paid 2.5 LP, verified 1.5 LP")
    assert _reputation(Reputation(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)).endswith("value paid 0 LP, verified 0 LP")


def test_status_page_shows_live_offers_deals_providers_and_results(tmp_path, chromium, start_network):
    with start_network() as net:
        net.add_provider("provider")
        deadline = time.monotonic() + 60
        while not api(net, "resource_offers")["offers"]:
            assert time.monotonic() < deadline, net.logs()
            time.sleep(0.3)
        exe = shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")
        out = subprocess.run([exe, "run", "cowsay:v0.0.1", "-i", "Message=status page", "--network", NETWORK,
                              "--solver-url", net.solver_url, "--data-dir", str(tmp_path / "client")],
                             env=net.client_env(tmp_path / "client"), capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr + net.logs()
        deal = api(net, "deals")["deals"][0]
        deadline = time.monotonic() + 30
        while deal["state"] != "ResultsAccepted":  # the solver's chain watcher catches up
            assert time.monotonic() < deadline, deal
            time.sleep(0.3)
            deal = api(net, f"deals/{deal['deal_id']}")
        offers = [o["id"] for o in api(net, "resource_offers")["offers"]]
        assert offers

        dom = browse(chromium, tmp_path, "--dump-dom", f"{net.solver_url}/")  # / redirects to /status
        assert dom.returncode == 0, dom.stderr
        page = dom.stdout
        assert '<meta http-equiv="refresh" content="5">' in page
        for offer_id in offers:
            assert f'id="offer-{offer_id}"' in page, "every open offer is listed"
        assert re.search(rf'id="deal-{deal["deal_id"]}" data-state="ResultsAccepted"', page)
        assert re.search(r'data-state="ResultsAccepted"><td class="s-ResultsAccepted">ResultsAccepted</td>'
                         r"<td class=\"?num\"?>1</td>", page), "deals by state"
        assert deal["result_cid"] and deal["result_cid"] in page, "recent results"
        provider = re.search(rf'<tr class="provider" data-address="{address_of(PROVIDER)}">(.*?)</tr>', page, re.S)
        assert provider, page
        spec = api(net, "resource_offers")["offers"][0]["offer"]["offer"]["spec"]
        assert f"{spec['cpu']} mCPU, {spec['ram']} MB RAM" in provider.group(1), "the provider's hardware"
        assert "accepted 1" in provider.group(1) and "agreed 1" in provider.group(1), "on-chain reputation"
        value = re.search(r"value paid ([0-9.]+) LP, verified ([0-9.]+) LP", provider.group(1))
        assert value and float(value.group(1)) > 0 and value.group(2) == "0", "paid, not verified by a panel"
        assert not re.search(r"<script|<link|\b(src|href)=", page), "self-contained: nothing fetched from outside"

        shot = tmp_path / "status.png"
        result = browse(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1280,1400",
                        f"{net.solver_url}/status")
        assert result.returncode == 0 and shot.is_file(), result.stderr
        data = shot.read_bytes()
        assert len(data) > 20_000, "a page with tables renders to a non-trivial PNG"
        width, height, grey = png_pixels(data)
        assert (width, height) == (1280, 1400)
        mean = sum(grey) / len(grey)
        variance = sum((g - mean) ** 2 for g in grey) / len(grey)
        assert variance > 100, f"the screenshot is not blank (grey variance {variance:.1f})"
        assert len(set(grey)) > 50, "text and colours, not a flat image"
