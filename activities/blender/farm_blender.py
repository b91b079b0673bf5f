"""What the asset-farm Blender scripts share: their arguments, progress lines and failures.

Each script runs the same way under a studio's Blender (``blender --background --factory-startup --python
script.py -- args``) and under CPython with the ``bpy`` module (``python3.11 script.py -- args``): the
arguments are whatever follows ``--``. The runner (activities/tools/blender.ts) reads stdout line by line:

* ``ASSET_FARM_PROGRESS <done>/<total> <message>`` is progress;
* ``ASSET_FARM_FAILED <code> <message>`` names why the input can never work, and the script exits with
  EXIT_BAD_INPUT, so the job fails without a retry.
Anything else (Blender's own chatter) is only kept for the failure's last lines.
"""

import sys

# Exit status of a script that was given an input it cannot use; anything else non-zero is the farm's fault.
EXIT_BAD_INPUT = 3


def script_args():
    """The script's own arguments: everything after ``--``."""
    argv = sys.argv
    return argv[argv.index("--") + 1 :] if "--" in argv else argv[1:]


def progress(done, total, message):
    print(f"ASSET_FARM_PROGRESS {done}/{total} {message}", flush=True)


def fail(code, message):
    """Ends the script: the input cannot be used (code is a stable word, message is for the artist)."""
    print(f"ASSET_FARM_FAILED {code} {' '.join(str(message).split())}", flush=True)
    sys.stdout.flush()
    sys.exit(EXIT_BAD_INPUT)


def quiet_operator(operator, **kwargs):
    """Runs a bpy operator; Blender's reports (RuntimeError) come back as the error's text."""
    try:
        result = operator(**kwargs)
    except RuntimeError as err:
        return str(err).strip() or "Blender reported an error"
    if "FINISHED" not in result:
        return f"Blender did not finish ({', '.join(sorted(result))})"
    return None
