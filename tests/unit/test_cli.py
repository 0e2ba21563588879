import subprocess
import sys

import pytest

from command.cli import main


@pytest.mark.parametrize("words", [[], ["demo"], ["serve"], ["sim", "sensors"], ["sim", "fleet"],
                                   ["sim", "ardupilot"], ["scenario"], ["fwi"], ["slope"], ["flood"], ["hash-password"]])
def test_every_command_has_help(words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*words, "--help"])
    assert exit_.value.code == 0
    assert "usage: yingji" in capsys.readouterr().out


def test_serve_without_a_district_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("YINGJI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("YINGJI_DISTRICT_DIR", raising=False)
    with pytest.raises(SystemExit, match="YINGJI_DISTRICT_DIR"):
        main(["serve"])


def test_scenario_writes_a_district_folder(tmp_path):
    out = subprocess.run([sys.executable, "-m", "command.cli", "scenario", str(tmp_path / "d")],
                         capture_output=True, text=True, check=True)
    assert "Synthetic" in out.stdout
    assert (tmp_path / "d" / "district.yaml").exists() and (tmp_path / "d" / "fleet.yaml").exists()


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "command.cli", *args], input=stdin, capture_output=True, text=True)


def test_the_analysis_tools_read_csv_and_write_csv_with_exit_codes(tmp_path):
    levels = tmp_path / "cuntan.csv"
    levels.write_text("time,level_m,note\n2024-07-10T00:00:00+08:00,179.0,a\n2024-07-10T01:00:00+08:00,179.5,b\n"
                      "2024-07-10T02:00:00+08:00,180.0,c\n", encoding="utf-8")
    out = run_cli("flood", "--warning", "180.5", "--guaranteed", "183.5", "--historic-max", "191.62", str(levels))
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()
    assert rows[0] == "time,level_m,note,signal,rise_m_per_h,hours_to_warning,hours_to_guaranteed"
    assert rows[3].startswith("2024-07-10T02:00:00+08:00,180.0,c,blue,0.500,1.00,")

    weather = "month,day,temp,rh,wind,rain\n8,1,38,25,15,0\n8,2,39,22,18,0\n"
    out = run_cli("fwi", "--lat", "29.7", "-", stdin=weather)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].endswith("ffmc,dmc,dc,isi,bui,fwi") and len(out.stdout.splitlines()) == 3

    bad = run_cli("fwi", "--lat", "29.7", "-", stdin="month,day,temp,rh,wind,rain\n8,1,38,120,15,0\n")
    assert bad.returncode == 2 and bad.stdout == "" and ":2: rh:" in bad.stderr

    slope = tmp_path / "gnss.csv"
    slope.write_text("time,displacement_mm\n" + "".join(
        f"2024-07-{d:02d}T00:00:00+00:00,{d * 1.0}\n" for d in range(1, 11)), encoding="utf-8")
    out = run_cli("slope", "--forecast", str(slope))
    assert out.returncode == 0 and out.stdout.strip() == "not accelerating"


def test_an_unknown_scenario_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("YINGJI_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit, match="no scenario 'tsunami'.*summer_flood"):
        main(["sim", "sensors", "--scenario", "tsunami"])


def test_hash_password_makes_a_hash_the_users_file_takes_and_refuses_a_short_one():
    from command.auth import verify_password

    ok = subprocess.run([sys.executable, "-m", "command.cli", "hash-password"], input="a-long-enough-password\n",
                        capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("$argon2id$")
    assert verify_password(ok.stdout.strip(), "a-long-enough-password")
    short = subprocess.run([sys.executable, "-m", "command.cli", "hash-password"], input="short\n",
                           capture_output=True, text=True)
    assert short.returncode == 2 and "at least 8 characters" in short.stderr and short.stdout == ""


def test_the_listener_caps_each_connections_send_buffer() -> None:
    import socket

    from command.cli import _listener
    from command.settings import Settings
    from tests.fixtures_mqtt import free_port

    capped = _listener(Settings(host="127.0.0.1", port=free_port(), http_send_buffer_bytes=65536))
    kernel = _listener(Settings(host="127.0.0.1", port=free_port(), http_send_buffer_bytes=0))
    try:
        client = socket.create_connection(capped.getsockname())
        accepted, _ = capped.accept()
        # Linux doubles the value asked for (socket(7): room for its bookkeeping); the accepted socket inherits it
        assert accepted.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * 65536
        assert kernel.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) != 2 * 65536
        accepted.close()
        client.close()
    finally:
        capped.close()
        kernel.close()
