"""Renders a turntable of a glTF model with Cycles on the CPU: one PNG a frame, the camera circling the model.

Usage: <blender or python3.11> render-turntable.py -- <model.glb> <frames folder> <frames> <size> <samples>
       <seconds a frame at most> <threads>
Writes frame-000.png … into the frames folder; the runner assembles them into the animated WebP.
"""

import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bpy  # noqa: E402
from mathutils import Vector  # noqa: E402

from farm_blender import fail, progress, quiet_operator, script_args  # noqa: E402

# The camera looks down on the model at this angle, as review turntables usually do.
ELEVATION = math.radians(20)
LENS_MM = 50


def bounds_of(meshes):
    """Centre and radius of the sphere around every mesh's world-space bounding box."""
    corners = [o.matrix_world @ Vector(c) for o in meshes for c in o.bound_box]
    low = Vector((min(c.x for c in corners), min(c.y for c in corners), min(c.z for c in corners)))
    high = Vector((max(c.x for c in corners), max(c.y for c in corners), max(c.z for c in corners)))
    return (low + high) / 2, max((high - low).length / 2, 1e-6)


def set_up_scene(size, samples, seconds, threads):
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_adaptive_sampling = False
    # Bounded time: a frame stops refining after this many seconds whatever its samples.
    scene.cycles.time_limit = seconds
    scene.cycles.use_denoising = False
    scene.cycles.max_bounces = 4
    scene.render.threads_mode = "FIXED"
    scene.render.threads = threads
    scene.render.resolution_x = size
    scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.view_settings.view_transform = "Standard"
    world = bpy.data.worlds.new("turntable") if scene.world is None else scene.world
    scene.world = world
    if world.node_tree is None:
        world.use_nodes = True  # Blender 4 worlds start without nodes; Blender 5 always has them.
    background = world.node_tree.nodes.get("Background")
    if background is not None:
        # A soft grey studio light from every side, so no face of the model is black.
        background.inputs["Color"].default_value = (0.55, 0.56, 0.6, 1)
        background.inputs["Strength"].default_value = 1.0
    return scene


def main():
    args = script_args()
    if len(args) != 7:
        print("usage: render-turntable.py -- <model.glb> <frames dir> <frames> <size> <samples> <seconds> <threads>", file=sys.stderr)
        sys.exit(2)
    model, frames_dir = args[0], args[1]
    frames, size, samples, threads = int(args[2]), int(args[3]), int(args[4]), int(args[6])
    seconds = float(args[5])
    total = frames + 1
    progress(0, total, "Loading the model into Blender")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    problem = quiet_operator(bpy.ops.import_scene.gltf, filepath=model)
    if problem:
        fail("UNREADABLE_MODEL", f"Blender cannot read {os.path.basename(model)}: {problem}")
    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    if not meshes:
        fail("NO_GEOMETRY", f"{os.path.basename(model)} has no mesh to render")
    bpy.context.view_layer.update()
    centre, radius = bounds_of(meshes)
    scene = set_up_scene(size, samples, seconds, threads)

    camera_data = bpy.data.cameras.new("turntable")
    camera_data.lens = LENS_MM
    camera = bpy.data.objects.new("turntable", camera_data)
    scene.collection.objects.link(camera)
    scene.camera = camera
    target = bpy.data.objects.new("turntable-target", None)
    target.location = centre
    scene.collection.objects.link(target)
    track = camera.constraints.new(type="TRACK_TO")
    track.target = target
    track.track_axis = "TRACK_NEGATIVE_Z"
    track.up_axis = "UP_Y"
    # Far enough that the bounding sphere fills the frame with a margin, whatever the model's scale.
    half_fov = math.atan(camera_data.sensor_width / (2 * LENS_MM))
    distance = radius / math.sin(half_fov) * 1.1
    camera_data.clip_start = distance / 1000
    camera_data.clip_end = distance * 10

    sun_data = bpy.data.lights.new("key", type="SUN")
    sun_data.energy = 3.0
    sun = bpy.data.objects.new("key", sun_data)
    scene.collection.objects.link(sun)

    os.makedirs(frames_dir, exist_ok=True)
    progress(1, total, f"Loaded; rendering {frames} frames at {size}×{size}, {samples} samples")
    for frame in range(frames):
        angle = 2 * math.pi * frame / frames
        offset = Vector((math.cos(angle) * math.cos(ELEVATION), math.sin(angle) * math.cos(ELEVATION), math.sin(ELEVATION)))
        camera.location = centre + offset * distance
        # The key light comes from over the camera's left shoulder on every frame.
        sun.rotation_euler = (math.radians(50), 0, angle - math.radians(30) + math.pi / 2)
        scene.render.filepath = os.path.join(frames_dir, f"frame-{frame:03d}.png")
        bpy.ops.render.render(write_still=True)
        progress(frame + 2, total, f"Rendered frame {frame + 1} of {frames}")


main()
