"""Every sentence the panel shows is in zoomapp/texts.py (docs/CONSENT.md: the texts live there "and nowhere else",
so they can be translated): a refusal's message, which the panel shows as the server wrote it, included."""

import ast
from pathlib import Path

from zoomapp import texts

CONSENT = Path(texts.__file__).resolve().parent / "consent"
# Each refusal's argument that people read: Refused(code, message), TokenRefused(reason).
MESSAGE_ARGUMENT = {"Refused": 1, "TokenRefused": 0}


def _spelled_out(node):
    return isinstance(node, ast.JoinedStr) or isinstance(node, ast.Constant) and isinstance(node.value, str)


def test_no_refusal_of_the_panel_spells_its_message_itself():
    spelled = []
    for path in CONSENT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            index = MESSAGE_ARGUMENT.get(getattr(node.func, "id", None)) if isinstance(node, ast.Call) else None
            if index is not None and _spelled_out(node.args[index]):
                spelled.append(f"{path.relative_to(CONSENT.parent.parent)}:{node.lineno}")
            if isinstance(node, ast.Dict):  # a refusal sent on the panel's socket: {"type": "refused", ...}
                fields = {key.value: value for key, value in zip(node.keys, node.values)
                          if isinstance(key, ast.Constant)}
                if "message" in fields and _spelled_out(fields["message"]):
                    spelled.append(f"{path.relative_to(CONSENT.parent.parent)}:{node.lineno}")
    assert spelled == []


def test_the_page_carries_the_panels_texts_and_a_refusal_brings_its_own():
    sent = texts.panel_texts()
    assert sent["DISCLOSURE"] == texts.DISCLOSURE
    assert not [name for name in sent if name.startswith("REFUSED_")]
