"""RViz markers for the people of one image: joint spheres, limb lines and score labels.

Geometry. Markers live in the image's own frame (header.frame_id, an optical frame: x right,
y down, z forward). With a registered depth image (node parameter ``depth.enabled``) the joints
and limbs are drawn at their measured 3D positions (only keypoints whose position was measured;
``litepose_ros.depth``). Without depth, every keypoint (u, v) in source pixels is placed on the
plane z = ``depth`` metres in front of the camera:

- with camera_info: back-projected through the pinhole K, ``x = (u - cx) / fx * depth``,
  ``y = (v - cy) / fy * depth`` (K is rescaled when camera_info was calibrated at another
  resolution than the image, e.g. a binned or resized stream). The skeleton then overlays the
  person in RViz's Camera display and has a metric size at that depth;
- without camera_info (or with an all-zero, uncalibrated K): a virtual camera whose focal length
  equals the image width in pixels (a 53 degree horizontal field of view) centred on the image,
  i.e. one pixel is ``depth / image_width`` metres (at the default depth of 3 m and a 768 px
  wide image, 3.9 mm).

Markers per published image (a MarkerArray):

- first a DELETEALL marker, so people who left the image vanish at once;
- per person, ranked by score (rank r = 0, 1, ...): ``joints`` (SPHERE_LIST of the valid
  keypoints), ``limbs`` (LINE_LIST, one segment per skeleton edge whose two keypoints are
  valid; always an even number of points) and optionally ``labels`` (TEXT_VIEW_FACING with the
  person score, "#12 0.83" for a person of track 12, above the highest valid keypoint). The
  namespace says what a marker is and id = r, so (ns, id) is unique and stable; the colour is that
  of the person's track id when tracked, else of the rank, the same as in the annotated image
  (``litepose_ros.people.colour_indices`` and ``person_rgb``).
- every marker also carries a lifetime, so they disappear when the node stops publishing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from litepose_ros.depth import KeypointPositions
from litepose_ros.people import NO_ID, colour_indices, person_label, person_rgb

JOINTS_NS = "joints"
LIMBS_NS = "limbs"
LABELS_NS = "labels"


@dataclass(frozen=True)
class MarkerStyle:
    """How the markers look; sizes in metres, lifetime in seconds (0 = until deleted)."""

    depth: float = 3.0
    joint_diameter: float = 0.05
    line_width: float = 0.02
    show_labels: bool = True
    label_height: float = 0.1
    lifetime: float = 1.0
    alpha: float = 1.0

    def __post_init__(self) -> None:
        for name in ("depth", "joint_diameter", "line_width", "label_height"):
            if not getattr(self, name) > 0:
                raise ValueError(f"marker {name} must be > 0, got {getattr(self, name)}")
        if self.lifetime < 0:
            raise ValueError(f"marker lifetime must be >= 0 seconds, got {self.lifetime}")
        if not 0 < self.alpha <= 1:
            raise ValueError(f"marker alpha must be in (0, 1], got {self.alpha}")


# Focal lengths accepted in camera_info K, as multiples of the image's long side (fisheye lenses
# are about 0.3, long telephoto lenses about 20); outside, K is refused as broken.
FOCAL_RANGE = (0.01, 1000.0)


def camera_info_problem(k, width: int, height: int) -> str | None:
    """Why CameraInfo.k cannot be used to place markers (non-finite values, a focal length that is
    not positive or outside FOCAL_RANGE times the long side, a principal point far outside the
    image), or None when it can. An all-zero K (uncalibrated) is no problem: it means the
    documented fallback scaling. ``width``/``height``: camera_info's size (0: unknown)."""
    fx, cx, fy, cy = (float(k[i]) for i in (0, 2, 4, 5))
    if fx == fy == cx == cy == 0.0:
        return None
    side = float(max(width, height, 1))
    for name, value in (("fx", fx), ("fy", fy)):
        if not math.isfinite(value) or not FOCAL_RANGE[0] * side <= value <= FOCAL_RANGE[1] * side:
            return (
                f"{name} = {value:g} is not a focal length between {FOCAL_RANGE[0]:g} and "
                f"{FOCAL_RANGE[1]:g} times the image's long side ({side:g} px)"
            )
    for name, value, extent in (("cx", cx, float(width or side)), ("cy", cy, float(height or side))):
        if not math.isfinite(value) or not -10 * extent <= value <= 11 * extent:
            return f"{name} = {value:g} is not a principal point near the image (0 to {extent:g} px)"
    return None


