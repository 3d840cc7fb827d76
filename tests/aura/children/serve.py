"""Child: a runtime serving a data directory while a mission runs.

argv: data_dir mission_name mission_id args_json. Prints READY once the
mission is started, then RESULT <json> when it finishes (or ERROR <text>).
"""

import sys

import msgspec

import aura
from tests.aura import missions


def main() -> None:
    path, name, mission_id, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    fn = getattr(missions, name)
    with aura.Runtime(path, missions=[fn]) as rt:
        handle = rt.start(fn, *msgspec.json.decode(args), mission_id=mission_id)
        print("READY", flush=True)
        try:
            result = handle.result(timeout=120)
        except aura.AuraError as err:
            print(f"ERROR {err}", flush=True)
            return
        print("RESULT " + msgspec.json.encode(result).decode(), flush=True)


if __name__ == "__main__":
    main()
