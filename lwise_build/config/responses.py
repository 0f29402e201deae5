"""The columns of the de-identified trial data ``analyze`` writes (Psych-DS) and the export's
``responses`` config carries: name -> meaning, in file order (the data dictionary), and each
column's type in the Hub config."""

from __future__ import annotations

RESPONSE_COLUMNS = {
    "participant": "pseudonym of the participant in this analysis (p001, p002, ... in file order); no "
                   "recruitment-platform id",
    "condition": "the curriculum (experimental condition) the participant was assigned",
    "sequence": "the participant's trial sequence within the condition",
    "position": "trial position in the session, from 0 (main, catch and repeat trials)",
    "trial": "the curriculum's trial number (main trials; empty for catch and repeat trials)",
    "block": "block number, from 1",
    "phase": "train (with feedback) or test (no feedback)",
    "kind": "main (a curriculum trial), catch (circle vs triangle) or repeat (the same image again)",
    "id": "image id (sha256 of the canonical PNG, as in the default config); empty on catch trials",
    "label": "true class index of the image",
    "budget": "L2 enhancement budget of the image as shown (0 = natural)",
    "difficulty": "the curriculum's difficulty of the image (0 easiest, 1 hardest)",
    "choice": "display position chosen (empty when the time ran out)",
    "response_label": "class index of the choice (empty on catch trials and timeouts)",
    "correct": "whether the answer was right (a timeout is wrong)",
    "timed_out": "whether the response limit passed without an answer",
    "rt": "response time in ms from the onset of the response screen",
    "feedback_ms": "time the feedback stayed up (self-paced: until the participant continued), ms",
    "t_page_ms": "time since this page load at the response, ms",
    "session_ms": "time since the session's first page load at the response, ms (across reloads)",
    "load": "page load number of the session (1 = no reload before this trial)",
    "screen_w": "screen width, CSS px", "screen_h": "screen height, CSS px",
    "window_w": "browser window (viewport) width, CSS px", "window_h": "viewport height, CSS px",
    "device_pixel_ratio": "device pixels per CSS px",
    "stimulus_px": "displayed image side, CSS px",
    "included": "whether the participant counts in the analysis",
    "exclusion": "why the participant is excluded (empty when included)",
}

#: The Hub config's type of each column (``datasets.Value`` dtypes); the rest are strings.
RESPONSE_TYPES = {
    **{c: "int64" for c in ("sequence", "position", "trial", "block", "label", "choice", "response_label", "rt",
                            "load", "screen_w", "screen_h", "window_w", "window_h", "stimulus_px")},
    **{c: "float64" for c in ("budget", "difficulty", "feedback_ms", "t_page_ms", "session_ms",
                              "device_pixel_ratio")},
    **{c: "bool" for c in ("correct", "timed_out", "included")},
}