@dataclass(frozen=True)
class PinholeIntrinsics:
    """fx, fy, cx, cy of the image the keypoints are in (pixels)."""

    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_camera_info(
        cls, k, info_width: int, info_height: int, image_width: int, image_height: int
    ) -> PinholeIntrinsics | None:
        """Intrinsics from CameraInfo.k (row-major 3x3) for an image of the given size.

        Returns None when K is uncalibrated (fx or fy not positive). When camera_info describes
        another resolution than the image (and both sizes are known), K is scaled to the image.
        """
        fx, cx, fy, cy = float(k[0]), float(k[2]), float(k[4]), float(k[5])
        if not (fx > 0 and fy > 0):
            return None
        if info_width > 0 and info_height > 0 and (info_width, info_height) != (image_width, image_height):
            sx, sy = image_width / info_width, image_height / info_height
            # Pixel centres at integer coordinates: scaling maps u + 0.5 to s (u + 0.5).
            return cls(fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5)
        return cls(fx, fy, cx, cy)

    @classmethod
    def virtual(cls, image_width: int, image_height: int) -> PinholeIntrinsics:
        """The documented fallback camera: focal length = image width, principal point at the centre."""
        focal = float(max(image_width, 1))
        return cls(focal, focal, (image_width - 1) / 2.0, (image_height - 1) / 2.0)


def back_project(keypoints_xy: np.ndarray, intrinsics: PinholeIntrinsics, depth: float) -> np.ndarray:
    """(..., 2) pixel coordinates to (..., 3) points on the plane z = depth (optical frame)."""
    xy = np.asarray(keypoints_xy, dtype=np.float64)
    x = (xy[..., 0] - intrinsics.cx) / intrinsics.fx * depth
    y = (xy[..., 1] - intrinsics.cy) / intrinsics.fy * depth
    return np.stack([x, y, np.full_like(x, depth)], axis=-1)


def person_color(rank: int, alpha: float = 1.0) -> ColorRGBA:
    """The colour of the person at this rank: ``litepose_ros.people.person_rgb``, the colour the
    annotated image draws the same person in."""
    r, g, b = person_rgb(rank)
    return ColorRGBA(r=r, g=g, b=b, a=alpha)


def _duration(seconds: float) -> Duration:
    whole = int(seconds)
    return Duration(sec=whole, nanosec=int(round((seconds - whole) * 1e9)))


def _points(xyz_rows) -> list[Point]:
    return [Point(x=x, y=y, z=z) for x, y, z in xyz_rows]


class MarkerArrayBuilder:
    """Builds the MarkerArray of each image, reusing Marker objects between images.

    Constructing a visualization_msgs/Marker costs about 20 us in Python (it builds a dozen nested
    messages); with three markers per person that is most of the marker time. The builder keeps
    one Marker per (namespace, rank) and refreshes its fields, so publish (serialise) each array
    before asking for the next one. Not thread-safe: one builder per publishing thread.
    """

    def __init__(self) -> None:
        self._markers: dict[tuple[str, int], Marker] = {}
        self._delete_all = Marker(action=Marker.DELETEALL)

    def _marker(self, namespace: str, rank: int, marker_type: int) -> Marker:
        marker = self._markers.get((namespace, rank))
        if marker is None:
            marker = Marker(ns=namespace, id=rank, type=marker_type, action=Marker.ADD)
            marker.pose.orientation.w = 1.0
            self._markers[namespace, rank] = marker
        return marker

    def build(
        self,
        keypoints: np.ndarray,
        scores: np.ndarray,
        valid: np.ndarray,
        *,
        edges,
        header,
        intrinsics: PinholeIntrinsics,
        style: MarkerStyle,
        ids: np.ndarray | None = None,
        positions: KeypointPositions | None = None,
    ) -> MarkerArray:
        """The MarkerArray for one image.

        keypoints (N, K, 2 or 3) in source pixels, already sorted by rank (best first); scores
        (N,); valid (N, K) bool; edges = (from, to) keypoint index pairs; header = the image's
        header with a non-empty frame_id; ids (N,) track ids or None (colour and label by id).
        positions: the keypoints' measured 3D positions (depth): joints and limbs are drawn where
        they are, only those with a measured position; without, every valid keypoint is drawn on
        the plane z = style.depth through its pixel.
        """
        self._delete_all.header = header
        markers = [self._delete_all]
        if len(keypoints) == 0:
            return MarkerArray(markers=markers)
        valid = np.asarray(valid, dtype=bool)
        if positions is None:
            points = back_project(np.asarray(keypoints)[..., :2], intrinsics, style.depth)
        else:
            points = np.asarray(positions.positions, dtype=np.float64)
            valid = valid & positions.valid
        edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        lifetime = _duration(style.lifetime)
        track_ids = [NO_ID] * len(points) if ids is None else np.asarray(ids, np.int64).reshape(-1).tolist()
        colours = colour_indices(len(points), None if ids is None else np.asarray(track_ids))
        for rank, (person_points, person_valid, score) in enumerate(
            zip(points, valid, np.asarray(scores, dtype=np.float64).tolist(), strict=True)
        ):
            if not person_valid.any():
                continue  # nothing confident to draw; the person is still in the PersonArray
            color = person_color(colours[rank], style.alpha)
            joints = self._marker(JOINTS_NS, rank, Marker.SPHERE_LIST)
            joints.header, joints.lifetime, joints.color = header, lifetime, color
            joints.scale.x = joints.scale.y = joints.scale.z = style.joint_diameter
            joints.points = _points(person_points[person_valid].tolist())
            markers.append(joints)

            limb_edges = edges[person_valid[edges[:, 0]] & person_valid[edges[:, 1]]]
            if len(limb_edges):
                limbs = self._marker(LIMBS_NS, rank, Marker.LINE_LIST)
                limbs.header, limbs.lifetime, limbs.color = header, lifetime, color
                limbs.scale.x = style.line_width
                limbs.points = _points(person_points[limb_edges.reshape(-1)].tolist())
                markers.append(limbs)

            if style.show_labels:
                top = person_points[person_valid]
                anchor = top[np.argmin(top[:, 1])]
                label = self._marker(LABELS_NS, rank, Marker.TEXT_VIEW_FACING)
                label.header, label.lifetime, label.color = header, lifetime, color
                label.text = person_label(score, track_ids[rank])
                label.pose.position.x = float(anchor[0])
                # Above the head: y points down in the optical frame.
                label.pose.position.y = float(anchor[1]) - 1.5 * style.label_height
                label.pose.position.z = float(anchor[2])
                label.scale.z = style.label_height
                markers.append(label)
        return MarkerArray(markers=markers)


