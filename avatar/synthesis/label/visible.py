"""The visible "AI-generated" mark drawn on every video frame."""
from __future__ import annotations

import cv2
import numpy as np

TEXT = "AI-generated"


def stamp(frame: np.ndarray, text: str = TEXT) -> np.ndarray:
    """A white label on a dark band in the top-left corner, sized to the frame."""
    h, w = frame.shape[:2]
    scale = max(0.4, w / 900)
    thick = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = int(6 * scale) + 2
    x0, y0, x1, y1 = pad, pad, pad + tw + 2 * pad, pad + th + base + 2 * pad
    out = frame.copy()
    roi = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = (roi * 0.35).astype(np.uint8)
    cv2.putText(out, text, (x0 + pad, y1 - pad - base // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick,
                cv2.LINE_AA)
    return out
