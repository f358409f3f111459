"""JSON Schemas of the events, generated from the models, for subscribers in other languages.

The schema describes the decoded msgpack map (msgpack and JSON share the data model for
the plain types events use). Regenerate after changing a model:

    python -m events.schema            # writes events/schemas/<Type>.v<N>.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from events.codec import ADDRESS_MODELS, ALL_MODELS, CURRENT_VERSIONS
from events.subjects import RANGES_SUBJECT

__all__ = ["SCHEMA_DIR", "render", "schemas"]

SCHEMA_DIR = Path(__file__).parent / "schemas"


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, one per event type at its current version."""
    result = {}
    for event_type, model in ALL_MODELS.items():
        version = CURRENT_VERSIONS[event_type]
        if event_type in ADDRESS_MODELS:
            subject = "skyflow.addr.<ip|nodeport>.<address>"
        elif event_type == "AddressRangesSet":
            subject = RANGES_SUBJECT
        else:
            subject = "skyflow.svc.<namespace>.<name>"
        schema = model.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://skyflow.io/schemas/{event_type}.v{version}.json"
        schema["description"] = (
            f"{event_type} version {version}: one msgpack map in the stream SKYFLOW_SERVICES "
            f"on the subject {subject}. " + (model.__doc__ or "").strip()
        )
        result[f"{event_type}.v{version}.json"] = schema
    return result


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, schema in schemas().items():
        (SCHEMA_DIR / name).write_text(render(schema))
        print(f"wrote {SCHEMA_DIR / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
