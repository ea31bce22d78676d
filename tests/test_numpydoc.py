"""numpydoc validation of every public docstring: classes, their methods and
properties, and the functions of skattn and skattn.functional."""

# SPDX-License-Identifier: BSD-3-Clause

import inspect

import pytest

import skattn
import skattn.functional
import skattn.utils

numpydoc_validate = pytest.importorskip("numpydoc.validate")

# The conventions skattn follows where numpydoc's differ, as scikit-learn does:
# no required extended summary (ES01) or See Also (SA01), named return values
# (RT02), and summaries that may open with a code span or a formula (GL01, GL02).
IGNORED = {"ES01", "SA01", "RT02", "GL01", "GL02"}


def _public_names():
    names = []
    for module, prefix in (
        (skattn, "skattn"),
        (skattn.functional, "skattn.functional"),
        (skattn.utils, "skattn.utils"),
    ):
        for name in module.__all__:
            obj = getattr(module, name)
            if not callable(obj):
                continue  # __version__
            names.append(f"{prefix}.{name}")
            if not inspect.isclass(obj):
                continue
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if callable(value) or isinstance(value, (property, classmethod)):
                    names.append(f"{prefix}.{name}.{attr}")
            # methods the class inherits from skattn's bases
            for base in obj.__mro__[1:]:
                if not base.__module__.startswith("skattn"):
                    continue
                for attr, value in vars(base).items():
                    if attr.startswith("_") or attr in vars(obj):
                        continue
                    if callable(value) or isinstance(value, property):
                        names.append(f"{prefix}.{name}.{attr}")
    return sorted(set(names))


PUBLIC_NAMES = _public_names()


def test_every_public_object_is_validated():
    assert "skattn.NadarayaWatsonRegressor.predict" in PUBLIC_NAMES
    assert "skattn.AttentionPooling.attention_weights" in PUBLIC_NAMES
    assert "skattn.functional.additive_attention" in PUBLIC_NAMES
    assert len(PUBLIC_NAMES) > 40


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_docstring_is_valid(name):
    result = numpydoc_validate.validate(name)
    errors = [
        f"{code}: {message}"
        for code, message in result["errors"]
        if code not in IGNORED
    ]
    assert not errors, f"{name}:\n" + "\n".join(errors)
