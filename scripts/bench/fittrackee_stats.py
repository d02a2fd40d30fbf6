"""FitTrackee's file pipeline, timed per file: the Python side of scripts/bench-analysis.

    python fittrackee_stats.py [--batch-seconds S] [--batches R] [--threshold KMH] FILES...

One JSON line per file on stdout, the same fields as `analysis_bench --json` (median_us,
min_us, max_us over R batches, each batch calibrated to last at least S seconds) plus the
figures computed, so the work is visibly done.

What is timed is what FitTrackee 0.10 does with an uploaded file before it touches the database
(fittrackee/workouts/services/workout_from_file/), written again here from its approach with the
same libraries at the versions it pins (gpxpy 1.6.2 over lxml 5.4, xmltodict 0.14.2) and
fitdecode 0.11.0:

- .gpx: `gpxpy.parse(file)`, refused without a track.
- .tcx: `xmltodict.parse(file)`; the first Activity's Laps' Tracks' Trackpoints with a Position
  become points of one gpxpy segment (longitude, latitude, AltitudeMeters, `parse_time(Time)`).
- .fit: `fitdecode.FitReader(file)`; every `record` data frame with position_lat,
  position_long and timestamp becomes a gpxpy point (semicircles to degrees, rounded to 5
  decimals; enhanced_altitude), heart rate and cadence as a TrackPointExtension (lxml); a
  timer `stop_all` event starts a new segment.
- then the statistics of the first track, per segment and for the track: the points walked
  (stopped time between segments, heart rate and cadence from the extensions, end point,
  coordinates for the map), `get_moving_data(stopped_speed_threshold, raw=False)` (moving and
  stopped time and distance, max speed), `get_elevation_extremes()`, `get_duration()`,
  `get_uphill_downhill()` when there is an elevation, the derived speeds, heart rate and
  cadence means and maxima, and the track's `get_bounds()`.

Left out: the database, the weather and elevation web services and the static map image (network
and PNG rendering, which would only make FitTrackee slower). FitTrackee never calls
`length_2d()`/`length_3d()` when it creates a workout: its distance is
`moving_distance + stopped_distance` from `get_moving_data`, so neither is called here.
"""

import argparse
import io
import json
import statistics
import sys
import time
from datetime import timedelta

import fitdecode
import gpxpy
import gpxpy.gpx
import gpxpy.parser
import xmltodict
from gpxpy.gpxfield import parse_time
from lxml import etree

# FitTrackee's default stopped_speed_threshold for Running, Hiking and Walking (km/h); Cycling's
# is 1.0. It changes which points count as moving, not how much work is done.
DEFAULT_THRESHOLD_KMH = 0.1


class FileError(Exception):
    pass


def parse_gpx(data: bytes) -> gpxpy.gpx.GPX:
    gpx = gpxpy.parse(io.BytesIO(data))
    if len(gpx.tracks) == 0:
        raise FileError("no tracks in gpx file")
    return gpx


def parse_tcx(data: bytes) -> gpxpy.gpx.GPX:
    tcx = xmltodict.parse(io.BytesIO(data))
    activities = tcx["TrainingCenterDatabase"].get("Activities", {}).get("Activity", [])
    if isinstance(activities, dict):
        activities = [activities]
    laps = activities[0].get("Lap", []) if activities else []
    if isinstance(laps, dict):
        laps = [laps]
    if not laps:
        raise FileError("no laps in tcx file")
    track = gpxpy.gpx.GPXTrack()
    segment = gpxpy.gpx.GPXTrackSegment()
    has_tracks = False
    for lap in laps:
        tracks = lap.get("Track", []) or []
        if isinstance(tracks, dict):
            tracks = [tracks]
        for tcx_track in tracks:
            has_tracks = True
            points = tcx_track.get("Trackpoint", []) if tcx_track else []
            if isinstance(points, dict):
                points = [points]
            for point in points:
                position = point.get("Position", {})
                if not position:
                    continue
                altitude = point.get("AltitudeMeters")
                segment.points.append(
                    gpxpy.gpx.GPXTrackPoint(
                        longitude=float(position.get("LongitudeDegrees")),
                        latitude=float(position.get("LatitudeDegrees")),
                        elevation=float(altitude) if altitude else None,
                        time=parse_time(point.get("Time")),
                    )
                )
    if not has_tracks:
        raise FileError("no tracks in tcx file")
    track.segments.append(segment)
    gpx = gpxpy.gpx.GPX()
    gpx.tracks.append(track)
    return gpx


