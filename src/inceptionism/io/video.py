"""Video in and out through the ffmpeg binary that ``imageio-ffmpeg`` ships: probing (size, frame
rate as an exact fraction, audio), decoding to RGB frames, and assembling numbered PNG frames
into an H.264 MP4 (with the source's audio copied) or a GIF. Frames travel as raw RGB through
pipes; nothing here holds more than one frame in memory."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from inceptionism.errors import ConfigError, ImageError, MissingExtraError, ToolError
from inceptionism.io.image import UMASK

FRAME_NAME = "frame_{:06d}.png"
_FRAME_RE = re.compile(r"^frame_(\d+)\.png$")
VIDEO_SUFFIXES = (".mp4", ".gif")
# Rates that ffmpeg prints rounded: the NTSC family, as exact fractions.
_NTSC = {"23.98": Fraction(24000, 1001), "23.976": Fraction(24000, 1001),
         "29.97": Fraction(30000, 1001), "59.94": Fraction(60000, 1001),
         "47.95": Fraction(48000, 1001), "119.88": Fraction(120000, 1001)}  # fmt: skip


def ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise MissingExtraError("zoom and video (the ffmpeg of imageio-ffmpeg)", "video") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    duration: float | None
    has_audio: bool
    audio_codec: str | None


def probe(path: Path) -> VideoInfo:
    """Streams of a video file, read from ``ffmpeg -i``'s report."""
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    )
    report = result.stderr
    video = re.search(r"Stream #\S+.*?: Video: .*", report)
    if video is None:
        first = next((ln.strip() for ln in report.splitlines()[::-1] if ln.strip()), "")
        raise ImageError(f"{path}: not a video ffmpeg can read ({first[:120]})")
    line = video.group(0)
    size = re.search(r", (\d{2,5})x(\d{2,5})", line)
    rate = re.search(r", ([\d.]+) (?:fps|tbr)", line)
    if size is None or rate is None:
        raise ImageError(f"{path}: cannot read the video's size or frame rate ({line[:120]})")
    text = rate.group(1)
    fps = _NTSC.get(text) or Fraction(text).limit_denominator(1001)
    audio = re.search(r"Stream #\S+.*?: Audio: (\w+)", report)
    dur = re.search(r"Duration: (\d+):(\d+):([\d.]+)", report)
    duration = (
        int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else None
    )
    return VideoInfo(int(size.group(1)), int(size.group(2)), fps, duration, audio is not None,
                     audio.group(1) if audio else None)  # fmt: skip


def _range_args(start: float | None, end: float | None) -> list[str]:
    args = []
    if start:
        args += ["-ss", f"{start:.6f}"]
    if end is not None:
        args += ["-to", f"{end:.6f}"]
    return args


def read_frames(
    path: Path, info: VideoInfo, start: float | None = None, end: float | None = None
) -> Iterator[np.ndarray]:
    """Decoded frames, (H, W, 3) uint8, in order, from ``start`` to ``end`` seconds."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", *_range_args(start, end),
           "-i", str(path), "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-fps_mode", "passthrough", "-"]  # fmt: skip
    size = info.width * info.height * 3
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        while True:
            data = proc.stdout.read(size)
            if len(data) < size:
                break
            yield np.frombuffer(data, np.uint8).reshape(info.height, info.width, 3)
    finally:
        if proc.stdout:
            proc.stdout.close()
        proc.kill()
        proc.wait()


def count_frames(path: Path, start: float | None = None, end: float | None = None) -> int:
    """Frames ffmpeg decodes in the range (the exact count, by decoding)."""
    cmd = [ffmpeg_exe(), "-hide_banner", *_range_args(start, end), "-i", str(path),
           "-map", "0:v:0", "-f", "null", "-"]  # fmt: skip
    report = subprocess.run(cmd, capture_output=True, text=True).stderr
    found = re.findall(r"frame=\s*(\d+)", report)
    return int(found[-1]) if found else 0


def frame_numbers(folder: Path) -> list[int]:
    """Numbers of the finished frames in a folder, in numeric order (frame_1000 after 999)."""
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _FRAME_RE.match(p.name)))


def assemble(
    frames: Path,
    count: int,
    out: Path,
    fps: Fraction,
    audio_from: Path | None = None,
    start: float | None = None,
    end: float | None = None,
) -> None:
    """Frames 1..count of a folder into ``out`` (.mp4: H.264 yuv420p, odd sizes padded by one
    black row/column; .gif: one palette for the clip), atomically; with ``audio_from``, that
    file's audio in the same time range, copied (re-encoded to AAC only if the copy fails)."""
    if count <= 0:
        return
    pattern = str(frames).replace("%", "%%") + os.sep + "frame_%06d.png"  # a % in the name
    inputs = ["-framerate", str(fps), "-start_number", "1", "-i", pattern]
    limit = ["-frames:v", str(count)]
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{out.name}.{os.getpid()}.", suffix=".part" + out.suffix, dir=out.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    with _interrupt_after():
        _assemble(inputs, limit, tmp, out, fps, count, audio_from, start, end)


def _assemble(inputs, limit, tmp, out, fps, count, audio_from, start, end) -> None:
    try:
        if out.suffix.lower() == ".gif":
            graph = "split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse"
            _run([*inputs, *limit, "-vf", graph, "-loop", "0", str(tmp)])
        else:
            video = [*limit, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18",
                     "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-r", str(fps)]  # fmt: skip
            if audio_from is not None:
                audio_in = [*_range_args(start, end), "-i", str(audio_from)]
                maps = ["-map", "0:v:0", "-map", "1:a:0?"]
                # the sound as long as the frames there are (a partial result stays in sync)
                span = ["-t", f"{float(count / fps):.6f}", "-movflags", "+faststart", str(tmp)]
                try:
                    _run([*inputs, *audio_in, *maps, *video, "-c:a", "copy", *span])
                except ToolError:
                    _run([*inputs, *audio_in, *maps, *video, "-c:a", "aac", *span])
            else:
                _run([*inputs, *video, "-movflags", "+faststart", str(tmp)])
        os.chmod(tmp, 0o666 & ~UMASK)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _interrupt_after():
    """Ctrl-C while the video is assembled is held until the file is complete (ffmpeg runs in
    its own session, so the terminal's SIGINT does not reach it either); then it is raised."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    old = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if caught:
        raise KeyboardInterrupt


def _run(args: list[str]) -> None:
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, start_new_session=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise ToolError(f"ffmpeg failed: {last[:200]}")


def probe_range(
    source: Path, t_start: float | None, t_end: float | None, max_pixels: int
) -> tuple[VideoInfo, int]:
    """A video's streams and the number of frames in [t_start, t_end], every bound checked
    (the range inside the video, the frames within the pixel limit) before any work."""
    if t_start is not None and t_end is not None and t_end <= t_start:
        raise ConfigError(f"--end {t_end} must be after --start {t_start}")
    info = probe(source)
    for name, t in (("--start", t_start), ("--end", t_end)):
        if t is not None and info.duration is not None and t > info.duration:
            raise ConfigError(f"{name} {t:g} is past the end of {source} ({info.duration:.2f} s)")
    if info.width * info.height > max_pixels:
        raise ImageError(f"{source}: {info.width}x{info.height} frames are over the limit of "
                         f"{max_pixels} pixels (raise it with --max-pixels)")  # fmt: skip
    total = count_frames(source, t_start, t_end)
    if total == 0:
        raise ImageError(f"{source}: no frames in the chosen time range")
    return info, total
