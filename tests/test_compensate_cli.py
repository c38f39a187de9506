"""``memsim compensate`` fit / show / eval on the digits network."""
import subprocess
import sys


def _run(*args):
    return subprocess.run([sys.executable, "-m", "memsim", "compensate", *args], capture_output=True, text=True,
                          timeout=900)  # a hang guard: training mlp-mnist takes minutes on a loaded 2-core machine


def test_fit_show_eval_and_bad_input(tmp_path):
    out = tmp_path / "c.npz"
    fit = _run("fit", "--model", "mlp-mnist", "--hardware", "pcm", "--method", "gdc,bn", "--bn-images", "64",
               "--cache", str(tmp_path), "--out", str(out))
    assert fit.returncode == 0, fit.stderr
    assert "bn: 50176 bytes" in fit.stdout  # 64 images x 784 pixels, uint8
    show = _run("show", str(out))
    # 784-256-BN-128-BN-10 at T=512: 2 + 1 + 1 tiles, one float32 each
    assert show.returncode == 0 and "gdc: 16 bytes" in show.stdout
    nobn = _run("fit", "--model", "mlp-digits", "--method", "bn", "--cache", str(tmp_path), "--out",
                str(tmp_path / "nobn.npz"))
    assert nobn.returncode == 2 and "needs a model with BatchNorm" in nobn.stderr
    assert not (tmp_path / "nobn.npz").exists()
    ev = _run("eval", str(out), "--drift-time", "10y", "--cache", str(tmp_path))
    assert ev.returncode == 0 and "10 years" in ev.stdout, ev.stderr
    # each method added in turn: without, gdc, + bn
    assert "without" in ev.stdout and "+ bn" in ev.stdout
    bad = _run("fit", "--method", "nope", "--out", str(tmp_path / "x.npz"))
    assert bad.returncode == 2 and "unknown method" in bad.stderr
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    junk = _run("show", str(tmp_path / "junk.npz"))
    assert junk.returncode == 2 and "truncated or foreign" in junk.stderr