def people_markers(
    keypoints: np.ndarray,
    scores: np.ndarray,
    valid: np.ndarray,
    *,
    edges,
    header,
    intrinsics: PinholeIntrinsics,
    style: MarkerStyle,
    ids: np.ndarray | None = None,
    positions: KeypointPositions | None = None,
) -> MarkerArray:
    """The MarkerArray for one image, built from fresh Marker objects (see MarkerArrayBuilder.build)."""
    return MarkerArrayBuilder().build(
        keypoints,
        scores,
        valid,
        edges=edges,
        header=header,
        intrinsics=intrinsics,
        style=style,
        ids=ids,
        positions=positions,
    )


def person_array_markers(
    message, intrinsics: PinholeIntrinsics, style: MarkerStyle, frame_id: str | None = None
) -> MarkerArray:
    """Markers for a published litepose_ros/PersonArray (its persons are already sorted; their
    ids colour and label them as the node does).

    frame_id overrides the message's frame (use it when the image came with an empty frame_id).
    """
    header = message.header
    if frame_id is not None and frame_id != header.frame_id:
        header = type(header)(stamp=header.stamp, frame_id=frame_id)
    keypoint_count = len(message.keypoint_names)
    values = np.array([[(k.x, k.y) for k in p.keypoints] for p in message.persons], dtype=np.float64).reshape(
        -1, keypoint_count, 2
    )
    valid = np.array([[k.valid for k in p.keypoints] for p in message.persons], dtype=bool).reshape(
        -1, keypoint_count
    )
    scores = np.array([p.score for p in message.persons], dtype=np.float64)
    edges = list(zip(message.edge_from, message.edge_to, strict=True))
    ids = np.array([p.id for p in message.persons], dtype=np.int64)
    return people_markers(
        values,
        scores,
        valid,
        edges=edges,
        header=header,
        intrinsics=intrinsics,
        style=style,
        ids=ids if (ids != NO_ID).any() else None,
        positions=message_positions(message),
    )


def message_positions(message) -> KeypointPositions | None:
    """The 3D keypoint positions a PersonArray carries, or None when none of its keypoints has one
    (no depth for that image: markers then use the plane)."""
    keypoint_count = len(message.keypoint_names)
    valid = np.array([[k.position_valid for k in p.keypoints] for p in message.persons], dtype=bool).reshape(
        -1, keypoint_count
    )
    if not valid.any():
        return None
    return KeypointPositions(
        positions=np.array(
            [[(k.position.x, k.position.y, k.position.z) for k in p.keypoints] for p in message.persons],
            dtype=np.float64,
        ).reshape(-1, keypoint_count, 3),
        valid=valid,
        spread=np.array(
            [[k.position_spread for k in p.keypoints] for p in message.persons], dtype=np.float32
        ).reshape(-1, keypoint_count),
        person_positions=np.array(
            [(p.position.x, p.position.y, p.position.z) for p in message.persons], dtype=np.float64
        ).reshape(-1, 3),
        person_valid=np.array([p.position_valid for p in message.persons], dtype=bool),
    )
