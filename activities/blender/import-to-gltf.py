"""Imports an FBX, OBJ (+MTL and textures) or .blend file and exports the scene as one GLB.

Usage: <blender or python3.11> import-to-gltf.py -- <input file> <output.glb>
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bpy  # noqa: E402

from farm_blender import fail, progress, quiet_operator, script_args  # noqa: E402

STEPS = 4


def read_scene(source):
    ext = os.path.splitext(source)[1].lower()
    if ext == ".blend":
        # use_scripts=False: a .blend from outside must never run the Python it may carry.
        return quiet_operator(bpy.ops.wm.open_mainfile, filepath=source, load_ui=False, use_scripts=False)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    if ext == ".fbx":
        return quiet_operator(bpy.ops.import_scene.fbx, filepath=source)
    if ext == ".obj":
        return quiet_operator(bpy.ops.wm.obj_import, filepath=source)
    fail("UNSUPPORTED_FORMAT", f"{os.path.basename(source)}: Blender import reads .fbx, .obj and .blend files")
    return None


def main():
    args = script_args()
    if len(args) != 2:
        print("usage: import-to-gltf.py -- <input> <output.glb>", file=sys.stderr)
        sys.exit(2)
    source, output = args
    name = os.path.basename(source)
    progress(1, STEPS, f"Reading {name} with Blender {bpy.app.version_string}")
    problem = read_scene(source)
    if problem:
        # Blender names the file by its path on this machine: the artist knows it by its name.
        reason = problem.replace(os.path.abspath(source), name).replace(source, name).removeprefix("Error: ")
        fail("UNREADABLE_MODEL", f"Blender cannot read {name}: {reason}")
    meshes = [o for o in bpy.data.objects if o.type == "MESH" and o.data and len(o.data.polygons) > 0]
    if not meshes:
        fail("NO_GEOMETRY", f"{name} has no mesh with faces; export the model with its geometry")
    polygons = sum(len(o.data.polygons) for o in meshes)
    progress(2, STEPS, f"Read {len(meshes)} mesh{'es' if len(meshes) != 1 else ''}, {polygons:,} faces")
    # Images an FBX embeds or a .blend packs are written into the GLB; those an OBJ's MTL names are read from beside it.
    progress(3, STEPS, "Writing glTF")
    # Written beside the output and renamed into place: a reader never sees half a GLB. (The exporter
    # always ends the name in .glb, so the usual "<file>.<id>.tmp" cannot be used.)
    partial = f"{output}.partial.glb"
    problem = quiet_operator(
        bpy.ops.export_scene.gltf,
        filepath=partial,
        export_format="GLB",
        use_selection=False,
        export_apply=True,
        export_image_format="AUTO",
        export_yup=True,
    )
    if problem or not os.path.exists(partial):
        # The scene was read: not writing it is the farm's problem (exit 1 is retried).
        print(f"glTF export failed: {problem or 'no file written'}", file=sys.stderr)
        sys.exit(1)
    os.replace(partial, output)
    progress(4, STEPS, f"Wrote {os.path.getsize(output):,} bytes of glTF")


main()
