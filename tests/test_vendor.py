"""The vendored JavaScript matches vendor/VERSIONS (package, licence, sha256), and nothing unlisted ships."""
import hashlib
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "vendor"


def entries():
    rows = [line.split() for line in (VENDOR / "VERSIONS").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    return {path: (pkg, lic, sha) for path, pkg, lic, sha in rows}


def test_every_listed_file_has_its_recorded_sha256():
    listed = entries()
    assert "widgets/embed-amd.js" in listed and "widgets/require.js" in listed and "mathjax/tex-mml-chtml.js" in listed
    for path, (_, _, sha) in listed.items():
        assert hashlib.sha256((VENDOR / path).read_bytes()).hexdigest() == sha, f"{path} changed: run tools/vendor_js.sh"


def test_every_shipped_file_is_listed_or_a_licence():
    listed = entries()
    for f in VENDOR.rglob("*"):
        rel = f.relative_to(VENDOR).as_posix()
        if f.is_file() and rel != "VERSIONS" and not rel.endswith(".txt"):
            assert rel in listed, f"{rel} is not recorded in vendor/VERSIONS"


def test_versions_and_licences():
    listed = entries()
    assert listed["widgets/embed-amd.js"][:2] == ("@jupyter-widgets/html-manager@1.0.15", "BSD-3-Clause")
    assert listed["widgets/require.js"][:2] == ("requirejs@2.3.8", "MIT")
    assert listed["mathjax/tex-mml-chtml.js"][:2] == ("mathjax@3.2.2", "Apache-2.0")
    assert listed["axe/axe.min.js"][:2] == ("axe-core@4.14.1", "MPL-2.0")     # the tests' accessibility engine
    assert "axe.version=\"4.14.1\"" in (VENDOR / "axe/axe.min.js").read_text().replace(" ", "")
    for licence, phrase in [("axe/LICENSE-axe-core.txt", "Mozilla Public License, version 2.0"),
                            ("widgets/LICENSE-html-manager.txt", "BSD 3-Clause"),
                            ("widgets/LICENSE-requirejs.txt", "MIT License"),
                            ("mathjax/LICENSE-mathjax.txt", "Apache License")]:
        assert phrase in (VENDOR / licence).read_text()


def test_no_folder_named_static_in_book_root():
    """Jupyter Book 1 injects every .js under html_static_path into every page when a _static/ folder exists."""
    assert not (VENDOR.parent / "_static").exists()
