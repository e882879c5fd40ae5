import subprocess
import sys


def test_core_imports_without_gui_modules():
    """The core must work where napari, Qt and magicgui cannot even be imported."""
    code = """
import sys
for name in ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt"):
    sys.modules[name] = None  # any import of these now fails
import pkgutil, importlib, napari_frugalseg.core as core
for m in pkgutil.iter_modules(core.__path__):
    importlib.import_module("napari_frugalseg.core." + m.name)
import napari_frugalseg.cli
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
