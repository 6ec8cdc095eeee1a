"""One answer to "can torch.compile build C++ here?" for both backends that compile on a CPU: the
compiler inductor calls ($CXX, else g++), found on PATH, or none."""

from __future__ import annotations

from runner.worker.environment import cpp_compiler


def _tool(folder, name):
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_the_compiler_is_cxx_else_gxx_on_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CXX", raising=False)
    assert cpp_compiler() is None
    _tool(tmp_path, "c++")  # on PATH, but not what inductor calls
    assert cpp_compiler() is None
    gxx = _tool(tmp_path, "g++")
    assert cpp_compiler() == str(gxx)
    clang = _tool(tmp_path, "clang++")
    monkeypatch.setenv("CXX", "clang++ -O2")  # a command with flags: its first word is the compiler
    assert cpp_compiler() == str(clang)
    monkeypatch.setenv("CXX", str(tmp_path / "missing-cxx"))  # named but absent: no fallback to g++
    assert cpp_compiler() is None
