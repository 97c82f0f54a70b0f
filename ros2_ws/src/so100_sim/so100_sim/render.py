"""Headless offscreen rendering of a model's cameras: RGB and depth in one pass.

MuJoCo's ``Renderer`` draws the scene twice to get depth; here one ``mjr_render``
fills both buffers and ``mjr_readPixels`` reads them together (DESIGN.md §7).
Render cost is set deliberately: shadows, reflections, skybox and multisampling
are off by default (each is a parameter) because on software GL they decide the
frame rate. The GL backend is EGL, with OSMesa as fallback; ``MUJOCO_GL`` forces one.

Dependency rule: no ROS runtime imports; numpy and mujoco only.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from so100_sim.errors import SimError

log = logging.getLogger(__name__)
logging.getLogger("OpenGL.acceleratesupport").setLevel(logging.WARNING)  # "No OpenGL_accelerate" is noise

_PROBE = "from mujoco.{b} import GLContext; c = GLContext(8, 8); c.make_current(); c.free()"


def select_gl_backend() -> str:
    """The GL backend to use: ``MUJOCO_GL`` if set, else EGL if it works here, else OSMesa.

    The choice is made before OpenGL is imported (PyOpenGL cannot switch platforms
    afterwards), by trying EGL in a short child process; it is stored in ``MUJOCO_GL``
    so child processes inherit it.
    """
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    if chosen:
        return chosen
    for backend in ("egl", "osmesa"):
        probe = subprocess.run([sys.executable, "-c", _PROBE.format(b=backend)], capture_output=True, timeout=60)
        if probe.returncode == 0:
            os.environ["MUJOCO_GL"] = backend
            return backend
        log.debug("GL backend %s unavailable: %s", backend, probe.stderr.decode(errors="replace")[-300:])
    raise SimError(
        "no headless OpenGL backend works: install EGL (libegl1 libgl1-mesa-dri) or OSMesa (libosmesa6), "
        "e.g. `sudo apt-get install libegl1 libgl1-mesa-dri libosmesa6` (./setup.sh does it as root)"
    )


def _gl_context_class(backend: str) -> Any:
    if backend == "egl":
        from mujoco.egl import GLContext
    elif backend == "osmesa":
        from mujoco.osmesa import GLContext
    elif backend == "glfw":
        from mujoco.glfw import GLContext
    else:
        raise SimError(f"MUJOCO_GL={backend!r} is not a headless backend; use egl or osmesa")
    return GLContext


@dataclass(frozen=True)
class RenderSettings:
    """What a frame costs. The defaults are the cheap, deliberate choice for software GL."""

    width: int = 640
    height: int = 480
    shadows: bool = False
    reflections: bool = False
    skybox: bool = False
    msaa_samples: int = 0  # offscreen multisampling
    shadow_size: int = 1024  # shadow map size when shadows are on

    def __post_init__(self) -> None:
        if self.width < 8 or self.height < 8:
            raise SimError(f"render size {self.width}x{self.height} is too small")


class CameraRenderer:
    """Renders the model's named cameras offscreen at one resolution."""

    def __init__(self, model: Any, settings: RenderSettings | None = None) -> None:
        settings = settings or RenderSettings()
        backend = select_gl_backend()
        import mujoco

        self._mj = mujoco
        self.model = model
        self.settings = settings
        w, h = settings.width, settings.height
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, w)
        model.vis.global_.offheight = max(model.vis.global_.offheight, h)
        model.vis.quality.offsamples = settings.msaa_samples
        model.vis.quality.shadowsize = settings.shadow_size
        self.backend = backend
        self._gl = _gl_context_class(backend)(w, h)
        self._gl.make_current()
        self._ctx = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._ctx)
        self._scene = mujoco.MjvScene(model, maxgeom=2000)
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = int(settings.shadows)
        self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = int(settings.reflections)
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = int(settings.skybox)
        self._opt = mujoco.MjvOption()
        self._cam = mujoco.MjvCamera()
        self._cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._viewport = mujoco.MjrRect(0, 0, w, h)
        self._rgb = np.empty((h, w, 3), dtype=np.uint8)
        self._depth = np.empty((h, w), dtype=np.float32)
        extent = model.stat.extent
        self._near = model.vis.map.znear * extent
        self._far = model.vis.map.zfar * extent

    def camera_id(self, name: str) -> int:
        cid = self._mj.mj_name2id(self.model, self._mj.mjtObj.mjOBJ_CAMERA, name)
        if cid < 0:
            cams = [self._mj.mj_id2name(self.model, self._mj.mjtObj.mjOBJ_CAMERA, i) for i in range(self.model.ncam)]
            raise SimError(f"no camera named {name!r}; the scene has {cams}")
        return cid

    def render(self, data: Any, camera: str | int, *, depth: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """(rgb uint8 HxWx3, depth in metres float32 HxW or None); fresh arrays each call."""
        mj = self._mj
        self._gl.make_current()
        self._cam.fixedcamid = camera if isinstance(camera, int) else self.camera_id(camera)
        mj.mjv_updateScene(self.model, data, self._opt, None, self._cam, mj.mjtCatBit.mjCAT_ALL, self._scene)
        mj.mjr_render(self._viewport, self._scene, self._ctx)
        mj.mjr_readPixels(self._rgb, self._depth if depth else None, self._viewport, self._ctx)
        rgb = np.flipud(self._rgb).copy()  # OpenGL rows start at the bottom
        if not depth:
            return rgb, None
        # depth buffer value -> metres along the optical axis (MuJoCo's projection)
        z = self._near / (1.0 - np.flipud(self._depth) * (1.0 - self._near / self._far))
        return rgb, z.astype(np.float32)

    def intrinsics(self, camera: str | int) -> np.ndarray:
        """3x3 pinhole matrix of a camera at this resolution (square pixels)."""
        cid = camera if isinstance(camera, int) else self.camera_id(camera)
        fovy = np.deg2rad(self.model.cam_fovy[cid])
        w, h = self.settings.width, self.settings.height
        f = 0.5 * h / np.tan(0.5 * fovy)
        return np.array([[f, 0.0, 0.5 * w], [0.0, f, 0.5 * h], [0.0, 0.0, 1.0]])

    def close(self) -> None:
        if getattr(self, "_ctx", None) is not None:
            self._ctx.free()
            self._ctx = None
        if getattr(self, "_gl", None) is not None:
            self._gl.free()
            self._gl = None

    def __enter__(self) -> CameraRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def depth_to_d435_mm(depth_m: np.ndarray, *, min_m: float = 0.2, max_m: float = 10.0) -> np.ndarray:
    """Metres -> 16UC1 millimetres as a D435 reports them: 0 outside its range."""
    mm = np.rint(depth_m * 1000.0)
    valid = (depth_m >= min_m) & (depth_m <= max_m)
    return np.where(valid, mm, 0).astype(np.uint16)
