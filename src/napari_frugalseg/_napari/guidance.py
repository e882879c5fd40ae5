"""Label here next: the proposed squares as a Shapes layer the user steps through.

The squares are found in the prediction worker (``proposer``: from the prediction's
uncertainty and a copy of the scribbles taken on the GUI thread); the rest runs on the GUI
thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image, Shapes

from ..core.errors import FrugalsegError
from ..core.guidance import Proposal, propose
from ..core.predict import Prediction
from . import layers as L

if TYPE_CHECKING:
    from .controller import Controller

PROPOSALS = "frugalseg_proposals"
STACK = "frugalseg_stack_shape"  # the axes before the plane, to find a proposal's plane


def _rectangle(p: Proposal, shape: tuple[int, ...]) -> np.ndarray:
    """The square in the layer's coordinates (its plane's index first, for a stack)."""
    ys, xs = p.box
    corners = [(ys.start, xs.start), (ys.start, xs.stop), (ys.stop, xs.stop), (ys.stop, xs.start)]
    return np.array([L.plane_index(shape, p.z) + (y, x) for y, x in corners], float)


def proposer(ctl: Controller, image: Image, n: int = 5,
             size: int = 64) -> Callable[[Prediction], list[Proposal]]:
    """For the worker: the ``n`` most uncertain squares of a prediction of ``image`` that are
    not scribbled yet (the scribbles as they are now, copied here on the GUI thread)."""
    scribbles = L.find(ctl.viewer, image, "scribbles")
    labelled = None if scribbles is None else np.asarray(scribbles.data) > 0
    return lambda pred: propose(pred.uncertainty, n, size, labelled=labelled)


def show_proposals(ctl: Controller, image: Image, found: list[Proposal]) -> str:
    """Put the squares into the image's 'label here next' layer (replacing earlier ones) and
    go to the first; returns its description."""
    layer = L.find(ctl.viewer, image, "proposals")
    shape = L.spatial_shape(image)
    if layer is None:
        ndim = len(shape)
        layer = ctl.viewer.add_shapes(
            name=image.name + L.SUFFIX["proposals"], ndim=ndim, edge_color="yellow",
            face_color="transparent", edge_width=3, scale=image.scale[-ndim:],
            translate=image.translate[-ndim:], metadata={L.META: image.name, "role": "proposals"},
        )
    layer.data = []  # (setting data and then shape_type fails in napari for more than 3 axes)
    layer.add_rectangles([_rectangle(p, shape) for p in found])
    layer.metadata[PROPOSALS] = [asdict(p) for p in found]
    layer.metadata[STACK] = list(shape[:-2])
    return go_to(ctl, layer, 0)


def go_to(ctl: Controller, layer: Shapes, index: int) -> str:
    """Centre the view on proposal ``index`` (wrapping around); returns a one-line description."""
    proposals = layer.metadata.get(PROPOSALS) or []
    if not proposals:
        raise FrugalsegError(f"layer '{layer.name}' holds no proposals: ask for suggestions first")
    index %= len(proposals)
    p = Proposal(**proposals[index])
    layer.metadata["current"] = index
    plane = L.plane_index([*layer.metadata.get(STACK, ()), 0, 0], p.z)
    world = layer.data_to_world([*plane, p.y, p.x])
    for axis in range(-len(world), -2):
        ctl.viewer.dims.set_point(ctl.viewer.dims.ndim + axis, world[axis])
    ctl.viewer.scene.camera.center = tuple(world[-2:])
    layer.selected_data = {index}
    where = {0: "", 1: f"slice {p.z}, "}.get(len(plane), f"slice {plane}, ")
    text = (f"label here next {index + 1} of {len(proposals)}: {where}y {p.y}, x {p.x} "
            f"(uncertainty {p.score:.2f})")
    ctl.say(text)
    return text


def step(ctl: Controller, layer: Shapes | None, delta: int) -> str:
    if layer is None:
        raise FrugalsegError("no suggestions yet: press 'Suggest where to label' first")
    return go_to(ctl, layer, int(layer.metadata.get("current", 0)) + delta)
