"""A studio stage run by Blender: opens the farm's LOD0 and writes what a technical artist checks.

Runs as `python3.11 asset-report.py -- <lod0.glb> <report.json>` with the provisioned `bpy` module on
PYTHONPATH, or as `blender --background --factory-startup --python asset-report.py -- <lod0.glb> <report.json>`
with a studio's own Blender. Prints `STEP <done>/<total> <what>` lines (the stage's progress pattern).
Exit 65 (EX_DATAERR): Blender cannot read the file, which no retry changes.
"""

import json
import sys

import bpy

STEPS = 4
EXIT_BAD_INPUT = 65


def step(done, what):
    print(f"STEP {done}/{STEPS} {what}", flush=True)


def main(argv):
    args = argv[argv.index("--") + 1 :] if "--" in argv else argv[1:]
    if len(args) != 2:
        print("usage: asset-report.py -- <model.glb> <report.json>", file=sys.stderr)
        return 2
    model, report_path = args
    bpy.ops.wm.read_factory_settings(use_empty=True)
    step(1, f"Opening {model}")
    try:
        bpy.ops.import_scene.gltf(filepath=model)
    except RuntimeError as err:
        print(f"Blender cannot read {model}: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    meshes = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    if not meshes:
        print(f"{model} has no mesh", file=sys.stderr)
        return EXIT_BAD_INPUT
    step(2, f"Measuring {len(meshes)} meshes")
    corners = [o.matrix_world @ v.co for o in meshes for v in o.data.vertices]
    size = [max(c[i] for c in corners) - min(c[i] for c in corners) for i in range(3)]
    step(3, "Checking names, UVs and materials")
    objects = [
        {
            "name": o.name,
            "vertices": len(o.data.vertices),
            "polygons": len(o.data.polygons),
            "uvLayers": len(o.data.uv_layers),
            "materials": [m.name for m in o.data.materials if m],
            "scaleApplied": all(abs(s - 1) < 1e-6 for s in o.scale),
        }
        for o in meshes
    ]
    warnings = [f"{o['name']} has no UV layer" for o in objects if o["uvLayers"] == 0]
    warnings += [f"{o['name']} has no material" for o in objects if not o["materials"]]
    report = {
        "blender": bpy.app.version_string,
        "model": model.rsplit("/", 1)[-1],
        "sizeMeters": [round(s, 4) for s in size],
        "objects": objects,
        "warnings": warnings,
    }
    with open(report_path, "w", encoding="utf-8") as out:
        json.dump(report, out, indent=2)
    step(4, f"Report written: {len(objects)} meshes, {len(warnings)} warnings")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