def semicircles(value: int) -> float:
    return round(value * (180.0 / 2**31), 5)


def fit_value(frame, name):
    return frame.get_value(name) if frame.has_field(name) else None


def parse_fit(data: bytes) -> gpxpy.gpx.GPX:
    track = gpxpy.gpx.GPXTrack()
    segment = gpxpy.gpx.GPXTrackSegment()
    has_stop = False
    for frame in fitdecode.FitReader(io.BytesIO(data)):
        if frame.frame_type != fitdecode.FIT_FRAME_DATA:
            continue
        if (
            frame.name == "event"
            and frame.get_value("event") == "timer"
            and frame.get_value("event_type") == "stop_all"
        ):
            has_stop = True
            track.segments.append(segment)
            segment = gpxpy.gpx.GPXTrackSegment()
        if frame.name != "record":
            continue
        longitude = fit_value(frame, "position_long")
        latitude = fit_value(frame, "position_lat")
        timestamp = fit_value(frame, "timestamp")
        if not longitude or not latitude or not timestamp:
            continue
        elevation = fit_value(frame, "enhanced_altitude")
        heart_rate = fit_value(frame, "heart_rate")
        cadence = fit_value(frame, "cadence")
        point = gpxpy.gpx.GPXTrackPoint(
            longitude=semicircles(longitude),
            latitude=semicircles(latitude),
            elevation=float(elevation) if elevation else None,
            time=timestamp,
        )
        if heart_rate is not None or cadence is not None:
            extension = etree.Element("{gpxtpx}TrackPointExtension")
            if heart_rate is not None:
                etree.SubElement(extension, "{gpxtpx}hr").text = str(heart_rate)
            if cadence is not None:
                etree.SubElement(extension, "{gpxtpx}cad").text = str(cadence)
            point.extensions.append(extension)
        segment.points.append(point)
    if not has_stop:
        track.segments.append(segment)
    gpx = gpxpy.gpx.GPX()
    gpx.tracks.append(track)
    return gpx


def gpx_info(parsed, threshold: float) -> dict:
    """FitTrackee's get_gpx_info + set_calculated_data for a track or a segment."""
    moving = parsed.get_moving_data(stopped_speed_threshold=threshold, raw=False)
    if not moving:
        raise FileError("gpx file is invalid")
    elevation = parsed.get_elevation_extremes()
    duration = parsed.get_duration()
    distance = moving.moving_distance + moving.stopped_distance
    info = {
        "duration": duration,
        "distance_km": distance / 1000,
        "moving_s": moving.moving_time,
        "stopped_s": moving.stopped_time,
        "max_speed_kmh": moving.max_speed / 1000 * 3600,
        "ave_speed_kmh": (distance / moving.moving_time if moving.moving_time > 0 else 0)
        / 1000
        * 3600,
        "max_alt": elevation.maximum,
        "min_alt": elevation.minimum,
        "ascent": None,
        "descent": None,
    }
    if elevation.maximum:
        hill = parsed.get_uphill_downhill()
        info["ascent"] = hill.uphill
        info["descent"] = hill.downhill
    return info


def hr_cadence(heart_rates, cadences) -> dict:
    return {
        "ave_cadence": statistics.mean(cadences) if cadences else None,
        "ave_hr": statistics.mean(heart_rates) if heart_rates else None,
        "max_cadence": max(cadences) if cadences else None,
        "max_hr": max(heart_rates) if heart_rates else None,
    }


