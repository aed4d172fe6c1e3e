"""Make ccphost's default ringtone (static/ccphost/sounds/ring.wav): a two-tone ring made
from sine waves by this script, so the sound is the project's own and license-clean.

    python3 tools/make_ringtone.py
"""

import math
import struct
import wave
from pathlib import Path

RATE = 8000
TONES = (440.0, 480.0)  # the North American ringback pair
RING_SECONDS, SILENCE_SECONDS = 1.2, 1.8
VOLUME = 0.35


def samples() -> list[int]:
    out = []
    for n in range(int(RATE * RING_SECONDS)):
        t = n / RATE
        fade = min(1.0, t / 0.02, (RING_SECONDS - t) / 0.02)
        value = sum(math.sin(2 * math.pi * f * t) for f in TONES) / len(TONES)
        out.append(int(128 + 127 * VOLUME * fade * value))
    out.extend([128] * int(RATE * SILENCE_SECONDS))
    return out


def main() -> None:
    path = Path(__file__).resolve().parent.parent / "static" / "ccphost" / "sounds" / "ring.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(RATE)
        wav.writeframes(struct.pack(f"{len(samples())}B", *samples()))
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