def analyse(gpx: gpxpy.gpx.GPX, threshold: float) -> dict:
    """FitTrackee's _process_file without the database, weather and map."""
    track = gpx.tracks[0]
    start = track.segments[0].points[0] if track.segments and track.segments[0].points else None
    if start is None or not start.time:
        raise FileError("<time> is missing in gpx file")
    coordinates = []
    all_hr, all_cad = [], []
    between = timedelta(seconds=0)
    previous_last = None
    max_speed = 0.0
    end = None
    segments = []
    last_segment = len(track.segments) - 1
    for segment_idx, segment in enumerate(track.segments):
        heart_rates, cadences = [], []
        last_point = len(segment.points) - 1
        for point_idx, point in enumerate(segment.points):
            if point_idx == 0 and previous_last and point.time:
                between += point.time - previous_last
            if point.extensions:
                for element in point.extensions[0]:
                    if element.tag.endswith("}hr") and element.text:
                        heart_rates.append(int(element.text))
                    if element.tag.endswith("}cad") and element.text:
                        cadences.append(int(element.text))
            if point_idx == last_point:
                previous_last = point.time
                if segment_idx == last_segment and point.time:
                    end = (point.longitude, point.latitude, point.time)
            coordinates.append([point.longitude, point.latitude])
        info = gpx_info(segment, threshold)
        info.update(hr_cadence(heart_rates, cadences))
        segments.append(info)
        all_hr.extend(heart_rates)
        all_cad.extend(cadences)
        max_speed = max(max_speed, info["max_speed_kmh"] or 0.0)
    workout = gpx_info(track, threshold)
    workout.update(hr_cadence(all_hr, all_cad))
    workout["max_speed_kmh"] = max_speed
    workout["pauses_s"] = workout["stopped_s"] + between.total_seconds()
    bounds = track.get_bounds()
    workout["bounds"] = (
        [bounds.min_latitude, bounds.min_longitude, bounds.max_latitude, bounds.max_longitude]
        if bounds
        else []
    )
    workout["segments"] = segments
    workout["end"] = end
    workout["points"] = len(coordinates)
    return workout


PARSERS = {".gpx": parse_gpx, ".tcx": parse_tcx, ".fit": parse_fit}


def pipeline(path: str):
    """The parser for a file, by extension as FitTrackee picks it."""
    for ext, parser in PARSERS.items():
        if path.lower().endswith(ext):
            return parser
    raise FileError(f"unsupported extension: {path}")


def bench(path: str, batch_seconds: float, batches: int, threshold: float) -> dict:
    with open(path, "rb") as f:
        data = f.read()
    parse = pipeline(path)

    def once():
        return analyse(parse(data), threshold)

    result = once()  # warm-up, and the figures to show
    iterations = 1
    while True:
        started = time.perf_counter()
        for _ in range(iterations):
            once()
        elapsed = time.perf_counter() - started
        if elapsed >= batch_seconds:
            break
        per = max(elapsed / iterations, 1e-9)
        iterations = max(iterations * 2, int(batch_seconds / per * 1.1) + 1)
    times = []
    for _ in range(max(batches, 1)):
        started = time.perf_counter()
        for _ in range(iterations):
            once()
        times.append((time.perf_counter() - started) / iterations * 1e6)
    times.sort()
    return {
        "file": path,
        "bytes": len(data),
        "points": result["points"],
        "iterations": iterations,
        "batches": len(times),
        "median_us": round(times[len(times) // 2], 3),
        "min_us": round(times[0], 3),
        "max_us": round(times[-1], 3),
        "distance_km": round(result["distance_km"], 3),
        "moving_s": round(result["moving_s"], 1),
        "duration_s": result["duration"],
        "ascent_m": None if result["ascent"] is None else round(result["ascent"], 1),
        "segments": len(result["segments"]),
        "gpxpy_xml": gpxpy.parser.library(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-seconds", type=float, default=0.3)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD_KMH)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    for path in args.files:
        try:
            line = bench(path, args.batch_seconds, args.batches, args.threshold)
        except Exception as e:  # a file FitTrackee refuses: reported, not timed
            line = {"file": path, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
